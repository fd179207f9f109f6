"""Every curve and frontier broken down by a problem column (dataset, level, subject, ...).

The estimators give one expected success per problem and curve point, so a slice is a restriction of
the problem axis: its curve points are means over the slice's problems with bootstrap intervals over
those problems only, and its frontier is built from the same points on them. Nothing is re-estimated.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from analysis import bootstrap
from analysis.frontier import build_frontier
from analysis.load import RunArrays, read_table

NO_VALUE = "(none)"


def slice_labels(run: RunArrays, column: str) -> np.ndarray | None:
    """The value of problems.``column`` for each of the run's problems (as strings), or None when the
    column is absent or has fewer than two distinct values (nothing to break down)."""
    problems = read_table(run.run_dir, "problems")
    if column not in problems.columns:
        raise ValueError(f"slice_by: the problems table has no column {column!r}; columns: {problems.columns}")
    labels = (pl.DataFrame({"problem_id": run.problem_ids})
              .join(problems.select("problem_id", pl.col(column).cast(pl.String)), on="problem_id", how="left")
              [column].fill_null(NO_VALUE).to_numpy())
    return labels if len(set(labels)) >= 2 else None


def _values_sorted(labels: np.ndarray) -> list[str]:
    def key(v: str):
        return (0, float(v), v) if v.lstrip("-").replace(".", "", 1).isdigit() else (1, 0.0, v)
    return sorted(set(labels), key=key)


def slice_curves(points: pl.DataFrame, values: np.ndarray, labels: np.ndarray, column: str,
                 n_boot: int, seed: int, level: float) -> pl.DataFrame:
    """Per slice value: every curve point's success with a bootstrap interval over the slice's problems."""
    out = []
    for value in _values_sorted(labels):
        mask = labels == value
        counts = bootstrap.resample_counts(int(mask.sum()), n_boot, seed)
        ci = bootstrap.interval(values[mask], counts, level)
        out.append(points.with_columns(slice_by=pl.lit(column), slice=pl.lit(value),
                                       n_problems=pl.lit(int(mask.sum())),
                                       success=ci.mean, ci_lo=ci.lo, ci_hi=ci.hi))
    return pl.concat(out)


def slice_frontiers(points: pl.DataFrame, values: np.ndarray, labels: np.ndarray, column: str,
                    budgets: np.ndarray, n_boot: int, seed: int, level: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per slice value: the frontier table (best point per budget and family) and the gain of
    verification over self-consistency with paired intervals."""
    tables, gains = [], []
    for value in _values_sorted(labels):
        mask = labels == value
        counts = bootstrap.resample_counts(int(mask.sum()), n_boot, seed)
        f = build_frontier(points, values[mask], counts, budgets, level)
        tag = dict(slice_by=pl.lit(column), slice=pl.lit(value), n_problems=pl.lit(int(mask.sum())))
        tables.append(f.table.with_columns(**tag))
        gains.append(f.gain.with_columns(**tag))
    return pl.concat(tables), pl.concat(gains, how="diagonal_relaxed")
