"""Scaling laws of the compute-optimal split: S_opt ~ C^a and V_opt ~ C^b by log-log regression.

A fit is made only from at least ``MIN_DISTINCT_OPTIMA`` distinct optimum values (fewer distinct values
make a staircase whose slope says nothing); otherwise the result says why no exponent is given. The
interval is the regression slope +- t(n-2) x its standard error (scipy.stats.linregress).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

MIN_DISTINCT_OPTIMA = 5


@dataclass(frozen=True)
class PowerLawFit:
    """optimum ~ prefactor * C^exponent; when ``fitted`` is False the numbers are NaN and ``reason`` says why."""

    quantity: str
    fitted: bool
    reason: str
    n_points: int
    n_distinct: int
    exponent: float = float("nan")
    exponent_lo: float = float("nan")
    exponent_hi: float = float("nan")
    prefactor: float = float("nan")
    r2: float = float("nan")

    def describe(self) -> str:
        """One line for the report."""
        if not self.fitted:
            return f"{self.quantity}: no fit ({self.reason})"
        return (f"{self.quantity} ∝ C^{self.exponent:.3f} (95% CI {self.exponent_lo:.3f} to {self.exponent_hi:.3f}; "
                f"R² {self.r2:.3f}; {self.n_points} budgets, {self.n_distinct} distinct optima)")


def fit_power_law(budgets, optima, quantity: str, level: float = 0.95,
                  min_distinct: int = MIN_DISTINCT_OPTIMA) -> PowerLawFit:
    """Fit log(optimum) = log(prefactor) + exponent * log(budget) over points with optimum > 0."""
    budgets, optima = np.asarray(budgets, dtype=float), np.asarray(optima, dtype=float)
    keep = (optima > 0) & (budgets > 0) & np.isfinite(optima)
    budgets, optima = budgets[keep], optima[keep]
    distinct = int(np.unique(optima).size)
    if distinct < min_distinct:
        return PowerLawFit(quantity, False, f"only {distinct} distinct optima over {keep.sum()} budgets; "
                           f"a fit needs at least {min_distinct}", int(keep.sum()), distinct)
    res = stats.linregress(np.log(budgets), np.log(optima))
    half = stats.t.ppf((1 + level) / 2, len(budgets) - 2) * res.stderr
    return PowerLawFit(quantity, True, "", len(budgets), distinct, float(res.slope), float(res.slope - half),
                       float(res.slope + half), float(np.exp(res.intercept)), float(res.rvalue ** 2))
