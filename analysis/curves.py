"""Evaluate every selection method of a run on a grid of (S, V): per-problem expected success per point.

Methods (``METHODS``) and the columns they need:
- ``oracle``: pass@S, the upper bound (V = 0).
- ``majority``: self-consistency over answer classes (V = 0).
- ``best_of_n``: per verifier and per-verification score (``p_yes``, ``verdict`` = mean verdict,
  ``prm_min`` / ``prm_last`` / ``prm_prod`` = PRM step-score aggregations), V >= 1.
- ``weighted_majority``: per verifier, weights from ``p_yes`` (else ``prm_min``), V >= 1.
- ``self_prm``: per verifier with verdicts: keep solutions judged correct, then majority, V >= 1.
A verifier method is evaluated at V up to that verifier's recorded count. Each method draws from its
own random stream derived from (seed, method label), so adding a method changes no other method.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from analysis import estimators as est
from analysis.load import RunArrays

METHODS = ("oracle", "majority", "best_of_n", "weighted_majority", "self_prm")
VERIFICATION_METHODS = ("best_of_n", "weighted_majority", "self_prm")
BON_SCORES = ("p_yes", "verdict", "prm_min", "prm_last", "prm_prod")
WEIGHT_SCORES = ("p_yes", "prm_min")


@dataclass(frozen=True)
class Curves:
    """Grid points (``points``: method, verifier, score, label, S, V) and per-problem values (P, G)."""

    points: pl.DataFrame
    values: np.ndarray
    mc_se: np.ndarray


def label_of(method: str, verifier: str | None = None, score: str | None = None) -> str:
    """Human-readable method label, e.g. ``best_of_n[genrm:p_yes]``."""
    if verifier is None:
        return method
    return f"{method}[{verifier}:{score}]" if score else f"{method}[{verifier}]"


def _rng(seed: int, label: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(label.encode())])


def evaluate(run: RunArrays, s_values, v_values, *, vote_key: str = "equivalence", ties: str = "expected",
             draws: int = 8, seed: int = 0, methods=METHODS) -> Curves:
    """Evaluate ``methods`` at every S in ``s_values`` and (verifier methods) every V in ``v_values``
    with 1 <= V <= recorded; S beyond a problem's solutions gives NaN for that problem."""
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; known: {METHODS}")
    ks = np.array(sorted({int(s) for s in s_values if 1 <= s <= run.max_solutions}))
    if ks.size == 0:
        raise ValueError(f"no S in {list(s_values)} within 1..{run.max_solutions} recorded solutions")
    classes = run.classes[vote_key]
    valid, correct = run.valid, run.correct
    rows, blocks, ses = [], [], []

    def add(method, verifier, score, vs, estimate: est.Estimate):
        value = estimate.value.reshape(len(valid), len(vs), len(ks))
        se = estimate.se.reshape(value.shape)
        for vi, v in enumerate(vs):
            rows.extend({"method": method, "verifier": verifier, "score": score,
                         "label": label_of(method, verifier, score), "S": int(k), "V": int(v)} for k in ks)
            blocks.append(value[:, vi, :])
            ses.append(se[:, vi, :])

    if "oracle" in methods:
        add("oracle", None, None, [0], est.pass_at_k(valid.sum(1), (correct & valid).sum(1), ks))
    if "majority" in methods:
        add("majority", None, None, [0],
            est.majority_vote(classes, correct, valid, ks, ties=ties, rng=_rng(seed, "majority"), draws=draws))
    for name, ver in sorted(run.verifiers.items()):
        vs = np.array(sorted({int(v) for v in v_values if 1 <= v <= ver.max_verifications}))
        if vs.size == 0:
            continue
        if "best_of_n" in methods:
            for score in BON_SCORES:
                if score in ver.scores:
                    values, present = ver.scores[score]
                    lab = label_of("best_of_n", name, score)
                    add("best_of_n", name, score, vs, est.best_of_n_at_v(
                        values, present, correct, valid, ks, vs, _rng(seed, lab), draws))
        weight = next((s for s in WEIGHT_SCORES if s in ver.scores), None)
        if "weighted_majority" in methods and weight:
            values, present = ver.scores[weight]
            lab = label_of("weighted_majority", name, weight)
            add("weighted_majority", name, weight, vs, est.weighted_majority(
                classes, correct, valid, values, present, ks, vs, _rng(seed, lab), draws, ties))
        if "self_prm" in methods and "verdict" in ver.scores:
            values, present = ver.scores["verdict"]
            lab = label_of("self_prm", name, "verdict")
            add("self_prm", name, "verdict", vs, est.self_prm_majority(
                classes, correct, valid, values, present, ks, vs, _rng(seed, lab), draws, ties))
    points = pl.DataFrame(rows, schema={"method": pl.String, "verifier": pl.String, "score": pl.String,
                                        "label": pl.String, "S": pl.Int64, "V": pl.Int64})
    return Curves(points, np.concatenate(blocks, axis=1), np.concatenate(ses, axis=1))
