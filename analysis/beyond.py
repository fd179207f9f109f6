"""Beyond the seeds' fixed budgets: verifier quality, slices by problem column, adaptive allocation.

Called by ``analysis.run.run`` after the curves and the frontier; writes its tables next to theirs and
returns Markdown sections for the report:
- ``verifier_quality`` / ``verifier_quality_vs_v`` / ``verifier_agreement`` / ``reliability`` tables and a
  reliability plot (``analysis.verifier_quality``);
- ``slice_curves`` / ``slice_frontier`` / ``slice_gain`` per column of ``AnalysisConfig.slice_by``
  (``analysis.slices``);
- ``policies``: offline adaptive policies (``analysis.adaptive``) on the same compute axis as the fixed
  grid, each with the best fixed (S, V) point at no more compute and the paired gain over it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from analysis import adaptive, bootstrap, plots, slices, verifier_quality
from analysis.compute import ComputeModel
from analysis.load import RunArrays, read_table
from analysis.outputs import markdown_table, write_table


@dataclass(frozen=True)
class BeyondResult:
    files: list[Path]
    sections: list[str]
    policies: pl.DataFrame


def quality(run: RunArrays, out: Path, formats, plot: bool, seed: int) -> tuple[list[Path], list[str]]:
    """Verifier-quality tables (and reliability plot) for every verifier with p_yes."""
    ver = read_table(run.run_dir, "verifications").filter(pl.col("p_yes").is_not_null())
    if ver.height == 0:
        return [], []
    sol = read_table(run.run_dir, "solutions")
    q = verifier_quality.quality_table(sol, ver)
    max_v = int(ver["verification_idx"].max()) + 1
    vs = sorted({2**i for i in range(max_v.bit_length()) if 2**i <= max_v} | {max_v})
    by_v = verifier_quality.quality_vs_v(sol, ver, vs, seed=seed)
    agree = verifier_quality.agreement_table(ver)
    scores = verifier_quality.solution_scores(ver).join(
        sol.select("problem_id", "solution_idx", "is_correct").drop_nulls(), on=["problem_id", "solution_idx"])
    reliability = pl.concat([
        verifier_quality.reliability_bins(g["score"].to_numpy(), g["is_correct"].to_numpy())
        .with_columns(verifier=pl.lit(name))
        for (name,), g in scores.group_by(["verifier"], maintain_order=True)])
    files = (write_table(q, out, "verifier_quality") + write_table(by_v, out, "verifier_quality_vs_v")
             + write_table(agree, out, "verifier_agreement") + write_table(reliability, out, "reliability"))
    if plot:
        files += plots.reliability_plot(reliability, out, formats)
    lines = ["## Verifier quality", "",
             "A solution's score is its mean P(Yes); labels are the grades. AUROC / average precision: "
             "discrimination; ECE: calibration (10 equal-width bins); verdict precision/recall: the majority "
             "verdict taken as a prediction of correctness.", ""] + markdown_table(q)
    lines += ["", "With a random size-V subset of each solution's verifications:", ""]
    lines += markdown_table(by_v.select("verifier", "V", "auroc", "average_precision", "ece"))
    if agree.height:
        lines += ["", "Agreement between verifiers on the same solutions:", ""] + markdown_table(agree)
    return files, lines


def slice_sections(run: RunArrays, columns: list[str], points: pl.DataFrame, values: np.ndarray,
                   budgets: np.ndarray, n_boot: int, seed: int, level: float,
                   out: Path) -> tuple[list[Path], list[str]]:
    """Curves and frontiers per slice of each column in ``columns`` that has at least two values."""
    curves_, frontiers, gains = [], [], []
    for column in columns:
        labels = slices.slice_labels(run, column)
        if labels is None:
            continue
        curves_.append(slices.slice_curves(points, values, labels, column, n_boot, seed, level))
        f, g = slices.slice_frontiers(points, values, labels, column, budgets, n_boot, seed, level)
        frontiers.append(f)
        gains.append(g)
    if not curves_:
        return [], []
    curve_t, front_t = pl.concat(curves_), pl.concat(frontiers)
    gain_t = pl.concat(gains, how="diagonal_relaxed")
    files = write_table(curve_t, out, "slice_curves") + write_table(front_t, out, "slice_frontier") + write_table(gain_t, out, "slice_gain")
    top = front_t.filter(pl.col("family") != "best").filter(pl.col("budget") == pl.col("budget").max())
    lines = ["## Slices", "",
             "Frontiers per problem group at the largest budget (intervals over the group's problems); every "
             "curve point and budget per group is in `slice_curves` / `slice_frontier`, and the paired gain of "
             "verification over self-consistency per group in `slice_gain`.", ""]
    lines += markdown_table(top.select("slice_by", "slice", "n_problems", "family", "label", "S", "V", "success", "ci_lo", "ci_hi")
                 .sort("slice_by", "slice", "family"))
    return files, lines


def policy_table(run: RunArrays, points: pl.DataFrame, values: np.ndarray, counts: np.ndarray,
                 models: dict[str, ComputeModel], level: float, n_orders: int, seed: int) -> pl.DataFrame:
    """Adaptive policies' success and compute, and their paired gain over the best fixed point with no more
    compute. Uses the verifier with p_yes recorded first by name (none: only stopping policies)."""
    verifier = next((n for n, v in sorted(run.verifiers.items()) if "p_yes" in v.scores), None)
    model = models[verifier or ""]
    problems = adaptive.problems_from_arrays(run, verifier)
    max_v = run.verifiers[verifier].max_verifications if verifier else 0
    fixed = points.with_row_index("col").filter(pl.col("method") != "oracle")
    fixed_mean = np.nanmean(values, axis=0)
    rows = []
    for name, (_, per) in adaptive.sweep(problems, max_v, n_orders, seed, model.lam).items():
        with np.errstate(invalid="ignore", divide="ignore"):
            v_per_s = np.where(per[:, 1] > 0, per[:, 2] / per[:, 1], 0.0)
        compute = model.cost(per[:, 1], v_per_s) if verifier else models[""].cost(per[:, 1], 0 * per[:, 1])
        ci = bootstrap.interval(per[:, :1], counts, level)
        row = {"policy": name, "success": float(ci.mean[0]), "ci_lo": float(ci.lo[0]), "ci_hi": float(ci.hi[0]),
               "compute": float(compute.mean()), "solutions": float(per[:, 1].mean()),
               "verifications": float(per[:, 2].mean())}
        cheaper = fixed.filter(pl.col("compute") <= row["compute"] * (1 + 1e-9))
        if cheaper.height:
            cols = cheaper["col"].to_numpy()
            best = cols[np.nanargmax(fixed_mean[cols])]
            gain = bootstrap.paired_difference(per[:, :1], values[:, best:best + 1], counts, level)
            match = points.row(int(best), named=True)
            row |= {"fixed_label": match["label"], "fixed_S": match["S"], "fixed_V": match["V"],
                    "fixed_compute": match["compute"], "fixed_success": float(fixed_mean[best]),
                    "gain": float(gain.mean[0]), "gain_lo": float(gain.lo[0]), "gain_hi": float(gain.hi[0])}
        rows.append(row)
    return pl.DataFrame(rows)


def run_beyond(run: RunArrays, points: pl.DataFrame, values: np.ndarray, counts: np.ndarray, budgets: np.ndarray,
               models: dict[str, ComputeModel], slice_by: list[str], level: float, n_boot: int, n_orders: int,
               seed: int, out: Path, plot: bool, formats) -> BeyondResult:
    """All three analyses; ``points`` carry ``compute`` and are aligned with the columns of ``values``."""
    files, sections = quality(run, out, formats, plot, seed)
    f, lines = slice_sections(run, slice_by, points, values, budgets, n_boot, seed, level, out)
    files += f
    sections += ["", *lines] if lines else []
    policies = policy_table(run, points, values, counts, models, level, n_orders, seed)
    files += write_table(policies, out, "policies")
    sections += ["", "## Adaptive allocation (offline, on the recorded samples)", "",
                 "Each policy decides per problem from the samples it has drawn so far (never from the label), "
                 f"replayed over {n_orders} random orders of the recorded samples. `gain` is its success minus the "
                 "best fixed (S, V) point with no more compute, with a paired bootstrap interval; "
                 "`by_difficulty` chooses (S, V) per bin of early agreement on the other half of the problems.", ""]
    cols = [c for c in ("policy", "success", "ci_lo", "ci_hi", "compute", "fixed_label", "fixed_S", "fixed_V",
                        "fixed_success", "gain", "gain_lo", "gain_hi") if c in policies.columns]
    sections += markdown_table(policies.select(cols))
    return BeyondResult(files, sections, policies)
