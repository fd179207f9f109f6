"""ProcessBench reader, F1 metric on hand-worked examples, PRM thresholds chosen on the tuning split only."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from analysis.processbench import (
    evaluate_prm, harmonic_f1, majority_index, processbench_report, prm_prediction,
    read_processbench, report_from_table, sweep_thresholds, tuning_mask,
)
from pipeline.parse import parse_critic

ROOT = Path(__file__).resolve().parents[1]


def test_reader_counts_match_the_dataset_readme():
    df = read_processbench(ROOT / "data/processbench")
    counts = {r["subset"]: (r["err"], r["cor"]) for r in df.group_by("subset").agg(
        err=(pl.col("label") >= 0).sum(), cor=(pl.col("label") == -1).sum()).to_dicts()}
    assert counts == {"gsm8k": (207, 193), "math": (594, 406), "olympiadbench": (661, 339), "omnimath": (759, 241)}
    assert df.filter(pl.col("label") >= pl.col("steps").list.len()).height == 0
    assert read_processbench(ROOT / "data/processbench", subsets=["gsm8k"]).height == 400


def test_reader_names_file_line_and_key(tmp_path):
    good = {"id": "math-0", "generator": "g", "problem": "p", "steps": ["a", "b"], "final_answer_correct": True,
            "label": -1}
    f = tmp_path / "processbench_math.jsonl"
    f.write_text(json.dumps(good) + "\n" + json.dumps({**good, "label": 2}) + "\n")
    with pytest.raises(ValueError, match=r"processbench_math.jsonl:2: key 'label' = 2 outside \[-1, 1\]"):
        read_processbench(f)
    f.write_text(json.dumps({k: v for k, v in good.items() if k != "steps"}) + "\n")
    with pytest.raises(ValueError, match=r"processbench_math.jsonl:1: missing key 'steps'"):
        read_processbench(tmp_path)


def test_f1_on_hand_worked_example():
    # subset a: erroneous hits 1/3 (2 right; 1 wrong; None = unparsed counts wrong), correct hits 1/2
    # -> F1 = 2 * (1/3) * (1/2) / (1/3 + 1/2) = 0.4; subset b: everything right -> 1.0; mean 0.7
    subsets = ["a"] * 5 + ["b"] * 2
    labels = [2, 0, -1, -1, 1, -1, 3]
    preds = [2, 1, -1, 0, None, -1, 3]
    report = processbench_report(subsets, labels, preds)
    a, b = report.subsets
    assert (a.subset, a.n_erroneous, a.n_correct) == ("a", 3, 2)
    assert a.acc_erroneous == pytest.approx(1 / 3) and a.acc_correct == pytest.approx(0.5)
    assert a.f1 == pytest.approx(0.4) and b.f1 == 1.0
    assert report.mean_f1 == pytest.approx(0.7)
    table = report.to_polars()
    assert table["subset"].to_list() == ["a", "b", "mean"] and table["f1"][-1] == pytest.approx(0.7)


def test_f1_edge_cases_and_table_input():
    assert harmonic_f1(0.0, 0.0) == 0.0 and harmonic_f1(1.0, 0.0) == 0.0
    # predicting -1 everywhere: perfect on correct samples, zero on erroneous ones -> F1 0
    df = pl.DataFrame({"subset": ["s"] * 4, "label": [-1, 0, 2, -1], "prediction": [-1, -1, -1, -1]})
    assert report_from_table(df).mean_f1 == 0.0
    assert report_from_table(df.to_arrow()) == report_from_table(df)
    # critic outputs go through parse_critic: malformed ones are None and count as wrong
    texts = ["\\boxed{0}", "the first one", "\\boxed{2}", "\\boxed{-1}"]
    df = df.with_columns(prediction=pl.Series([parse_critic(t)[0] for t in texts], dtype=pl.Int64))
    r = report_from_table(df)
    assert (r.subsets[0].acc_erroneous, r.subsets[0].acc_correct) == (0.5, 0.5)
    with pytest.raises(KeyError, match="'pred'"):
        report_from_table(df, prediction="pred")
    with pytest.raises(ValueError, match="lengths differ"):
        processbench_report(["s"], [1, 2], [1])


def test_majority_index():
    assert majority_index([2, None, 3, 3, 2, 1]) == 2  # tie 2 vs 3: the first seen
    assert majority_index([None, -1, 4, -1]) == -1
    assert majority_index([None, None]) is None


def test_prm_prediction_is_the_first_step_below_threshold():
    assert prm_prediction([0.9, 0.4, 0.2], 0.5) == 1
    assert prm_prediction([0.9, 0.4, 0.2], 0.4) == 2  # strictly below
    assert prm_prediction([0.9, 0.4, 0.2], 0.1) == -1
    assert prm_prediction([], 0.5) is None and prm_prediction(None, 0.5) is None


def _prm_table(tune_error: float, tune_ok: float, test_error: float, test_ok: float) -> pl.DataFrame:
    """Rows whose error step (or, for correct rows, lowest step) gets the given scores, by split."""
    ids = [f"s-{i}" for i in range(400)]
    tune = tuning_mask(ids, 0.25, seed=0)
    rows = []
    for i, (id_, is_tune) in enumerate(zip(ids, tune)):
        label = -1 if i % 2 else i % 3
        low = (tune_error if label >= 0 else tune_ok) if is_tune else (test_error if label >= 0 else test_ok)
        scores = [0.95] * 3
        scores[max(label, 0)] = low
        rows.append({"id": id_, "subset": ["x", "y"][i % 4 // 2], "label": label, "step_scores": scores})
    return pl.DataFrame(rows)


def test_threshold_is_chosen_on_the_tuning_split_only():
    df = _prm_table(tune_error=0.25, tune_ok=0.35, test_error=0.6, test_ok=0.8)
    ev = evaluate_prm(df, tune_fraction=0.25, seed=0)
    assert ev.threshold == pytest.approx(0.26)  # best on tuning rows: (0.25, 0.35], smallest grid point
    assert ev.n_tune + ev.n_test == 400 and 60 < ev.n_tune < 140
    assert ev.sweep.best_mean_f1 == 1.0 and len(ev.sweep.to_polars()) == 99
    assert ev.test.mean_f1 == 0.0  # at 0.26 no test error (scored 0.6) is caught
    # changing only the test rows never moves the threshold; changing the tuning rows does
    assert evaluate_prm(_prm_table(0.25, 0.35, 0.1, 0.2), tune_fraction=0.25, seed=0).threshold == ev.threshold
    moved = evaluate_prm(_prm_table(0.6, 0.8, 0.6, 0.8), tune_fraction=0.25, seed=0)
    assert moved.threshold == pytest.approx(0.61) and moved.test.mean_f1 == 1.0


def test_sweep_reports_every_threshold_and_needs_both_classes():
    sweep = sweep_thresholds(["s", "s"], [0, -1], [[0.3, 0.9], [0.9, 0.9]], thresholds=[0.5, 0.2, 0.95])
    assert sweep.thresholds == (0.2, 0.5, 0.95)
    assert sweep.mean_f1 == (0.0, 1.0, 0.0) and sweep.best_threshold == 0.5
    with pytest.raises(ValueError, match="erroneous and correct"):
        sweep_thresholds(["s"], [0], [[0.3]], thresholds=[0.5])


def test_tuning_mask_is_deterministic_and_order_free():
    ids = [f"math-{i}" for i in range(1000)]
    m = tuning_mask(ids, 0.2, seed=1)
    assert m == tuning_mask(ids, 0.2, seed=1)
    assert dict(zip(ids, m)) == dict(zip(ids[::-1], tuning_mask(ids[::-1], 0.2, seed=1)))
    assert 150 < sum(m) < 250 and m != tuning_mask(ids, 0.2, seed=2)
