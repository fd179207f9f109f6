"""ProcessBench evaluation: reading the benchmark, critic / PRM predictions, and the F1 metric.

Metric (as in ProcessBench and ``data/processbench/README.md``): per subset, accuracy on erroneous
samples (label >= 0; correct iff prediction == label) and on correct samples (label == -1; correct
iff prediction == -1); F1 is their harmonic mean; the headline number is the *unweighted* mean of
the subset F1s. A missing or unparsed prediction (None) counts as wrong.

PRMs predict the first step whose score is below a threshold (-1 if none). The threshold is chosen
on a tuning split disjoint from the test split (``evaluate_prm``): ``sweep_thresholds`` only ever
sees tuning rows, and the full sweep is returned so it can be reported.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")
_FIELDS = {"id": str, "generator": str, "problem": str, "steps": list, "final_answer_correct": bool, "label": int}


# ---------------------------------------------------------------------------------------------
# Reading the benchmark.
# ---------------------------------------------------------------------------------------------
def read_processbench(path: str | Path, subsets: Sequence[str] | None = None) -> pl.DataFrame:
    """ProcessBench records from a JSONL file or a directory of ``processbench_<subset>.jsonl``.

    Columns: ``id, subset, generator, problem, steps (list[str]), final_answer_correct, label``.
    ``subset`` is the part of ``id`` before its last ``-``. Bad records raise ValueError naming the
    file, line and key.
    """
    path = Path(path)
    files = sorted(path.glob("processbench_*.jsonl")) if path.is_dir() else [path]
    if not files:
        raise FileNotFoundError(f"no processbench_*.jsonl files in {path}")
    rows = []
    for file in files:
        with open(file, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    rows.append(_record(json.loads(line), f"{file}:{lineno}"))
    df = pl.DataFrame(rows, schema={"id": pl.String, "subset": pl.String, "generator": pl.String,
                                    "problem": pl.String, "steps": pl.List(pl.String),
                                    "final_answer_correct": pl.Boolean, "label": pl.Int64})
    return df if subsets is None else df.filter(pl.col("subset").is_in(list(subsets)))


def _record(rec: dict, where: str) -> dict:
    for key, typ in _FIELDS.items():
        if key not in rec:
            raise ValueError(f"{where}: missing key {key!r}")
        if not isinstance(rec[key], typ) or (typ is int and isinstance(rec[key], bool)):
            raise ValueError(f"{where}: key {key!r} should be {typ.__name__}, got {type(rec[key]).__name__}")
    steps, label = rec["steps"], rec["label"]
    if not all(isinstance(s, str) for s in steps):
        raise ValueError(f"{where}: key 'steps' should hold strings")
    if not -1 <= label < len(steps):
        raise ValueError(f"{where}: key 'label' = {label} outside [-1, {len(steps) - 1}]")
    return {**{k: rec[k] for k in _FIELDS}, "subset": rec["id"].rsplit("-", 1)[0]}


# ---------------------------------------------------------------------------------------------
# The metric.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SubsetScore:
    subset: str
    n_erroneous: int
    n_correct: int
    acc_erroneous: float  # NaN when the subset has no erroneous sample
    acc_correct: float  # NaN when the subset has no correct sample
    f1: float


@dataclass(frozen=True)
class ProcessBenchReport:
    subsets: tuple[SubsetScore, ...]  # sorted by subset name
    mean_f1: float  # unweighted mean of the subset F1s

    def to_polars(self) -> pl.DataFrame:
        """One row per subset plus a final ``mean`` row (F1 only)."""
        rows = [vars(s) for s in self.subsets]
        rows.append({"subset": "mean", "n_erroneous": sum(s.n_erroneous for s in self.subsets),
                     "n_correct": sum(s.n_correct for s in self.subsets),
                     "acc_erroneous": None, "acc_correct": None, "f1": self.mean_f1})
        return pl.DataFrame(rows)


def harmonic_f1(acc_erroneous: float, acc_correct: float) -> float:
    """Harmonic mean of the two accuracies (0 when both are 0)."""
    total = acc_erroneous + acc_correct
    return 0.0 if total == 0 else 2 * acc_erroneous * acc_correct / total


def processbench_report(
    subsets: Sequence[str], labels: Sequence[int], predictions: Sequence[int | None]
) -> ProcessBenchReport:
    """ProcessBench accuracies and F1 per subset and their unweighted mean F1 (see module doc)."""
    if not len(subsets) == len(labels) == len(predictions):
        raise ValueError(f"lengths differ: {len(subsets)} subsets, {len(labels)} labels, {len(predictions)} predictions")
    hits: dict[str, list[list[bool]]] = {}  # subset -> [hits on erroneous, hits on correct]
    for subset, label, pred in zip(subsets, labels, predictions):
        hits.setdefault(subset, [[], []])[label == -1].append(pred is not None and pred == label)
    scores = []
    for subset in sorted(hits):
        err, cor = hits[subset]
        acc_err = float(np.mean(err)) if err else float("nan")
        acc_cor = float(np.mean(cor)) if cor else float("nan")
        scores.append(SubsetScore(subset, len(err), len(cor), acc_err, acc_cor, harmonic_f1(acc_err, acc_cor)))
    mean = float(np.mean([s.f1 for s in scores])) if scores else float("nan")
    return ProcessBenchReport(tuple(scores), mean)


def _as_polars(table: pl.DataFrame | pa.Table) -> pl.DataFrame:
    return pl.from_arrow(table) if isinstance(table, pa.Table) else table


def report_from_table(table: pl.DataFrame | pa.Table, prediction: str = "prediction", label: str = "label",
                      subset: str = "subset") -> ProcessBenchReport:
    """``processbench_report`` over columns of a polars DataFrame or Arrow table (null predictions
    count as wrong)."""
    df = _as_polars(table)
    _require(df, (prediction, label, subset))
    return processbench_report(df[subset].to_list(), df[label].to_list(), df[prediction].to_list())


def majority_index(predictions: Sequence[int | None]) -> int | None:
    """Majority vote over a critic's sampled predictions (unparsed ones abstain); ties go to the
    prediction seen first; None when no sample parsed."""
    counts = Counter(p for p in predictions if p is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(p for p in predictions if p is not None and counts[p] == best)


# ---------------------------------------------------------------------------------------------
# PRMs: threshold predictions, sweep on a tuning split, evaluate on the test split.
# ---------------------------------------------------------------------------------------------
DEFAULT_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.01, 1.0, 0.01))


def prm_prediction(step_scores: Sequence[float] | None, threshold: float) -> int | None:
    """Index of the first step scored below ``threshold``, -1 if none; None without scores."""
    if step_scores is None or len(step_scores) == 0:
        return None
    below = np.flatnonzero(np.asarray(step_scores, dtype=float) < threshold)
    return int(below[0]) if below.size else -1


@dataclass(frozen=True)
class ThresholdSweep:
    thresholds: tuple[float, ...]
    mean_f1: tuple[float, ...]
    best_threshold: float  # highest mean F1; ties go to the smallest threshold
    best_mean_f1: float

    def to_polars(self) -> pl.DataFrame:
        return pl.DataFrame({"threshold": self.thresholds, "mean_f1": self.mean_f1})


def sweep_thresholds(
    subsets: Sequence[str], labels: Sequence[int], step_scores: Sequence[Sequence[float] | None],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> ThresholdSweep:
    """Mean F1 of the PRM at each threshold on the rows given, which must be the *tuning* split."""
    if not thresholds:
        raise ValueError("no thresholds to sweep")
    ts = tuple(sorted(float(t) for t in thresholds))
    f1s = tuple(processbench_report(subsets, labels, [prm_prediction(s, t) for s in step_scores]).mean_f1
                for t in ts)
    if any(np.isnan(f1s)):
        raise ValueError("the tuning split needs erroneous and correct samples in every subset")
    best = int(np.argmax(f1s))  # argmax returns the first maximum: the smallest tied threshold
    return ThresholdSweep(ts, f1s, ts[best], f1s[best])


def tuning_mask(ids: Sequence[str], tune_fraction: float = 0.2, seed: int = 0) -> list[bool]:
    """Deterministic split: True for ids in the tuning split (about ``tune_fraction`` of them).

    Decided per id by a hash of (seed, id), so it does not depend on row order or on other rows.
    """
    if not 0 < tune_fraction < 1:
        raise ValueError(f"tune_fraction must be in (0, 1), got {tune_fraction}")
    return [_uniform(f"{seed}:{i}") < tune_fraction for i in ids]


def _uniform(key: str) -> float:
    """A uniform number in [0, 1) determined by ``key``."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2**64


@dataclass(frozen=True)
class PRMEvaluation:
    threshold: float  # chosen on the tuning split
    sweep: ThresholdSweep  # the tuning-split sweep, for the report
    test: ProcessBenchReport  # the test split at that threshold
    n_tune: int
    n_test: int


def evaluate_prm(table: pl.DataFrame | pa.Table, scores: str = "step_scores", tune_fraction: float = 0.2, seed: int = 0,
                 thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> PRMEvaluation:
    """Pick the PRM threshold on a tuning split of ``df`` and report ProcessBench F1 on the rest.

    ``table`` needs columns ``id``, ``subset``, ``label`` and ``scores`` (list of per-step scores;
    null counts as wrong). Test rows never influence the threshold.
    """
    df = _as_polars(table)
    _require(df, ("id", "subset", "label", scores))
    mask = pl.Series(tuning_mask(df["id"].to_list(), tune_fraction, seed))
    return evaluate_prm_split(df.filter(mask), df.filter(~mask), scores, thresholds)


def evaluate_prm_split(tune: pl.DataFrame | pa.Table, test: pl.DataFrame | pa.Table, scores: str = "step_scores",
                       thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> PRMEvaluation:
    """Pick the PRM threshold on ``tune`` (a separate split, e.g. the toy tune file) and report
    ProcessBench F1 on ``test`` at that threshold; columns as for :func:`evaluate_prm` (``id`` not needed)."""
    tune, test = _as_polars(tune), _as_polars(test)
    for df in (tune, test):
        _require(df, ("subset", "label", scores))
    sweep = sweep_thresholds(tune["subset"].to_list(), tune["label"].to_list(), tune[scores].to_list(), thresholds)
    preds = [prm_prediction(s, sweep.best_threshold) for s in test[scores].to_list()]
    report = processbench_report(test["subset"].to_list(), test["label"].to_list(), preds)
    return PRMEvaluation(sweep.best_threshold, sweep, report, tune.height, test.height)


def _require(df: pl.DataFrame, columns: Sequence[str]) -> None:
    for col in columns:
        if col not in df.columns:
            raise KeyError(f"column {col!r} not in table columns {df.columns}")
