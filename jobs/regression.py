"""Flag tonight's metrics that fell outside the spread of past nights.

The rule (documented in jobs/README.md; every series is one (model, dataset, budget, metric)):

1. History = that series' values on the last ``window`` nights strictly before tonight (nulls dropped).
2. With fewer than ``min_history`` past values nothing is flagged (status ``insufficient_history``).
3. Baseline = median of the history; spread = 1.4826 · MAD (median absolute deviation, scaled to match
   a standard deviation under normal noise). Median and MAD are robust: one past bad night does not
   widen the band enough to hide the next one, as a mean ± k·std band would.
4. Tolerance = max(k · spread, min_delta, ci_factor · h), where h is half the width of tonight's
   confidence interval (the analysis' bootstrap over problems). The floors matter with few nights:
   a MAD from 3-5 values is often far below the real night-to-night noise (measured: an unchanged
   night with a new sampling seed, 200 problems, moved pass@1 by 0.03 against a history MAD of 0.005),
   and a change smaller than tonight's own sampling uncertainty is not evidence of a regression.
   ``min_delta`` (metric units) covers deterministic series whose spread is 0.
5. Signed change = tonight − baseline, negated for metrics listed in ``lower_is_better``. Below
   −tolerance: ``regression``; above +tolerance: ``improvement``; otherwise ``ok``. A series that has
   history but no value tonight is ``missing`` and counts as a regression.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import polars as pl

from jobs.history import SERIES_KEY

MAD_TO_STD = 1.4826
STATUSES = ("regression", "missing", "improvement", "ok", "insufficient_history")
FAILING = ("regression", "missing")


@dataclass(frozen=True)
class RegressionRule:
    """Parameters of the rule in the module docstring."""

    min_history: int = 3
    window: int = 14
    k: float = 3.0
    min_delta: float = 0.02
    ci_factor: float = 1.0
    lower_is_better: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.min_history < 2:
            raise ValueError(f"regression.min_history={self.min_history}: need at least 2 past nights for a spread")
        if self.window < self.min_history:
            raise ValueError(f"regression.window={self.window} is smaller than min_history={self.min_history}")
        if self.k <= 0 or self.min_delta < 0 or self.ci_factor < 0:
            raise ValueError(f"regression.k={self.k} must be > 0, min_delta={self.min_delta} and "
                             f"ci_factor={self.ci_factor} >= 0")


@dataclass(frozen=True)
class Finding:
    """Tonight's value of one series judged against its history."""

    model: str
    dataset: str
    budget: str
    metric: str
    value: float | None
    baseline: float | None
    spread: float | None
    tolerance: float | None
    n_history: int
    status: str

    @property
    def change(self) -> float | None:
        """tonight − baseline (raw units, not direction-adjusted)."""
        if self.value is None or self.baseline is None:
            return None
        return self.value - self.baseline

    @property
    def failing(self) -> bool:
        return self.status in FAILING


def judge(value: float | None, past: list[float], rule: RegressionRule, lower_is_better: bool,
          ci_half_width: float | None = None) -> tuple[str, float | None, float | None, float | None]:
    """(status, baseline, spread, tolerance) of ``value`` against ``past`` values (oldest first)."""
    past = past[-rule.window:]
    if len(past) < rule.min_history:
        return "insufficient_history", None, None, None
    baseline = statistics.median(past)
    spread = MAD_TO_STD * statistics.median(abs(p - baseline) for p in past)
    tolerance = max(rule.k * spread, rule.min_delta, rule.ci_factor * (ci_half_width or 0.0))
    if value is None:
        return "missing", baseline, spread, tolerance
    signed = (baseline - value) if lower_is_better else (value - baseline)
    if signed < -tolerance:
        status = "regression"
    elif signed > tolerance:
        status = "improvement"
    else:
        status = "ok"
    return status, baseline, spread, tolerance


def evaluate(history: pl.DataFrame, date: str, rule: RegressionRule) -> list[Finding]:
    """Judge every series recorded on ``date`` (plus series with history that lack a row tonight
    for a (model, dataset, budget) that did run tonight). Sorted: failing first, then by key."""
    tonight = history.filter(pl.col("date") == date)
    if tonight.is_empty():
        raise ValueError(f"history has no rows for {date}; nights present: {sorted(history['date'].unique())}")
    past = history.filter(pl.col("date") < date).sort("date")
    past_values: dict[tuple[str, ...], list[float]] = {}
    for row in past.filter(pl.col("value").is_not_null()).iter_rows(named=True):
        past_values.setdefault(tuple(row[k] for k in SERIES_KEY), []).append(row["value"])

    tonight_values = {tuple(r[k] for k in SERIES_KEY): r["value"] for r in tonight.iter_rows(named=True)}
    half_widths = {tuple(r[k] for k in SERIES_KEY): (r["ci_high"] - r["ci_low"]) / 2
                   for r in tonight.iter_rows(named=True) if r["ci_high"] is not None and r["ci_low"] is not None}
    runs_tonight = {key[:3] for key in tonight_values}
    # A metric that vanished from a run that did happen is a failure too (e.g. the analysis lost a method).
    keys = set(tonight_values) | {key for key in past_values if key[:3] in runs_tonight}

    findings = []
    for key in keys:
        value = tonight_values.get(key)
        status, baseline, spread, tolerance = judge(value, past_values.get(key, []), rule,
                                                    key[3] in rule.lower_is_better, half_widths.get(key))
        findings.append(Finding(*key, value=value, baseline=baseline, spread=spread, tolerance=tolerance,
                                n_history=min(len(past_values.get(key, [])), rule.window), status=status))
    return sorted(findings, key=lambda f: (STATUSES.index(f.status), f.model, f.dataset, f.budget, f.metric))
