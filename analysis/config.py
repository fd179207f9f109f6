"""The analysis stage's typed configuration (Hydra primary config ``conf/analysis.yaml``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from analysis.compute import AXES
from analysis.curves import METHODS
from analysis.estimators import TIE_RULES
from analysis.load import VOTE_KEYS

GRIDS = ("auto", "all", "pow2")
# grid=auto evaluates every integer (S, V) while there are at most this many pairs, else powers of two
# (best-of-N over every integer pair of a 128 x 128 run costs minutes, the powers of two seconds).
AUTO_GRID_MAX_PAIRS = 8192


@dataclass
class AnalysisConfig:
    """What to analyse and how. Validated on construction, so a bad value fails before any work."""

    run_dir: str = "???"
    out_dir: Optional[str] = None  # default <run_dir>/analysis
    axis: str = "normalized"  # compute axis: normalized | flops | replica_seconds
    vote_key: str = "equivalence"  # equivalence (grader classes) | string (exact answer strings)
    ties: str = "expected"  # expected | first_seen | random
    grid: str = "auto"  # all: every integer S and V; pow2: 1, 2, 4, ... and the maximum; auto: see AUTO_GRID_MAX_PAIRS
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    draws: int = 8  # Monte-Carlo draws (verification subsets, vote orders)
    bootstrap: int = 1000  # bootstrap resamples over problems
    ci_level: float = 0.95
    seed: int = 0
    budgets_per_decade: int = 8
    lam: Optional[float] = None  # override the measured lambda of the normalized axis
    model_params: dict[str, float] = field(default_factory=dict)  # parameter count per model name
    plots: bool = True
    slice_by: list[str] = field(default_factory=lambda: ["dataset", "level", "subject"])  # problem columns
    policy_orders: int = 16  # random sample orders each adaptive policy is replayed over
    plot_formats: list[str] = field(default_factory=lambda: ["png", "svg"])

    def __post_init__(self):
        choices = {"axis": AXES, "vote_key": VOTE_KEYS, "ties": TIE_RULES, "grid": GRIDS}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"analysis config: {key}={getattr(self, key)!r}; expected one of {allowed}")
        bad = sorted(set(self.methods) - set(METHODS))
        if bad or not self.methods:
            raise ValueError(f"analysis config: methods={list(self.methods)}; choose from {METHODS}")
        for key in ("draws", "bootstrap", "budgets_per_decade", "policy_orders"):
            if getattr(self, key) < 1:
                raise ValueError(f"analysis config: {key} must be >= 1, got {getattr(self, key)}")
        if not 0 < self.ci_level < 1:
            raise ValueError(f"analysis config: ci_level must be in (0, 1), got {self.ci_level}")
        if self.lam is not None and self.lam < 0:
            raise ValueError(f"analysis config: lam must be >= 0, got {self.lam}")
        if not self.run_dir or self.run_dir == "???":
            raise ValueError("analysis config: run_dir is required (python -m analysis.run run_dir=...)")
        bad_formats = sorted(set(self.plot_formats) - {"png", "svg", "pdf"})
        if bad_formats:
            raise ValueError(f"analysis config: plot_formats {bad_formats} not in png, svg, pdf")
