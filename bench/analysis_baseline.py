"""A straightforward per-problem Python implementation of the analysis grid, for the bench's comparison.

Same semantics as ``analysis.estimators`` (exact pass@k, exact majority with expected ties, best-of-N
exact given scores that are means of random V-subsets, Monte-Carlo weighted majority and Self-PRM over
random solution orders) written the way one would first write it: loops over problems, subsets sizes
and solutions with ``math.comb``, ``random.sample`` and dicts; numpy only for the Gauss-Legendre nodes.
"""
from __future__ import annotations

import math
import random

import numpy as np


def pass_at_k(correct: list[bool], k: int) -> float:
    n, c = len(correct), sum(correct)
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def best_of_n(scores: list[float], correct: list[bool], k: int) -> float:
    """Exact over size-k subsets, uniform tie-break (groups of equal scores)."""
    n = len(scores)
    pairs = sorted(zip(scores, correct), key=lambda p: -p[0])
    total, i = 0.0, 0
    while i < n:
        j = i
        while j < n and pairs[j][0] == pairs[i][0]:
            j += 1
        hits = sum(c for _, c in pairs[i:j])
        total += hits / (j - i) * (math.comb(n - i, k) - math.comb(n - j, k))
        i = j
    return total / math.comb(n, k)


def majority_exact(classes: list[int], correct: list[bool], k: int) -> float:
    """Exact expected-tie majority at k by the same counting argument as the vectorised code, in loops."""
    n = len(classes)
    sizes: dict[int, int] = {}
    hits: dict[int, int] = {}
    for c, ok in zip(classes, correct):
        if c >= 0:
            sizes[c] = sizes.get(c, 0) + 1
            hits[c] = hits.get(c, 0) + ok
    total = 0.0
    for j, m_j in sizes.items():
        frac = hits[j] / m_j
        if frac == 0:
            continue
        others = [m for c, m in sizes.items() if c != j]
        for t in range(1, min(m_j, k) + 1):
            big = [m for m in others if m >= t]
            small = n - m_j - sum(big)
            nodes, weights = np.polynomial.legendre.leggauss(len(big) // 2 + 1)
            need = k - t
            tie_avg = 0.0
            for y, w in zip((nodes + 1) / 2, weights / 2):
                poly = [math.comb(small, u) for u in range(need + 1)]
                for m_l in big:
                    factor = [math.comb(m_l, u) for u in range(t)] + [y * math.comb(m_l, t)]
                    poly = [sum(factor[u] * poly[i - u] for u in range(min(i, t) + 1)) for i in range(need + 1)]
                tie_avg += w * poly[need]
            total += frac * math.comb(m_j, t) * tie_avg
    return total / math.comb(n, k)


def _vote(classes, weights, frac, k) -> float:
    tally: dict[int, float] = {}
    for c, w in zip(classes[:k], weights[:k]):
        if c >= 0:
            tally[c] = tally.get(c, 0.0) + w
    if not tally or max(tally.values()) <= 0:
        return 0.0
    top = max(tally.values())
    tied = [c for c, v in tally.items() if v == top]
    return sum(frac[c] for c in tied) / len(tied)


def problem_grid(classes, correct, p_yes, verdict, ks, vs, draws: int, rng: random.Random) -> dict:
    """All methods of one problem: {(method, S, V): value}; p_yes / verdict are per-solution lists."""
    n = len(classes)
    out = {}
    frac = {c: sum(ok for cc, ok in zip(classes, correct) if cc == c) / classes.count(c) for c in set(classes)}
    for k in ks:
        out[("oracle", k, 0)] = pass_at_k(correct, k)
        out[("majority", k, 0)] = majority_exact(classes, correct, k)
    for v in vs:
        sums = {key: 0.0 for key in [(m, k, v) for m in ("bon_p_yes", "bon_verdict", "weighted", "self_prm")
                                     for k in ks]}
        for _ in range(draws):
            picks = [rng.sample(range(len(p_yes[i])), v) for i in range(n)]
            s_p = [sum(p_yes[i][j] for j in picks[i]) / v for i in range(n)]
            s_v = [sum(verdict[i][j] for j in picks[i]) / v for i in range(n)]
            order = list(range(n))
            rng.shuffle(order)
            cls = [classes[i] for i in order]
            w_p = [s_p[i] for i in order]
            kept = [1.0 if s_v[i] >= 0.5 else 0.0 for i in order]
            for k in ks:
                sums[("bon_p_yes", k, v)] += best_of_n(s_p, correct, k)
                sums[("bon_verdict", k, v)] += best_of_n(s_v, correct, k)
                sums[("weighted", k, v)] += _vote(cls, w_p, frac, k)
                filtered = _vote(cls, kept, frac, k)
                sums[("self_prm", k, v)] += filtered if any(kept[:k]) else _vote(cls, [1.0] * n, frac, k)
        out.update({key: total / draws for key, total in sums.items()})
    return out


def bootstrap_intervals(values: np.ndarray, n_resamples: int, seed: int, level: float = 0.95):
    """Percentile intervals of the mean over problems, one resample at a time."""
    rng = np.random.default_rng(seed)
    p = values.shape[0]
    means = np.empty((n_resamples, values.shape[1]))
    for b in range(n_resamples):
        means[b] = np.nanmean(values[rng.integers(0, p, p)], axis=0)
    return np.percentile(means, [(1 - level) / 2 * 100, (1 + level) / 2 * 100], axis=0)
