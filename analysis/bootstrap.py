"""Bootstrap over problems: confidence intervals for curve points and paired differences between methods.

Problems are resampled with replacement (the unit of variation of a benchmark); every point and every
method sees the same resamples, so a difference between two methods is a paired bootstrap. Resamples are
drawn once as a (B, P) count matrix (seeded), and a resampled mean is a matrix product, so thousands of
resamples over thousands of curve points cost one BLAS call. NaN entries (a k the problem cannot supply)
are left out of that problem's column. Intervals are percentile intervals.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Bound the (B, G) block of resampled means kept at once (~64 MiB of float64).
_MAX_BLOCK = 8_000_000


@dataclass(frozen=True)
class Interval:
    """Point estimates and percentile intervals, each shaped like the input's trailing axes."""

    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def resample_counts(n_problems: int, n_resamples: int, seed: int) -> np.ndarray:
    """How often each problem appears in each resample: (B, P) float counts summing to P per row."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_problems, np.full(n_problems, 1.0 / n_problems), size=n_resamples).astype(float)


def _nanmean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean over problems (axis 0 of values) skipping NaN; weights (B, P) -> (B, G)."""
    ok = ~np.isnan(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ np.where(ok, values, 0.0)) / (weights @ ok)


def interval(values: np.ndarray, counts: np.ndarray, level: float = 0.95) -> Interval:
    """Mean over problems of ``values`` (P, G) with a bootstrap percentile interval per column."""
    values = values.reshape(values.shape[0], -1)
    mean = _nanmean(values, np.ones((1, values.shape[0])))[0]
    lo, hi = np.empty_like(mean), np.empty_like(mean)
    step = max(1, _MAX_BLOCK // max(counts.shape[0], 1))
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    for start in range(0, values.shape[1], step):
        block = _nanmean(values[:, start:start + step], counts)
        lo[start:start + step], hi[start:start + step] = np.nanpercentile(block, q, axis=0) \
            if np.isnan(block).any() else np.percentile(block, q, axis=0)
    return Interval(mean, lo, hi)


def paired_difference(a: np.ndarray, b: np.ndarray, counts: np.ndarray, level: float = 0.95) -> Interval:
    """Mean of a - b over problems with a paired bootstrap interval (same resamples for both)."""
    return interval(a - b, counts, level)


def resampled_means(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The (B, G) resampled means themselves, for statistics of the curves (e.g. a frontier's max)."""
    return _nanmean(values.reshape(values.shape[0], -1), counts)
