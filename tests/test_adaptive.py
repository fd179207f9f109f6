"""Offline adaptive-allocation policies: hand-worked cases and reductions to the fixed budget."""
import numpy as np
import pytest

from analysis import adaptive as ad


def _random_problems(n=30, N=8, V=4, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        classes = rng.integers(-1, 3, N)
        correct = (classes == 0) & (rng.random() < 0.8)
        scores = np.clip(rng.normal(0.5 + 0.3 * correct[:, None], 0.2, (N, V)), 0, 1)
        out.append(ad.ProblemSamples(classes, correct, scores))
    return out


def test_vote_ties_and_no_answer():
    # Classes 0 and 1 tie with two votes each; only class 0 is correct → 1/2.
    assert ad.vote(np.array([0, 1, 0, 1, -1]), np.array([1, 0, 1, 0, 0], bool)) == 0.5
    # No-answer samples never win even when they are the most frequent.
    assert ad.vote(np.array([-1, -1, -1, 2]), np.array([0, 0, 0, 1], bool)) == 1.0
    assert ad.vote(np.array([-1, -1]), np.array([0, 0], bool)) == 0.0


def test_stop_when_agree_hand_worked():
    s = ad.ProblemSamples(np.array([3, 1, 3, 1, 1]), np.array([1, 0, 1, 0, 0], bool))
    out = ad.StopWhenAgree(k=2, s_max=5).run(s, np.arange(5), np.random.default_rng(0))
    assert (out.solutions, out.success) == (3, 1.0)  # class 3 reaches 2 votes at the third sample
    out = ad.StopWhenAgree(k=3, s_max=5).run(s, np.arange(5), np.random.default_rng(0))
    assert (out.solutions, out.success) == (5, 0.0)  # class 1 reaches 3 votes at the fifth


def test_never_stopping_reproduces_fixed_budget_exactly():
    problems = _random_problems()
    never = ad.replay(ad.StopWhenAgree(k=99, s_max=8), problems, n_orders=4, seed=1)
    fixed = ad.replay(ad.Fixed(8, 0), problems, n_orders=4, seed=2)
    exact = np.array([ad.vote(p.classes, p.correct) for p in problems])
    assert np.array_equal(never[:, 0], exact) and np.array_equal(fixed[:, 0], exact)
    assert np.all(never[:, 1] == 8)


def test_verify_when_split_reduces_to_its_two_extremes():
    problems = _random_problems()
    always = ad.replay(ad.VerifyWhenSplit(8, 4, agreement=1.01), problems, n_orders=3, seed=5)
    fixed = ad.replay(ad.Fixed(8, 4), problems, n_orders=3, seed=6)
    # All 8 solutions and all 4 verifications are used: the outcome does not depend on the order.
    assert np.allclose(always, fixed, atol=1e-12)
    never = ad.replay(ad.VerifyWhenSplit(8, 4, agreement=0.0), problems, n_orders=3, seed=5)
    assert np.array_equal(never[:, 0], ad.replay(ad.Fixed(8, 0), problems, 3, 5)[:, 0])
    assert np.all(never[:, 2] == 0)


def test_verification_budget_is_checked():
    s = ad.ProblemSamples(np.array([0, 1]), np.array([1, 0], bool), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="V=4"):
        ad.Fixed(2, 4).run(s, np.arange(2), np.random.default_rng(0))


def test_by_difficulty_fit_and_replay_are_seeded():
    problems = _random_problems(n=40)
    grid = [(2, 0), (4, 0), (8, 0), (4, 2), (8, 4)]
    pol = ad.fit_by_difficulty(problems[:20], probe=2, edges=(0.75,), grid=grid, lam=1.0, price=0.01)
    assert len(pol.choices) == 2 and all(c in grid for c in pol.choices)
    a = ad.summarize("bydiff", ad.replay(pol, problems[20:], 4, seed=9), lam=1.0)
    b = ad.summarize("bydiff", ad.replay(pol, problems[20:], 4, seed=9), lam=1.0)
    assert a == b and a["success_lo"] <= a["success"] <= a["success_hi"]
    # A huge price makes every bin choose the cheapest option.
    cheap = ad.fit_by_difficulty(problems[:20], probe=2, edges=(0.75,), grid=grid, lam=1.0, price=100.0)
    assert set(cheap.choices) == {(2, 0)}


def test_stop_when_agree_rounds_hand_worked():
    classes = np.array([3, 1, 3, 1, 1, 2, 2, 2])
    rounds, more = ad.StopWhenAgree(k=3, s_max=8).walk(classes)
    # first round draws k=3 at once, then one at a time until class 1 has 3 votes at the fifth sample
    assert [(r.solutions, r.more, r.reason) for r in rounds] == [(3, 1, "split"), (4, 1, "split"), (5, 0, "agree")]
    assert more == 0
    # rounds of 2 after the first k stop at 5 too; rounds of 4 overshoot to 7 (the decision after 3 is split)
    assert [r.solutions for r in ad.StopWhenAgree(3, 8, step=2).walk(classes)[0]] == [3, 5]
    assert [r.solutions for r in ad.StopWhenAgree(3, 8, step=4).walk(classes)[0]] == [3, 7]
    # fewer samples seen than the round needs: what to draw next; a count off the schedule completes its round
    assert ad.StopWhenAgree(3, 8).walk(classes[:0]) == ([], 3)
    assert ad.StopWhenAgree(3, 8, step=4).walk(classes[:5])[1] == 2  # 3 + 4 = 7: two more
    # k above s_max: one round of s_max, stopped by the cap
    assert [(r.solutions, r.reason) for r in ad.StopWhenAgree(9, 8).walk(classes)[0]] == [(8, "cap")]
    out = ad.StopWhenAgree(3, 8, step=4).run(ad.ProblemSamples(classes, classes == 1), np.arange(8),
                                             np.random.default_rng(0))
    assert (out.solutions, out.success) == (7, 1.0)  # among 7: class 1 has 3 votes, class 2 two
