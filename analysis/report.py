"""The Markdown report of an analysis: data, compute accounting, key numbers, frontier, fits, caveats."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from analysis.compute import ComputeModel
from analysis.fits import PowerLawFit
from analysis.frontier import Frontier
from analysis.outputs import markdown_table


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report states; built by ``analysis.run.run``."""

    run_dir: Path
    n_problems: int
    max_solutions: int
    verifiers: dict[str, tuple[str, int]]  # name -> (kind, max verifications)
    settings: dict[str, object]
    compute: dict[str, ComputeModel]  # "" = solving only
    curves: pl.DataFrame
    frontier: Frontier
    fit_label: str | None
    fits: list[PowerLawFit]
    notes: list[str]
    figures: list[Path]
    sections: list[str] = field(default_factory=list)  # extra Markdown lines (analysis.beyond)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _point(row: dict) -> str:
    return (f"{_pct(row['success'])} [{_pct(row['ci_lo'])}, {_pct(row['ci_hi'])}] "
            f"({row['label']}, S={row['S']}, V={row['V']})")


def render(r: ReportInputs) -> str:
    """The report as Markdown text."""
    level = r.settings.get("ci_level", 0.95)
    lines = [f"# Analysis of `{r.run_dir}`", "",
             f"{r.n_problems} problems with solutions, up to {r.max_solutions} solutions each. Verifiers: "
             + (", ".join(f"`{n}` ({k}, up to {m} verifications)" for n, (k, m) in r.verifiers.items()) or "none")
             + ".", "",
             "Settings: " + ", ".join(f"{k}={v}" for k, v in r.settings.items()) + ".",
             f"Intervals are {int(100 * level)}% bootstrap intervals over problems; differences are paired.", "",
             "## Compute accounting", ""]
    solve = next(iter(r.compute.values())).solve
    lines.append(f"- solving: {solve.generated_per_sample:.0f} generated tokens per solution, "
                 f"{solve.prefill_per_group:.0f} uncached prompt tokens per problem (shared by its samples)")
    for name, model in r.compute.items():
        if model.verify is None:
            continue
        lines.append(f"- verifier `{name}`: λ = {model.lam:.3f} (params solver {model.solver_params:.3g}, verifier "
                     f"{model.verifier_params:.3g}; {model.verify.generated_per_sample:.0f} generated tokens per "
                     f"verification, {model.verify.prefill_per_group:.0f} uncached prompt tokens per solution)"
                     + "".join(f"; {n}" for n in model.notes))
    lines += ["", "## Key numbers", ""]
    top_s = r.curves["S"].max()
    for label in ("oracle", "majority"):
        row = r.curves.filter((pl.col("label") == label) & (pl.col("S") == top_s))
        if row.height:
            lines.append(f"- {label} at S={top_s}: {_point(row.row(0, named=True))}")
    ver = r.curves.filter(pl.col("V") > 0)
    if ver.height:
        best = ver.sort("success", descending=True).row(0, named=True)
        lines.append(f"- best verifier point: {_point(best)}")
    fam = r.frontier.table
    top_budget = fam["budget"].max() if fam.height else None
    for family in ("self_consistency", "verification", "best"):
        row = fam.filter((pl.col("family") == family) & (pl.col("budget") == top_budget))
        if row.height:
            lines.append(f"- {family} frontier at the largest budget ({top_budget:.4g}): {_point(row.row(0, named=True))}")
    lines.append("- crossover budget (verification stays ahead of self-consistency from here on): "
                 + (f"{r.frontier.crossover:.4g}" if r.frontier.crossover is not None else "none in the evaluated range"))
    g = r.frontier.gain
    if g.height:
        last = g.row(g.height - 1, named=True)
        lines.append(f"- gain of verification over self-consistency at budget {last['budget']:.4g}: "
                     f"{100 * last['gain']:+.1f} points [{100 * last['gain_lo']:+.1f}, {100 * last['gain_hi']:+.1f}], "
                     f"relative {100 * last['rel_gain']:+.1f}% [{100 * last['rel_lo']:+.1f}%, {100 * last['rel_hi']:+.1f}%]")
    lines += ["", "## Compute-optimal split", ""]
    if r.fit_label:
        lines.append(f"Optima of `{r.fit_label}` (the verification method most often on the frontier); budgets "
                     "whose optimum is at the largest recorded S or V are censored and left out of the fits:")
    lines += [f"- {fit.describe()}" for fit in r.fits] or ["- no verifier: nothing to fit"]
    lines += ["", "## Frontier", ""]
    if fam.height:
        lines += markdown_table(fam.select("family", "budget", "label", "S", "V", "success", "ci_lo", "ci_hi")
                        .filter(pl.col("family") != "best"))
    if r.sections:
        lines += ["", *r.sections]
    if r.notes:
        lines += ["", "## Caveats", ""] + [f"- {n}" for n in r.notes]
    if r.figures:
        lines += ["", "## Figures", ""] + [f"![{p.stem}]({p.name})" for p in r.figures if p.suffix == ".png"]
    return "\n".join(lines) + "\n"
