"""Success vs compute: iso-compute optima per budget, the crossover budget, and gain at matched compute.

For a budget B and a method, the candidates are the points on the iso-compute line: for every recorded
V, the largest evaluated S with cost(S, V) <= B (with the default grid every integer S and V is
evaluated, so these are exact integer points, not powers of two). The method's value at B is its best
candidate. Families: ``self_consistency`` (majority, V = 0), ``verification`` (every verifier method,
V >= 1) and ``best`` (both). ``oracle`` (pass@S) is a bound, never a candidate.
CIs of a chosen point are its bootstrap interval; gains use a paired bootstrap over the same problems.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from analysis import bootstrap
from analysis.curves import VERIFICATION_METHODS

FAMILIES = {
    "self_consistency": pl.col("method") == "majority",
    "verification": pl.col("method").is_in(VERIFICATION_METHODS),
    "best": pl.col("method") != "oracle",
}


@dataclass(frozen=True)
class Frontier:
    """``table``: per (budget, family) the chosen point and its success with CI; ``per_method``: the same
    per (budget, method label); ``gain``: per budget the verification frontier minus self-consistency
    (absolute and relative, paired CIs); ``crossover``: the smallest budget from which verification stays
    ahead (None if it is not ahead at the largest budget)."""

    table: pl.DataFrame
    per_method: pl.DataFrame
    gain: pl.DataFrame
    crossover: float | None


def budget_grid(compute: np.ndarray, per_decade: int) -> np.ndarray:
    """Geometric budgets from the cheapest to the most expensive evaluated point."""
    lo, hi = float(np.min(compute)), float(np.max(compute))
    n = max(2, int(np.ceil(np.log10(hi / lo) * per_decade)) + 1)
    return np.unique(np.geomspace(lo, hi, n))


def iso_compute_points(points: pl.DataFrame, budgets: np.ndarray) -> pl.DataFrame:
    """Per (budget, label, V) the largest-S point with compute <= budget; points need ``col`` (column
    index into the value matrix), ``compute``, ``S``, ``V``, ``label``, ``method``."""
    b = pl.DataFrame({"budget": budgets}).lazy()
    return (b.join(points.lazy(), how="cross")
            .filter(pl.col("compute") <= pl.col("budget") * (1 + 1e-12))
            .sort("S")
            .group_by("budget", "label", "V").last()
            .collect())


def best_per_budget(candidates: pl.DataFrame, success: np.ndarray, family: pl.Expr) -> pl.DataFrame:
    """The highest-success candidate of ``family`` at each budget (ties: the cheaper point)."""
    return (candidates.filter(family)
            .join(pl.DataFrame({"col": np.arange(len(success)), "success": success}), on="col")
            .sort("budget", "success", "compute", descending=[False, True, False])
            .group_by("budget", maintain_order=True).first())


def build_frontier(points: pl.DataFrame, values: np.ndarray, counts: np.ndarray, budgets: np.ndarray,
                   level: float = 0.95) -> Frontier:
    """Frontiers of every family, the crossover budget and the gain of verification over self-consistency."""
    points = points.with_row_index("col").with_columns(pl.col("col").cast(pl.Int64))
    ci = bootstrap.interval(values, counts, level)
    candidates = iso_compute_points(points, budgets)

    def chosen_table(expr: pl.Expr, **tags) -> pl.DataFrame:
        chosen = best_per_budget(candidates, ci.mean, expr)
        cols = chosen["col"].to_numpy()
        return (chosen.select("budget", "label", "method", "verifier", "score", "S", "V", "compute", "col")
                .with_columns(success=ci.mean[cols], ci_lo=ci.lo[cols], ci_hi=ci.hi[cols],
                              **{k: pl.lit(v) for k, v in tags.items()}))

    table = pl.concat([chosen_table(expr, family=f) for f, expr in FAMILIES.items()]).sort("family", "budget")
    labels = points.filter(pl.col("method") != "oracle")["label"].unique(maintain_order=True)
    per_method = pl.concat([chosen_table(pl.col("label") == lab) for lab in labels]).sort("label", "budget")
    gain = _gain(table, values, counts, level)
    return Frontier(table.drop("col"), per_method.drop("col"), gain, _crossover(gain))


def _gain(table: pl.DataFrame, values: np.ndarray, counts: np.ndarray, level: float) -> pl.DataFrame:
    sc = table.filter(pl.col("family") == "self_consistency").select("budget", sc_col="col", sc_label="label")
    ver = table.filter(pl.col("family") == "verification").select("budget", ver_col="col", ver_label="label")
    pairs = sc.join(ver, on="budget", how="inner").sort("budget")
    if pairs.height == 0:
        return pl.DataFrame(schema={"budget": pl.Float64, "sc_label": pl.String, "ver_label": pl.String,
                                    "sc": pl.Float64, "verification": pl.Float64, "gain": pl.Float64,
                                    "gain_lo": pl.Float64, "gain_hi": pl.Float64, "rel_gain": pl.Float64,
                                    "rel_lo": pl.Float64, "rel_hi": pl.Float64})
    a, b = values[:, pairs["ver_col"].to_numpy()], values[:, pairs["sc_col"].to_numpy()]
    diff = bootstrap.paired_difference(a, b, counts, level)
    ra, rb = bootstrap.resampled_means(a, counts), bootstrap.resampled_means(b, counts)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    # A resample where self-consistency scores 0 has an infinite relative gain; percentiles handle it.
    with np.errstate(invalid="ignore", divide="ignore"):
        rel_samples = ra / rb - 1
        rel = np.nanmean(a, 0) / np.nanmean(b, 0) - 1
        rel_lo, rel_hi = np.nanpercentile(rel_samples, q, axis=0)
    return pairs.select("budget", "sc_label", "ver_label").with_columns(
        sc=np.nanmean(b, 0), verification=np.nanmean(a, 0), gain=diff.mean, gain_lo=diff.lo, gain_hi=diff.hi,
        rel_gain=rel, rel_lo=rel_lo, rel_hi=rel_hi)


def _crossover(gain: pl.DataFrame) -> float | None:
    """Smallest budget from which verification is ahead at every larger budget."""
    ahead = (gain["gain"] > 0).to_list()
    if not ahead or not ahead[-1]:
        return None
    i = len(ahead)
    while i > 0 and ahead[i - 1]:
        i -= 1
    return float(gain["budget"][i])
