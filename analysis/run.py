"""The analysis stage's CLI: curves, frontiers, fits, plots and a report from a (finished or partial) run.

    python -m analysis.run run_dir=runs/demo
    python -m analysis.run run_dir=runs/demo axis=flops grid=pow2 bootstrap=200 out_dir=/tmp/analysis

Writes into ``<run_dir>/analysis/`` (or ``out_dir``): ``curves``, ``frontier``, ``frontier_per_method``,
``gain``, ``fits`` as Parquet and CSV, ``summary.json``, figures (PNG and SVG) and ``report.md``.
Configuration: ``conf/analysis.yaml`` / ``analysis.config.AnalysisConfig``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import hydra
import numpy as np
import polars as pl
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from analysis import bootstrap, curves, plots, report, step_level
from analysis.compute import AXIS_LABELS, ComputeModel, build_compute
from analysis.config import AUTO_GRID_MAX_PAIRS, AnalysisConfig
from analysis.fits import PowerLawFit, fit_power_law
from analysis.frontier import Frontier, budget_grid, build_frontier
from analysis.beyond import run_beyond
from analysis.load import RunArrays, load_run
from analysis.outputs import write_table

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


@dataclass(frozen=True)
class AnalysisResult:
    """What ``run`` computed and where it wrote it."""

    out_dir: Path
    curves: pl.DataFrame
    frontier: Frontier
    fit_label: str | None
    fits: list[PowerLawFit]
    files: list[Path]


def grid_values(grid: str, maximum: int, start: int) -> list[int]:
    """Every integer start..maximum (``all``) or powers of two plus the maximum (``pow2``)."""
    if grid == "all":
        return list(range(start, maximum + 1))
    values = {2 ** i for i in range(maximum.bit_length()) if 2 ** i <= maximum} | {start, maximum}
    return sorted(v for v in values if start <= v <= maximum)


def _compute_column(points: pl.DataFrame, models: dict[str, ComputeModel]) -> np.ndarray:
    cost = np.empty(points.height)
    verifier = points["verifier"].fill_null("").to_numpy()
    s, v = points["S"].to_numpy(), points["V"].to_numpy()
    for name, model in models.items():
        rows = verifier == name
        cost[rows] = model.cost(s[rows], v[rows])
    return cost


def _fit_optima(frontier: Frontier, curve_table: pl.DataFrame) -> tuple[str | None, pl.DataFrame, list[PowerLawFit]]:
    """Optima of the verification method most often on the frontier, and their power-law fits. Budgets
    where the optimum sits at the largest recorded S or V are left out: there the optimum is censored by
    what was sampled, not chosen by the trade-off."""
    ver = frontier.table.filter(pl.col("family") == "verification")
    if ver.height == 0:
        return None, pl.DataFrame(), []
    label = ver["label"].mode().sort()[0]
    recorded = curve_table.filter(pl.col("label") == label)
    optima = frontier.per_method.filter(pl.col("label") == label).sort("budget").with_columns(
        censored=(pl.col("S") >= recorded["S"].max()) | (pl.col("V") >= recorded["V"].max()))
    inside = optima.filter(~pl.col("censored"))
    fits = [fit_power_law(inside["budget"], inside[q], f"{q}_opt") for q in ("S", "V")]
    return label, optima, fits


def run(cfg: AnalysisConfig) -> AnalysisResult:
    """Analyse ``cfg.run_dir`` and write every output; returns what was computed."""
    arrays: RunArrays = load_run(cfg.run_dir)
    out = Path(cfg.out_dir) if cfg.out_dir else Path(cfg.run_dir) / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    max_v = max((v.max_verifications for v in arrays.verifiers.values()), default=0)
    grid = cfg.grid
    if grid == "auto":
        grid = "all" if arrays.max_solutions * (max_v + 1) <= AUTO_GRID_MAX_PAIRS else "pow2"
    result = curves.evaluate(arrays, grid_values(grid, arrays.max_solutions, 1), grid_values(grid, max_v, 0),
                             vote_key=cfg.vote_key, ties=cfg.ties, draws=cfg.draws, seed=cfg.seed,
                             methods=tuple(cfg.methods))
    models = {"": build_compute(arrays, None, cfg.axis, dict(cfg.model_params), cfg.lam)}
    for name in arrays.verifiers:
        models[name] = build_compute(arrays, name, cfg.axis, dict(cfg.model_params), cfg.lam)
    points = result.points.with_columns(compute=_compute_column(result.points, models))
    counts = bootstrap.resample_counts(len(arrays.problem_ids), cfg.bootstrap, cfg.seed)
    ci = bootstrap.interval(result.values, counts, cfg.ci_level)
    n_ok = (~np.isnan(result.values)).sum(axis=0)
    mc_se = np.sqrt(np.nansum(result.mc_se ** 2, axis=0)) / np.maximum(n_ok, 1)
    curve_table = points.with_columns(success=ci.mean, ci_lo=ci.lo, ci_hi=ci.hi, mc_se=mc_se, n_problems=n_ok)
    candidates = points.filter(pl.col("method") != "oracle")
    budgets = budget_grid(candidates["compute"].to_numpy(), cfg.budgets_per_decade)
    frontier = build_frontier(points, result.values, counts, budgets, cfg.ci_level)
    fit_label, optima, fits = _fit_optima(frontier, curve_table)

    extra = run_beyond(arrays, points, result.values, counts, budgets, models, list(cfg.slice_by), cfg.ci_level,
                       cfg.bootstrap, cfg.policy_orders, cfg.seed, out, cfg.plots, list(cfg.plot_formats))

    step_files, step_lines = step_level.run_step_level(
        arrays, points, result.values, curve_table, cfg.bootstrap, cfg.seed, cfg.ci_level, out,
        AXIS_LABELS[cfg.axis], cfg.plots, list(cfg.plot_formats))

    files = write_table(curve_table, out, "curves") + write_table(frontier.table, out, "frontier")
    files += write_table(frontier.per_method, out, "frontier_per_method") + write_table(frontier.gain, out, "gain")
    files += write_table(pl.DataFrame([asdict(f) for f in fits]) if fits else pl.DataFrame({"quantity": []}), out, "fits")
    figures: list[Path] = []
    if cfg.plots:
        xlabel = AXIS_LABELS[cfg.axis]
        formats = list(cfg.plot_formats)
        figures += plots.frontier_plot(frontier.table, curve_table.filter(pl.col("method") == "oracle").sort("compute"),
                                       xlabel, out, formats, extra.policies)
        for label in curve_table.filter(pl.col("V") > 0)["label"].unique(maintain_order=True):
            figures += plots.method_curves_plot(curve_table, label, xlabel, out, formats)
        if fits:
            figures += plots.optimal_split_plot(optima, fits, xlabel, out, formats)
        if frontier.gain.height:
            figures += plots.gain_plot(frontier.gain, xlabel, out, formats)
    notes = list(arrays.notes) + sorted({n for m in models.values() for n in m.notes})
    settings = {k: getattr(cfg, k) for k in ("axis", "vote_key", "ties", "draws", "bootstrap", "ci_level", "seed")}
    settings["grid"] = grid if grid == cfg.grid else f"{grid} (auto)"
    text = report.render(report.ReportInputs(
        run_dir=Path(cfg.run_dir), n_problems=len(arrays.problem_ids), max_solutions=arrays.max_solutions,
        verifiers={n: (v.kind, v.max_verifications) for n, v in arrays.verifiers.items()}, settings=settings,
        compute=models, curves=curve_table, frontier=frontier, fit_label=fit_label, fits=fits, notes=notes,
        figures=figures + [f for f in extra.files + step_files if f.suffix == ".png"],
        sections=step_lines + ([""] if step_lines else []) + extra.sections))
    (out / "report.md").write_text(text)
    summary = {"run_dir": str(cfg.run_dir), "n_problems": len(arrays.problem_ids), "settings": settings,
               "lambda": {n or "solve": m.lam for n, m in models.items()}, "crossover": frontier.crossover,
               "fit_label": fit_label, "fits": [asdict(f) for f in fits], "notes": notes}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    files += figures + extra.files + step_files + [out / "report.md", out / "summary.json"]
    return AnalysisResult(out, curve_table, frontier, fit_label, fits, files)


ConfigStore.instance().store(name="analysis_schema", node=AnalysisConfig)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="analysis")
def main(cfg) -> None:
    """Hydra entry point: convert to the typed config (validated there) and run."""
    result = run(OmegaConf.to_object(cfg))
    print(f"analysis written to {result.out_dir} ({len(result.files)} files)")


if __name__ == "__main__":
    main()
