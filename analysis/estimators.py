"""Selection-method estimators over recorded samples: pure, vectorised numpy.

Every estimator answers "what is the expected success of this method on each problem if it had seen a
uniformly random size-k subset of the recorded solutions (and, for verifier methods, a uniformly random
size-V subset of each solution's recorded verifications)?". Inputs are per-problem arrays padded to the
largest count: ``valid`` (P, N) marks real solutions (a partial run may have fewer than N, or holes);
``classes`` (P, N) holds an answer class id >= 0, or -1 for "no answer" (such a solution never wins a
vote). Outputs have shape (P, K) or (P, len(vs), K); a k larger than the problem's number of valid
solutions gives NaN (the subset does not exist), so averages over problems skip it.

Methods and how each is computed (the tie rule is part of the method):
- ``pass_at_k``: unbiased estimator 1 - C(n-c, k)/C(n, k) (exact).
- ``majority_vote``: votes per answer class. ``ties="expected"`` (default): a tie at the top counts the
  fraction of tied classes that are correct; exact by a generating-function count over all size-k subsets
  (see ``_majority_exact_one``). ``ties="first_seen"`` (the seeds' rule: the tied class seen first in the
  random order wins) and ``ties="random"`` (a uniformly random tied class wins): Monte-Carlo subsampling.
- ``best_of_n``: the top-scored solution of the subset; exact given scores, ties broken uniformly at
  random, i.e. a tie at the top counts the fraction of tied solutions that are correct.
- ``best_of_n_at_v``: scores are means over a random size-V subset of each solution's verifications;
  Monte-Carlo over those subsets (``draws``), exact over solution subsets given each draw's scores.
  V = 0 means no verifier: every score is equal, so best-of-N picks uniformly (= mean accuracy).
- ``weighted_majority``: sum of scores per class; Monte-Carlo over solution orders and V-subsets.
  V = 0 gives unit weights, i.e. plain majority.
- ``self_prm_majority``: keep the solutions whose sampled verdicts judge them correct (mean >= 0.5), then
  majority over the kept ones; when no solution of the subset is kept, majority over all of them.
  Monte-Carlo. V = 0 keeps everything (plain majority).
Monte-Carlo estimators return a standard error per entry (the spread over draws / sqrt(draws)).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.special import gammaln

TIE_RULES = ("expected", "first_seen", "random")
# Beyond this many solutions per problem C(n, k) overflows float64 near k = n/2; majority then goes Monte-Carlo.
EXACT_MAJORITY_MAX_N = 1000


@dataclass(frozen=True)
class Estimate:
    """Per-problem expected success: ``value`` and its Monte-Carlo standard error ``se`` (0 when exact)."""

    value: np.ndarray
    se: np.ndarray


def _exact(value: np.ndarray) -> Estimate:
    return Estimate(value, np.where(np.isnan(value), np.nan, 0.0))


def _from_draws(draws: np.ndarray) -> Estimate:
    """Mean and standard error over the leading (draw) axis."""
    d = draws.shape[0]
    se = draws.std(axis=0, ddof=1) / np.sqrt(d) if d > 1 else np.zeros_like(draws[0])
    return Estimate(draws.mean(axis=0), se)


def comb_ratio(a, n, k) -> np.ndarray:
    """C(a, k) / C(n, k) elementwise for integers, via a log-factorial table; 0 where a < k (no subset)."""
    a, n, k = np.broadcast_arrays(*(np.asarray(x, dtype=np.int64) for x in (a, n, k)))
    ok = (a >= k) & (k >= 0) & (n >= k)
    a, n, k = (np.where(ok, x, 0) for x in (a, n, k))
    log_fact = gammaln(np.arange(int(n.max(initial=0)) + 2, dtype=float))[1:]  # log_fact[i] = log(i!)
    log_ratio = log_fact[a] - log_fact[a - k] - log_fact[n] + log_fact[n - k]
    return np.where(ok, np.exp(log_ratio), 0.0)


def _mask_k(value: np.ndarray, n: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """NaN where k exceeds the problem's solution count; value's last axis is k, first is problem."""
    too_big = ks[None, :] > n[:, None]
    shape = (value.shape[0],) + (1,) * (value.ndim - 2) + (len(ks),)
    return np.where(too_big.reshape(shape), np.nan, value)


# ----------------------------------------------------------------------------- pass@k / oracle


def pass_at_k(n: np.ndarray, c: np.ndarray, ks) -> Estimate:
    """Unbiased pass@k, 1 - C(n-c, k)/C(n, k), for n samples of which c are correct (exact)."""
    n, c, ks = np.asarray(n), np.asarray(c), np.atleast_1d(np.asarray(ks))
    value = 1.0 - comb_ratio(n[:, None] - c[:, None], n[:, None], ks[None, :])
    return _exact(_mask_k(value, n, ks))


# ----------------------------------------------------------------------------- best-of-N


def best_of_n(scores: np.ndarray, correct: np.ndarray, valid: np.ndarray, ks) -> np.ndarray:
    """Expected correctness of the top-scored solution over all size-k subsets, exact given scores.

    Sort by score, group equal scores; a group g of a_g solutions (b_g correct) below H_g strictly
    better ones is the top of a subset with probability [C(n-H_g, k) - C(n-H_g-a_g, k)] / C(n, k), and then
    a uniform tie-break picks a correct one with probability b_g / a_g. Without ties this is the seeds'
    sum_i c_(i) C(n-i-1, k-1) / C(n, k). NaN scores (no verification recorded) rank below every score.
    Returns (P, K).
    """
    ks = np.atleast_1d(np.asarray(ks))
    lowest = np.finfo(float).min
    s = np.where(valid, np.where(np.isnan(scores), lowest, scores), -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")
    s = np.take_along_axis(s, order, axis=1)
    c = np.take_along_axis(correct & valid, order, axis=1)
    width = s.shape[1]
    idx = np.broadcast_to(np.arange(width), s.shape)
    starts = np.ones(s.shape, dtype=bool)
    starts[:, 1:] = s[:, 1:] != s[:, :-1]
    ends = np.ones(s.shape, dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    higher = np.maximum.accumulate(np.where(starts, idx, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, idx, width)[:, ::-1], axis=1)[:, ::-1]
    size = last - higher + 1
    n = valid.sum(axis=1)
    nn, hh, aa, kk = n[:, None, None], higher[:, :, None], size[:, :, None], ks[None, None, :]
    top = comb_ratio(nn - hh, nn, kk) - comb_ratio(nn - hh - aa, nn, kk)
    value = np.einsum("pi,pik->pk", c / size, top)
    return _mask_k(value, n, ks)


def subset_means(values: np.ndarray, present: np.ndarray, vs, rng: np.random.Generator) -> np.ndarray:
    """One draw of per-solution scores at each V: the mean of a uniformly random size-V subset of its
    recorded verifications (a random order per solution, then prefix means, so all V share one draw).

    values, present: (P, N, M). A solution with fewer than V recorded uses all it has; one with none
    gets NaN; V = 0 gives 0 everywhere (no verifier). Returns (len(vs), P, N).
    """
    vs = np.atleast_1d(np.asarray(vs))
    width = values.shape[2]
    keys = np.where(present, rng.random(present.shape, dtype=np.float32), np.inf)
    order = np.argsort(keys, axis=2)
    bounds = np.unique(np.minimum(vs[vs > 0], width))
    prefix_sum = _prefix_at(np.take_along_axis(np.where(present, values, 0.0), order, axis=2), bounds)
    if present.all():
        prefix_count = np.broadcast_to(bounds.astype(float), prefix_sum.shape)
    else:
        prefix_count = _prefix_at(np.take_along_axis(present, order, axis=2).astype(np.float32), bounds)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = prefix_sum / prefix_count
    out = np.zeros((len(vs),) + values.shape[:2])
    for i, v in enumerate(vs):
        if v > 0:
            out[i] = means[..., np.searchsorted(bounds, min(v, width))]
    return out


def _prefix_at(x: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Sums of x[..., :b] for each b in the sorted positive ``bounds``, (..., len(bounds)), via one
    segment reduction instead of a full cumulative sum (only a few V are needed)."""
    starts = np.concatenate([[0], bounds[bounds < x.shape[-1]]])
    segments = np.add.reduceat(x, starts, axis=-1)[..., :len(bounds)]
    return np.cumsum(segments, axis=-1)


def best_of_n_at_v(values, present, correct, valid, ks, vs, rng: np.random.Generator, draws: int) -> Estimate:
    """Best-of-N with score = mean of a random size-V subset of verification values; (P, len(vs), K).

    Monte-Carlo over the verification subsets (``draws``), exact over the solution subsets for each draw.
    V = 0 or V >= every solution's recorded count is deterministic and uses one draw.
    """
    vs = np.atleast_1d(np.asarray(vs))
    counts = present.sum(axis=2)[valid]
    deterministic = bool(np.all((vs == 0) | (vs >= (counts.max() if counts.size else 0))))
    out = []
    for _ in range(1 if deterministic else draws):
        scores = subset_means(values, present, vs, rng)
        out.append(np.stack([best_of_n(sc, correct, valid, ks) for sc in scores], axis=1))
    return _from_draws(np.stack(out))


# ----------------------------------------------------------------------------- votes


def class_correctness(classes: np.ndarray, correct: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-problem class sizes and correctness, (P, J) each: the fraction of a class's solutions that are
    correct (1 or 0 when grading is consistent within the class, as it is for an equivalence class)."""
    n_classes = int(classes.max(initial=-1)) + 1
    p = classes.shape[0]
    answered = valid & (classes >= 0)
    rows = np.broadcast_to(np.arange(p)[:, None], classes.shape)[answered]
    cls = classes[answered]
    sizes = np.zeros((p, max(n_classes, 1)))
    hits = np.zeros((p, max(n_classes, 1)))
    np.add.at(sizes, (rows, cls), 1.0)
    np.add.at(hits, (rows, cls), correct[answered].astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(sizes > 0, hits / sizes, 0.0)
    return sizes, frac


def _pascal(n_max: int) -> np.ndarray:
    """Binomial coefficients C(a, b) for a, b <= n_max as float64 (exact to float rounding)."""
    table = np.zeros((n_max + 1, n_max + 1))
    table[:, 0] = 1.0
    for a in range(1, n_max + 1):
        table[a, 1:a + 1] = table[a - 1, 1:a + 1] + table[a - 1, 0:a]
    return table


def _truncated_product(poly: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """Batched polynomial product poly * factor truncated to poly's length; poly (Q, L), factor (Q, d+1)."""
    d = factor.shape[1] - 1
    padded = np.concatenate([np.zeros((poly.shape[0], d)), poly], axis=1)
    windows = sliding_window_view(padded, d + 1, axis=1)  # windows[q, i, w] = poly[q, i - d + w]
    return np.einsum("qiw,qw->qi", windows, factor[:, ::-1])


@functools.lru_cache(maxsize=None)
def _unit_quadrature(points: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1]: exact for polynomials of degree < 2 * points."""
    nodes, weights = np.polynomial.legendre.leggauss(points)
    return (nodes + 1) / 2, weights / 2


def _majority_exact_one(sizes: np.ndarray, frac: np.ndarray, n: int, binom: np.ndarray) -> np.ndarray:
    """Expected majority-vote success with ``ties="expected"`` at every k = 0..n for one problem (exact).

    For a correct class j holding t of the k chosen solutions, every other class must hold <= t; the r
    classes holding exactly t tie with j, which then earns 1/(r+1). Count such subsets with the generating
    function prod_l B_l(x, y) (1+x)^small over the other classes, B_l = sum_{u<t} C(m_l,u) x^u +
    y C(m_l,t) x^t, where classes with m_l < t and unanswered solutions form (1+x)^small. The tie weight
    1/(r+1) = integral_0^1 y^r dy, taken exactly by Gauss-Legendre quadrature in y. Then
    E_k = sum_j frac_j sum_t C(m_j,t) [x^(k-t)] integral(...) / C(n, k).
    """
    counts = np.zeros(n + 1)
    sizes_int = sizes.astype(int)
    for j in np.flatnonzero(frac > 0):
        m_j = sizes_int[j]
        others = np.delete(sizes_int, j)
        others = others[others > 0]
        for t in range(1, m_j + 1):
            big = others[others >= t]
            length = n - t + 1  # coefficients x^0 .. x^(n-t)
            y, w = _unit_quadrature(len(big) // 2 + 1)
            small = n - m_j - int(big.sum())
            row = np.zeros(length)
            row[:min(small, length - 1) + 1] = binom[small, :min(small, length - 1) + 1]
            poly = np.broadcast_to(row, (len(y), length))
            for m_l in big:
                factor = np.broadcast_to(binom[m_l, :t + 1], (len(y), t + 1)).copy()
                factor[:, t] *= y
                poly = _truncated_product(poly, factor)
            counts[t:] += frac[j] * binom[m_j, t] * (w @ poly)
    ks = np.arange(n + 1)
    return counts / binom[n, ks]


def _majority_exact(classes, correct, valid, ks) -> np.ndarray:
    sizes, frac = class_correctness(classes, correct, valid)
    n = valid.sum(axis=1)
    binom = _pascal(int(n.max(initial=0)))
    out = np.full((classes.shape[0], len(ks)), np.nan)
    for p in range(classes.shape[0]):
        if n[p] == 0:
            continue
        per_k = _majority_exact_one(sizes[p], frac[p], int(n[p]), binom)
        ok = ks <= n[p]
        out[p, ok] = per_k[ks[ok]]
    return out


def _random_orders(valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random order of each problem's valid solutions (padding last); (P, N) indices."""
    keys = np.where(valid, rng.random(valid.shape), np.inf)
    return np.argsort(keys, axis=1)


def _tallies(classes_ordered: np.ndarray, weights_ordered: np.ndarray, n_classes: int, ks: np.ndarray) -> np.ndarray:
    """Per-class vote totals over the first k solutions of the order, (P, K, J)."""
    p, width = classes_ordered.shape
    onehot = np.zeros((p, width, n_classes))
    answered = classes_ordered >= 0
    rows, cols = np.nonzero(answered)
    onehot[rows, cols, classes_ordered[answered]] = weights_ordered[answered]
    return np.cumsum(onehot, axis=1)[:, np.minimum(ks, width) - 1, :]


def _vote_winner_credit(tally, frac, first_pos, rng, ties: str) -> np.ndarray:
    """Credit of the vote winner per (problem, k): tally (P, K, J); 0 when nobody answered."""
    top = tally.max(axis=2, keepdims=True)
    tied = (tally == top) & (top > 0)
    if ties == "expected":
        with np.errstate(invalid="ignore", divide="ignore"):
            credit = (tied * frac[:, None, :]).sum(axis=2) / tied.sum(axis=2)
        return np.nan_to_num(credit)
    if ties == "first_seen":
        rank = np.where(tied, first_pos[:, None, :], np.inf)
        winner = rank.argmin(axis=2)
    else:
        priority = np.where(tied, rng.random(frac.shape)[:, None, :], -1.0)
        winner = priority.argmax(axis=2)
    return np.where(tied.any(axis=2), np.take_along_axis(frac, winner, axis=1), 0.0)


def _first_positions(classes_ordered: np.ndarray, n_classes: int) -> np.ndarray:
    """Position of each class's first member in the order, (P, J); len for absent classes."""
    p, width = classes_ordered.shape
    first = np.full((p, n_classes), width)
    rows, cols = np.nonzero(classes_ordered >= 0)
    np.minimum.at(first, (rows, classes_ordered[rows, cols]), cols)
    return first


def _vote_draws(classes, correct, valid, ks, rng, draws, ties, weight_fn) -> Estimate:
    """Monte-Carlo votes: each draw orders the solutions at random, ``weight_fn(order)`` gives a list of
    (weights, fallback_weights | None) per V (ordered like the solutions), and the first k vote."""
    if ties not in TIE_RULES:
        raise ValueError(f"ties must be one of {TIE_RULES}, got {ties!r}")
    sizes, frac = class_correctness(classes, correct, valid)
    n_classes = sizes.shape[1]
    out = []
    for _ in range(draws):
        order = _random_orders(valid, rng)
        cls = np.where(np.take_along_axis(valid, order, 1), np.take_along_axis(classes, order, 1), -1)
        first = _first_positions(cls, n_classes)
        per_v = []
        for weights, fallback in weight_fn(order, rng):
            tally = _tallies(cls, weights, n_classes, ks)
            if fallback is not None:
                empty = tally.max(axis=2, keepdims=True) <= 0
                tally = np.where(empty, _tallies(cls, fallback, n_classes, ks), tally)
            per_v.append(_vote_winner_credit(tally, frac, first, rng, ties))
        out.append(np.stack(per_v, axis=1))
    est = _from_draws(np.stack(out))
    n = valid.sum(axis=1)
    return Estimate(_mask_k(est.value, n, ks), _mask_k(est.se, n, ks))


def majority_vote(classes, correct, valid, ks, *, ties: str = "expected", rng: np.random.Generator | None = None,
                  draws: int = 64) -> Estimate:
    """Majority vote over answer classes at each k, (P, K). See the module doc for the tie rules;
    ``ties="expected"`` is exact (up to EXACT_MAJORITY_MAX_N solutions), the others use ``draws`` orders."""
    ks = np.atleast_1d(np.asarray(ks))
    if ties not in TIE_RULES:
        raise ValueError(f"ties must be one of {TIE_RULES}, got {ties!r}")
    if ties == "expected" and valid.sum(axis=1).max(initial=0) <= EXACT_MAJORITY_MAX_N:
        return _exact(_majority_exact(classes, correct, valid, ks))
    if rng is None:
        raise ValueError(f"majority_vote with ties={ties!r} is Monte-Carlo and needs an rng")
    ones = np.ones(classes.shape)
    est = _vote_draws(classes, correct, valid, ks, rng, draws, ties, lambda order, _: [(ones, None)])
    return Estimate(est.value[:, 0], est.se[:, 0])


def weighted_majority(classes, correct, valid, values, present, ks, vs, rng, draws: int,
                      ties: str = "expected") -> Estimate:
    """Weighted majority: each class scores the sum of its solutions' scores (mean of a random size-V
    subset of their verification values; V = 0: weight 1). Monte-Carlo; (P, len(vs), K)."""
    ks, vs = np.atleast_1d(np.asarray(ks)), np.atleast_1d(np.asarray(vs))

    def weights(order, draw_rng):
        scores = np.nan_to_num(subset_means(values, present, vs, draw_rng))
        return [(np.where(v == 0, 1.0, np.take_along_axis(s, order, 1)), None) for v, s in zip(vs, scores)]

    return _exact_at_v0(_vote_draws(classes, correct, valid, ks, rng, draws, ties, weights),
                        classes, correct, valid, ks, vs, ties)


def self_prm_majority(classes, correct, valid, judged, present, ks, vs, rng, draws: int,
                      ties: str = "expected") -> Estimate:
    """Self-PRM filtering then majority: a solution is kept when the mean of a random size-V subset of its
    verdicts (1 = judged correct) is >= 0.5; majority over the kept solutions of the subset, or over all
    of them when none is kept. V = 0 keeps everything. Monte-Carlo; (P, len(vs), K)."""
    ks, vs = np.atleast_1d(np.asarray(ks)), np.atleast_1d(np.asarray(vs))
    ones = np.ones(classes.shape)

    def weights(order, draw_rng):
        means = subset_means(judged, present, vs, draw_rng)
        kept = [np.where(v == 0, 1.0, (np.take_along_axis(m, order, 1) >= 0.5).astype(float))
                for v, m in zip(vs, means)]
        return [(k, ones) for k in kept]

    return _exact_at_v0(_vote_draws(classes, correct, valid, ks, rng, draws, ties, weights),
                        classes, correct, valid, ks, vs, ties)


def _exact_at_v0(estimate: Estimate, classes, correct, valid, ks, vs, ties: str) -> Estimate:
    """At V = 0 a verifier-weighted vote is plain majority: use the exact value where there is one."""
    if ties != "expected" or not np.any(vs == 0):
        return estimate
    plain = majority_vote(classes, correct, valid, ks)
    at0 = (vs == 0)[None, :, None]
    return Estimate(np.where(at0, plain.value[:, None, :], estimate.value),
                    np.where(at0, plain.se[:, None, :], estimate.se))
