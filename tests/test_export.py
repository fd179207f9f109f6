"""results.json metrics equal the estimators' numbers; the per-sample log reads back through the lm-eval adapter."""
import json

import numpy as np
import polars as pl
import pytest

from analysis import estimators as est
from analysis.adapters import import_external
from analysis.export import export, metric_name, powers_up_to
from analysis.load import load_run, read_table
from analysis.synthetic import SyntheticSpec, write_synthetic_run


def test_names_and_grid():
    assert powers_up_to(12) == [1, 2, 4, 8, 12]
    assert metric_name("best_of_n", 8, 4, "genrm", several=False) == "bon@8_v4"
    assert metric_name("majority", 8, 0, None, several=True) == "maj@8"
    assert metric_name("weighted_majority", 2, 1, "g", several=True) == "wmaj@2_v1[g]"


def test_results_json_and_sample_log_round_trip(tmp_path):
    run = write_synthetic_run(tmp_path / "run", SyntheticSpec(problems=10, solutions=6, verifications=4, seed=1))
    out = export(run)
    res = json.loads((out / "results.json").read_text())
    (dataset, metrics), = res["results"].items()
    assert {"pass@1", "pass@6", "maj@4", "bon@4_v2", "bon@6_v4", "wmaj@2_v1"} <= set(metrics)
    arrays = load_run(run)
    n, c = arrays.valid.sum(1), (arrays.correct & arrays.valid).sum(1)
    assert metrics["pass@4"] == pytest.approx(est.pass_at_k(n, c, [4]).value.mean(), abs=1e-12)
    maj = est.majority_vote(arrays.classes["equivalence"], arrays.correct, arrays.valid, [4]).value[:, 0]
    assert metrics["maj@4"] == pytest.approx(maj.mean(), abs=1e-12)
    assert metrics["maj@4_stderr"] == pytest.approx(maj.std(ddof=1) / np.sqrt(maj.size), abs=1e-12)

    # The per-sample log is an lm-eval --log_samples file: the adapter reads it back. The synthetic answers
    # are not LaTeX, so grade with the toy grader only where it applies; check texts and order instead.
    log = pl.read_ndjson(out / f"samples_{dataset}.jsonl")
    sol = read_table(run, "solutions").sort("problem_id", "solution_idx")
    assert log.height == 10
    assert [t for r in log.sort("doc_id")["resps"].to_list() for t in r[0]] == sol["text"].to_list()
    assert [x for r in log.sort("doc_id")["is_correct"].to_list() for x in r] == sol["is_correct"].to_list()
    back = import_external("lm-eval", out / f"samples_{dataset}.jsonl", tmp_path / "back", grader="math")
    assert read_table(back, "solutions").height == sol.height
