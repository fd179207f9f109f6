"""Verifier-quality metrics against scikit-learn and hand-worked values."""
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.metrics import average_precision_score, cohen_kappa_score, roc_auc_score

from analysis import verifier_quality as vq

scores_labels = st.integers(2, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]), min_size=n, max_size=n),
        st.lists(st.booleans(), min_size=n, max_size=n),
    )
)


@settings(max_examples=200, deadline=None)
@given(scores_labels)
def test_auroc_and_ap_match_sklearn_with_ties(data):
    scores, labels = np.array(data[0]), np.array(data[1])
    if labels.all() or not labels.any():
        assert np.isnan(vq.auroc(scores, labels))
        return
    assert vq.auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert vq.average_precision(scores, labels) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=2, max_size=30))
def test_kappa_matches_sklearn(pairs):
    a, b = np.array(pairs).T
    expected = a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean())
    if expected == 1:
        assert np.isnan(vq.cohen_kappa(a, b))
    else:
        assert vq.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_ece_hand_worked():
    # Bin [0.2,0.3): p=0.2 twice, one correct → |0.5-0.2|; bin [0.9,1]: p=0.9 twice, both correct → |1-0.9|.
    probs = np.array([0.2, 0.2, 0.9, 0.9])
    labels = np.array([True, False, True, True])
    assert vq.expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(0.5 * 0.3 + 0.5 * 0.1)
    bins = vq.reliability_bins(probs, labels, n_bins=10)
    assert bins["count"].to_list() == [0, 0, 2, 0, 0, 0, 0, 0, 0, 2]


def test_precision_recall_hand_worked():
    predicted = np.array([True, True, False, False])
    labels = np.array([True, False, True, False])
    assert vq.precision_recall(predicted, labels) == (0.5, 0.5)


def _tables():
    solutions = pl.DataFrame({
        "problem_id": ["a", "a", "b", "b"], "solution_idx": [0, 1, 0, 1],
        "is_correct": [True, False, True, False],
    })
    rows = []
    # verifier g: perfect ranking; verifier h: inverted. Four verifications per solution.
    p = {("a", 0): [0.9, 0.8, 0.7, 0.9], ("a", 1): [0.2, 0.1, 0.6, 0.3],
         ("b", 0): [0.6, 0.7, 0.8, 0.9], ("b", 1): [0.4, 0.3, 0.2, 0.1]}
    for (pid, idx), ps in p.items():
        for k, val in enumerate(ps):
            rows.append(("g", pid, idx, k, val, val > 0.5))
            rows.append(("h", pid, idx, k, 1 - val, val <= 0.5))
    verifications = pl.DataFrame(rows, schema=["verifier", "problem_id", "solution_idx", "verification_idx",
                                               "p_yes", "verdict"], orient="row")
    return solutions, verifications


def test_quality_and_agreement_tables():
    solutions, verifications = _tables()
    q = vq.quality_table(solutions, verifications).sort("verifier")
    assert q["auroc"].to_list() == [1.0, 0.0]
    assert q["verdict_precision"].to_list()[0] == 1.0
    agree = vq.agreement_table(verifications)
    assert agree["kappa_verdict"][0] == pytest.approx(-1.0)
    assert agree["spearman_score"][0] == pytest.approx(-1.0)


def test_quality_vs_v_is_seeded_and_drops_short_solutions():
    solutions, verifications = _tables()
    a = vq.quality_vs_v(solutions, verifications, [1, 4, 8], seed=3)
    b = vq.quality_vs_v(solutions, verifications, [1, 4, 8], seed=3)
    assert a.equals(b)
    # No solution has 8 verifications: V=8 yields no rows; V=4 uses all of them.
    assert set(a["V"].to_list()) == {1, 4}
    full = vq.quality_table(solutions, verifications).sort("verifier")
    at4 = a.filter(pl.col("V") == 4).sort("verifier")
    assert at4["auroc"].to_list() == full["auroc"].to_list()
