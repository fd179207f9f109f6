"""Estimators against brute-force enumeration over all subsets (N <= 8), tie cases and invariants."""
from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import estimators as est

# ----------------------------------------------------------------------------- brute force references


def _vote_credit(classes, frac, weights, ties_first_order=None) -> float:
    """Expected-tie credit of a vote over the given solutions (weights per solution)."""
    tally: dict[int, float] = {}
    for c, w in zip(classes, weights):
        if c >= 0:
            tally[c] = tally.get(c, 0.0) + w
    if not tally or max(tally.values()) <= 0:
        return 0.0
    top = max(tally.values())
    tied = [c for c, v in tally.items() if v == top]
    if ties_first_order is not None:
        first = min(tied, key=lambda c: ties_first_order.index(c))
        return frac[first]
    return sum(frac[c] for c in tied) / len(tied)


def _class_frac(classes, correct):
    frac = {}
    for c in set(classes) - {-1}:
        members = [correct[i] for i in range(len(classes)) if classes[i] == c]
        frac[c] = sum(members) / len(members)
    return frac


def brute_majority(classes, correct, k) -> float:
    frac = _class_frac(classes, correct)
    subsets = list(itertools.combinations(range(len(classes)), k))
    return float(sum(_vote_credit([classes[i] for i in s], frac, [1.0] * k) for s in subsets) / len(subsets))


def brute_majority_first_seen(classes, correct, k) -> float:
    """Average over all orders of the first k; ties go to the tied class appearing first."""
    frac = _class_frac(classes, correct)
    total, count = 0.0, 0
    for perm in itertools.permutations(range(len(classes))):
        chosen = [classes[i] for i in perm[:k]]
        total += _vote_credit(chosen, frac, [1.0] * k, ties_first_order=chosen)
        count += 1
    return total / count


def brute_best_of_n(scores, correct, k) -> float:
    subsets = list(itertools.combinations(range(len(scores)), k))
    total = Fraction(0)
    for s in subsets:
        top = max(scores[i] for i in s)
        tied = [i for i in s if scores[i] == top]
        total += Fraction(sum(correct[i] for i in tied), len(tied))
    return float(total / len(subsets))


def brute_pass_at_k(correct, k) -> float:
    subsets = list(itertools.combinations(range(len(correct)), k))
    return sum(any(correct[i] for i in s) for s in subsets) / len(subsets)


def _random_problem(rng, n, n_classes):
    classes = rng.integers(-1, n_classes, size=n)
    correct_class = rng.integers(0, n_classes)
    correct = classes == correct_class
    return classes, correct


# ----------------------------------------------------------------------------- exact estimators


@pytest.mark.parametrize("seed", range(6))
def test_exact_estimators_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    p, width = 5, 8
    classes = np.full((p, width), -1)
    correct = np.zeros((p, width), bool)
    valid = np.zeros((p, width), bool)
    scores = np.zeros((p, width))
    for i in range(p):
        n = int(rng.integers(1, width + 1))
        classes[i, :n], correct[i, :n] = _random_problem(rng, n, int(rng.integers(1, 5)))
        valid[i, :n] = True
        scores[i, :n] = rng.integers(0, 4, size=n) / 4  # coarse scores: many ties
    ks = np.arange(1, width + 1)
    maj = est.majority_vote(classes, correct, valid, ks).value
    bon = est.best_of_n(scores, correct, valid, ks)
    pak = est.pass_at_k(valid.sum(1), (correct & valid).sum(1), ks).value
    for i in range(p):
        n = int(valid[i].sum())
        cl, co, sc = list(classes[i, :n]), list(correct[i, :n]), list(scores[i, :n])
        for k in range(1, n + 1):
            assert maj[i, k - 1] == pytest.approx(brute_majority(cl, co, k), abs=1e-12)
            assert bon[i, k - 1] == pytest.approx(brute_best_of_n(sc, co, k), abs=1e-12)
            assert pak[i, k - 1] == pytest.approx(brute_pass_at_k(co, k), abs=1e-12)
        assert np.all(np.isnan(maj[i, n:])) and np.all(np.isnan(bon[i, n:]))


def test_majority_holes_in_valid_mask():
    """A partial run can have holes (solution 2 missing); the estimators only see valid solutions."""
    classes = np.array([[0, 1, 5, 0, 1]])
    correct = np.array([[True, False, True, True, False]])
    valid = np.array([[True, True, False, True, True]])
    got = est.majority_vote(classes, correct, valid, [1, 2, 3, 4]).value[0]
    want = [brute_majority([0, 1, 0, 1], [1, 0, 1, 0], k) for k in (1, 2, 3, 4)]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_explicit_ties():
    # Two classes of two: at k = 4 the vote is a 2-2 tie, half credit when one class is correct.
    classes = np.array([[0, 0, 1, 1]])
    correct = np.array([[True, True, False, False]])
    valid = np.ones((1, 4), bool)
    assert est.majority_vote(classes, correct, valid, [4]).value[0, 0] == pytest.approx(0.5, abs=1e-15)
    # Best-of-N with all scores equal at k = n: fraction of correct solutions.
    bon = est.best_of_n(np.full((1, 4), 0.7), correct, valid, [4])
    assert bon[0, 0] == pytest.approx(0.5, abs=1e-15)
    # Unanswered solutions never win: one answered wrong solution beats three blanks.
    classes = np.array([[-1, -1, -1, 0]])
    correct = np.zeros((1, 4), bool)
    assert est.majority_vote(classes, correct, valid, [4]).value[0, 0] == 0.0
    # ...and a correct answer alone among blanks wins.
    correct = np.array([[False, False, False, True]])
    assert est.majority_vote(classes, correct, valid, [4]).value[0, 0] == 1.0


# ----------------------------------------------------------------------------- Monte-Carlo estimators


def _within_4_se(estimate: est.Estimate, want: np.ndarray):
    diff = np.abs(estimate.value - want)
    assert np.all(diff < np.maximum(4 * estimate.se, 1e-12)), (diff, estimate.se)


def test_first_seen_ties_monte_carlo_within_4_se():
    classes = np.array([[0, 0, 1, 1, 2, -1]])
    correct = np.array([[True, True, False, False, False, False]])
    valid = np.ones((1, 6), bool)
    ks = np.arange(1, 7)
    got = est.majority_vote(classes, correct, valid, ks, ties="first_seen", rng=np.random.default_rng(0), draws=400)
    want = np.array([[brute_majority_first_seen(list(classes[0]), list(correct[0]), k) for k in ks]])
    _within_4_se(got, want)
    rand = est.majority_vote(classes, correct, valid, ks, ties="random", rng=np.random.default_rng(1), draws=400)
    want_expected = est.majority_vote(classes, correct, valid, ks).value
    _within_4_se(rand, want_expected)  # a uniformly random tie-break has the "expected" rule as its mean


def brute_bon_at_v(p_yes, correct, k, v) -> float:
    """Average over all size-k solution subsets and all size-v verification subsets of each solution."""
    n, m = p_yes.shape
    total, count = 0.0, 0
    per_solution = [list(itertools.combinations(range(m), v)) for _ in range(n)]
    for combo in itertools.product(*per_solution):
        scores = [float(np.mean(p_yes[i, list(c)])) for i, c in enumerate(combo)]
        total += brute_best_of_n(scores, correct, k)
        count += 1
    return total / count


def brute_weighted(classes, correct, p_yes, k, v) -> float:
    n, m = p_yes.shape
    frac = _class_frac(classes, correct)
    total, count = 0.0, 0
    per_solution = [list(itertools.combinations(range(m), v)) for _ in range(n)]
    for combo in itertools.product(*per_solution):
        w = [float(np.mean(p_yes[i, list(c)])) for i, c in enumerate(combo)]
        for s in itertools.combinations(range(n), k):
            total += _vote_credit([classes[i] for i in s], frac, [w[i] for i in s])
            count += 1
    return total / count


def brute_self_prm(classes, correct, judged, k, v) -> float:
    n, m = judged.shape
    frac = _class_frac(classes, correct)
    total, count = 0.0, 0
    per_solution = [list(itertools.combinations(range(m), v)) for _ in range(n)]
    for combo in itertools.product(*per_solution):
        kept = [float(np.mean(judged[i, list(c)])) >= 0.5 for i, c in enumerate(combo)]
        for s in itertools.combinations(range(n), k):
            keep = [i for i in s if kept[i]] or list(s)
            total += _vote_credit([classes[i] for i in keep], frac, [1.0] * len(keep))
            count += 1
    return total / count


def _verified_problem():
    classes = np.array([[0, 1, 0, 2, 1]])
    correct = np.array([[True, False, True, False, False]])
    valid = np.ones((1, 5), bool)
    rng = np.random.default_rng(3)
    p_yes = rng.random((1, 5, 3))
    judged = (rng.random((1, 5, 3)) < 0.5).astype(float)
    present = np.ones((1, 5, 3), bool)
    return classes, correct, valid, p_yes, judged, present


def test_verifier_estimators_monte_carlo_within_4_se():
    classes, correct, valid, p_yes, judged, present = _verified_problem()
    ks, vs = np.array([1, 2, 3, 5]), np.array([0, 1, 2, 3])
    rng = np.random.default_rng(7)
    bon = est.best_of_n_at_v(p_yes, present, correct, valid, ks, vs, rng, draws=300)
    wmv = est.weighted_majority(classes, correct, valid, p_yes, present, ks, vs, rng, draws=300)
    spm = est.self_prm_majority(classes, correct, valid, judged, present, ks, vs, rng, draws=300)
    cl, co = list(classes[0]), list(correct[0])
    for vi, v in enumerate(vs):
        for ki, k in enumerate(ks):
            if v == 0:
                want_bon = co.count(True) / len(co)  # no verifier: uniform pick
                want_vote = brute_majority(cl, co, k)
                assert wmv.value[0, vi, ki] == pytest.approx(want_vote, abs=1e-12)
                assert spm.value[0, vi, ki] == pytest.approx(want_vote, abs=1e-12)
                assert bon.value[0, vi, ki] == pytest.approx(want_bon, abs=1e-12)
                continue
            for got, want in ((bon, brute_bon_at_v(p_yes[0], co, k, v)),
                              (wmv, brute_weighted(cl, co, p_yes[0], k, v)),
                              (spm, brute_self_prm(cl, co, judged[0], k, v))):
                se = got.se[0, vi, ki]
                diff = abs(got.value[0, vi, ki] - want)
                assert diff < max(4 * se, 1e-12), (v, k, diff, se)


# ----------------------------------------------------------------------------- properties (hypothesis)

answers = st.lists(st.integers(-1, 3), min_size=1, max_size=8)


@given(st.integers(1, 12).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))))
@settings(max_examples=60, deadline=None)
def test_pass_at_k_monotone_in_k(nc):
    n, c = nc
    values = est.pass_at_k(np.array([n]), np.array([c]), np.arange(1, n + 1)).value[0]
    assert np.all(np.diff(values) >= -1e-12)
    assert values[-1] == (1.0 if c > 0 else 0.0)


@given(st.integers(1, 8), st.booleans(), st.integers(0, 3))
@settings(max_examples=30, deadline=None)
def test_majority_of_identical_answers(n, is_correct, blanks):
    classes = np.array([[0] * n + [-1] * blanks])
    correct = np.array([[is_correct] * n + [False] * blanks])
    valid = np.ones_like(classes, bool)
    ks = np.arange(1, n + blanks + 1)
    values = est.majority_vote(classes, correct, valid, ks).value[0]
    # Correct whenever the subset holds any answered solution, i.e. pass@k of the answered ones.
    want = est.pass_at_k(np.array([n + blanks]), np.array([n]), ks).value[0] * is_correct
    np.testing.assert_allclose(values, want, atol=1e-12)


@given(answers, st.integers(0, 3))
@settings(max_examples=30, deadline=None)
def test_v0_means_no_verifier(cl, correct_class):
    classes = np.array([cl])
    correct = classes == correct_class
    valid = np.ones_like(classes, bool)
    rng = np.random.default_rng(0)
    p_yes = rng.random(classes.shape + (2,))
    present = np.ones(p_yes.shape, bool)
    ks = np.arange(1, len(cl) + 1)
    bon = est.best_of_n_at_v(p_yes, present, correct, valid, ks, [0], rng, draws=3).value[0, 0]
    np.testing.assert_allclose(bon, np.full(len(ks), correct.mean()), atol=1e-12)
    wmv = est.weighted_majority(classes, correct, valid, p_yes, present, ks, [0], rng, draws=3).value[0, 0]
    np.testing.assert_allclose(wmv, est.majority_vote(classes, correct, valid, ks).value[0], atol=1e-12)


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=10, deadline=None)
def test_same_seed_identical_results(seed):
    classes, correct, valid, p_yes, judged, present = _verified_problem()
    ks, vs = [1, 3, 5], [1, 2]

    def run():
        rng = np.random.default_rng(seed)
        return (est.best_of_n_at_v(p_yes, present, correct, valid, ks, vs, rng, 4).value,
                est.weighted_majority(classes, correct, valid, p_yes, present, ks, vs, rng, 4).value,
                est.majority_vote(classes, correct, valid, ks, ties="random", rng=rng, draws=4).value)

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_exact_majority_at_scale_matches_monte_carlo():
    """Beyond brute force (N = 96, many classes and ties): the exact count agrees with subsampling."""
    rng = np.random.default_rng(11)
    classes = np.minimum(rng.zipf(1.4, size=(6, 96)), 30) - 1
    classes[rng.random(classes.shape) < 0.1] = -1
    correct = classes == 1
    valid = np.ones(classes.shape, bool)
    ks = np.array([1, 2, 3, 8, 31, 64, 96])
    exact = est.majority_vote(classes, correct, valid, ks).value
    draws = 2000
    mc = est.majority_vote(classes, correct, valid, ks, ties="random", rng=np.random.default_rng(0), draws=draws)
    # A rare event may never occur in the draws (empirical SE 0); a per-draw credit in [0, 1] with mean p
    # has SE at most sqrt(p (1 - p) / draws), which bounds the error in that case.
    se = np.maximum(mc.se, np.sqrt(exact * (1 - exact) / draws))
    assert np.all(np.abs(mc.value - exact) < 4 * se + 1e-12)
    assert np.all((exact >= 0) & (exact <= 1))
