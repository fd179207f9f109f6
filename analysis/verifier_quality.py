"""How good is a verifier? Discrimination, calibration and agreement of its scores against correctness.

Pure functions over arrays (``auroc``, ``average_precision``, ``expected_calibration_error``, ...) and table
functions over the pipeline's ``solutions`` / ``verifications`` tables (``quality_table``,
``quality_vs_v``, ``agreement_table``). A solution's score is the mean ``p_yes`` of its verifications; its
verdict is the majority of its parsed verdicts. Labels are ``solutions.is_correct``.
"""
from __future__ import annotations

import numpy as np
import polars as pl
from scipy.stats import rankdata, spearmanr


# ---------------------------------------------------------------------------------------------
# Metrics over arrays
# ---------------------------------------------------------------------------------------------
def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); NaN if one class is empty."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision Σ (R_k − R_{k−1}) P_k over distinct score thresholds (scikit-learn's definition)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    if labels.sum() == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    # Tied scores form one threshold: keep the last index of each run of equal scores.
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / labels.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> pl.DataFrame:
    """Equal-width probability bins: count, mean predicted probability and observed accuracy per bin."""
    probs, labels = np.asarray(probs, float), np.asarray(labels, bool)
    idx = np.minimum((probs * n_bins).astype(int), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    conf = np.bincount(idx, weights=probs, minlength=n_bins)
    acc = np.bincount(idx, weights=labels.astype(float), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pl.DataFrame(
            {
                "bin_lo": np.arange(n_bins) / n_bins,
                "bin_hi": (np.arange(n_bins) + 1) / n_bins,
                "count": count,
                "mean_p": np.where(count > 0, conf / count, np.nan),
                "accuracy": np.where(count > 0, acc / count, np.nan),
            }
        )


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """ECE = Σ_b (n_b / N) · |accuracy_b − mean_p_b| over equal-width bins."""
    bins = reliability_bins(probs, labels, n_bins).filter(pl.col("count") > 0)
    n = bins["count"].sum()
    if n == 0:
        return float("nan")
    gap = (bins["accuracy"] - bins["mean_p"]).abs()
    return float((bins["count"] * gap).sum() / n)


def precision_recall(predicted: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Precision and recall of verdicts, "correct" being the positive class; NaN where undefined."""
    predicted, labels = np.asarray(predicted, bool), np.asarray(labels, bool)
    tp = np.sum(predicted & labels)
    precision = tp / predicted.sum() if predicted.sum() else float("nan")
    recall = tp / labels.sum() if labels.sum() else float("nan")
    return float(precision), float(recall)


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa between two binary raters."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.size == 0:
        return float("nan")
    observed = np.mean(a == b)
    expected = a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean())
    return float((observed - expected) / (1 - expected)) if expected < 1 else float("nan")


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------
_KEY = ["problem_id", "solution_idx"]


def solution_scores(verifications: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """One row per (verifier, solution): mean p_yes, majority verdict (ties → judged wrong), count."""
    return (
        verifications.lazy()
        .group_by(["verifier", *_KEY])
        .agg(
            pl.col("p_yes").mean().alias("score"),
            (pl.col("verdict").cast(pl.Float64).mean() > 0.5).alias("verdict"),
            pl.len().alias("n_verifications"),
        )
        .collect()
    )


def _with_labels(scores: pl.DataFrame, solutions: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    labels = solutions.lazy().select(*_KEY, "is_correct").filter(pl.col("is_correct").is_not_null()).collect()
    return scores.join(labels, on=_KEY, how="inner")


def _metrics(score: np.ndarray, verdict: np.ndarray, label: np.ndarray, n_bins: int) -> dict[str, float]:
    ok = ~np.isnan(score)
    precision, recall = precision_recall(verdict, label)
    return {
        "n_solutions": int(label.size),
        "base_rate": float(label.mean()) if label.size else float("nan"),
        "auroc": auroc(score[ok], label[ok]),
        "average_precision": average_precision(score[ok], label[ok]),
        "ece": expected_calibration_error(score[ok], label[ok], n_bins),
        "verdict_precision": precision,
        "verdict_recall": recall,
    }


def quality_table(solutions, verifications, n_bins: int = 10) -> pl.DataFrame:
    """Per verifier: AUROC, average precision and ECE of the mean p_yes; verdict precision/recall."""
    joined = _with_labels(solution_scores(verifications), solutions)
    rows = []
    for (verifier,), g in joined.group_by(["verifier"], maintain_order=True):
        rows.append({"verifier": verifier, **_metrics(
            g["score"].fill_null(np.nan).to_numpy(), g["verdict"].fill_null(False).to_numpy(),
            g["is_correct"].to_numpy(), n_bins)})
    return pl.DataFrame(rows)


def quality_vs_v(solutions, verifications, v_values: list[int], n_bins: int = 10, seed: int = 0) -> pl.DataFrame:
    """The same metrics when each solution's score averages a random size-V subset of its verifications.

    Solutions with fewer than V recorded verifications are left out at that V. The subset is drawn
    independently per solution with ``seed`` (same seed → same table).
    """
    rng = np.random.default_rng(seed)
    v = (
        verifications.lazy()
        .select("verifier", *_KEY, "verification_idx", "p_yes", "verdict")
        .sort(["verifier", *_KEY, "verification_idx"])
        .collect()
    )
    # A random rank per verification within its solution: the first V ranks are a uniform V-subset.
    v = v.with_columns(pl.Series("_u", rng.random(v.height)))
    v = v.with_columns(pl.col("_u").rank("ordinal").over(["verifier", *_KEY]).alias("_rank"))
    rows = []
    for k in v_values:
        eligible = v.filter(pl.len().over(["verifier", *_KEY]) >= k).filter(pl.col("_rank") <= k)
        joined = _with_labels(solution_scores(eligible), solutions)
        for (verifier,), g in joined.group_by(["verifier"], maintain_order=True):
            rows.append({"verifier": verifier, "V": k, **_metrics(
                g["score"].fill_null(np.nan).to_numpy(), g["verdict"].fill_null(False).to_numpy(),
                g["is_correct"].to_numpy(), n_bins)})
    return pl.DataFrame(rows)


def agreement_table(verifications) -> pl.DataFrame:
    """Pairwise agreement between verifiers on the solutions both scored: Cohen's kappa of the majority
    verdicts and Spearman correlation of the mean p_yes."""
    scores = solution_scores(verifications)
    names = sorted(scores["verifier"].unique().to_list())
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pair = scores.filter(pl.col("verifier") == a).join(
                scores.filter(pl.col("verifier") == b), on=_KEY, suffix="_b")
            rho = spearmanr(pair["score"], pair["score_b"]).statistic if pair.height > 2 else float("nan")
            rows.append({
                "verifier_a": a, "verifier_b": b, "n_solutions": pair.height,
                "kappa_verdict": cohen_kappa(pair["verdict"].fill_null(False).to_numpy(),
                                             pair["verdict_b"].fill_null(False).to_numpy()),
                "spearman_score": float(rho),
            })
    return pl.DataFrame(rows, schema={"verifier_a": pl.String, "verifier_b": pl.String, "n_solutions": pl.Int64,
                                      "kappa_verdict": pl.Float64, "spearman_score": pl.Float64})
