"""Re-parsing verdicts of stored verifications (pipeline.rescore) on a small run directory written through
the real TableStore; re-grading on a real run is in test_stored_runs.py."""
from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pytest

from pipeline.rescore import PARSE_COLUMNS, RescoreConfig, RescoreError, rescore
from pipeline.store import TableStore

TEXTS = ["steps... Is the answer correct (Yes/No)? Yes", "steps... Correct? No", "no verdict at all", None]


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"run_id": "r", "schema_version": 1}))
    n = len(TEXTS)
    TableStore(tmp_path, "verifications").commit(pa.table({
        "run_id": ["r"] * n, "problem_id": ["p"] * n, "solution_idx": pa.array([0] * n, pa.int32()),
        "verifier": ["g"] * n, "verification_idx": pa.array(range(n), pa.int32()), "verifier_kind": ["genrm"] * n,
        "text": TEXTS, "verdict": pa.nulls(n, pa.bool_()), "p_yes": [0.1, 0.2, 0.3, None],
        "parse_status": ["no_verdict"] * 3 + ["unparsed"], "prompt_tokens": pa.array([5] * n, pa.int32()),
        "completion_tokens": pa.array([3] * n, pa.int32()), "model": ["m"] * n}))
    return tmp_path


def _rows(run_dir) -> pl.DataFrame:
    return pl.read_parquet(sorted((run_dir / "verifications").glob("part-*.parquet")))


def test_reparse_with_another_prompt_changes_only_the_parse_columns(run_dir):
    before = _rows(run_dir)
    (record,) = rescore(RescoreConfig(run_dir=str(run_dir), verifier="g", parser_prompt="genrm_ft_v1"))
    after = _rows(run_dir)
    assert after["verdict"].to_list() == [True, None, None, None]
    assert after["parse_status"].to_list() == ["ok", "no_verdict", "no_verdict", "unparsed"]
    assert record["rows_changed"] == 1
    others = [c for c in before.columns if c not in PARSE_COLUMNS]
    assert after.select(others).equals(before.select(others))  # p_yes stays as the engine gave it
    rescore(RescoreConfig(run_dir=str(run_dir), verifier="g", parser_prompt="toy_genrm_v1"))
    assert _rows(run_dir)["verdict"].to_list() == [None, False, None, None]


def test_bad_rescore_requests_name_the_key(run_dir, tmp_path_factory):
    with pytest.raises(RescoreError, match="'grader'"):
        RescoreConfig(run_dir=str(run_dir), grader="nope")
    with pytest.raises(RescoreError, match="'parser_prompt'"):
        RescoreConfig(run_dir=str(run_dir), verifier="g")
    with pytest.raises(RescoreError, match="'run_dir'"):
        RescoreConfig(run_dir=str(tmp_path_factory.mktemp("empty")), grader="toy")
    with pytest.raises(RescoreError, match="no verification text of verifier 'h'"):
        rescore(RescoreConfig(run_dir=str(run_dir), verifier="h", parser_prompt="toy_genrm_v1"))


def test_reparse_of_a_critic_reads_the_index_against_the_solution_steps(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"run_id": "r", "schema_version": 1}))
    TableStore(tmp_path, "solutions").commit(pa.table({
        "run_id": ["r"], "problem_id": ["p"], "solution_idx": pa.array([0], pa.int32()), "text": ["a\nb"],
        "grade_status": ["correct"], "steps": [["a", "b"]], "prompt_tokens": pa.array([5], pa.int32()),
        "completion_tokens": pa.array([3], pa.int32()), "model": ["m"]}))
    texts = ["\\boxed{1}", "\\boxed{-1}", "\\boxed{2}", "no box"]  # 2 is out of range for two steps
    n = len(texts)
    TableStore(tmp_path, "verifications").commit(pa.table({
        "run_id": ["r"] * n, "problem_id": ["p"] * n, "solution_idx": pa.array([0] * n, pa.int32()),
        "verifier": ["c"] * n, "verification_idx": pa.array(range(n), pa.int32()), "verifier_kind": ["critic"] * n,
        "text": texts, "parse_status": ["unparsed"] * n, "prompt_tokens": pa.array([5] * n, pa.int32()),
        "completion_tokens": pa.array([3] * n, pa.int32()), "model": ["m"] * n}))
    rescore(RescoreConfig(run_dir=str(tmp_path), verifier="c", parser_prompt="toy_critic_v1"))
    rows = _rows(tmp_path)
    assert rows["predicted_error_step"].to_list() == [1, -1, None, None]
    assert rows["verdict"].to_list() == [False, True, None, None]
    assert rows["parse_status"].to_list() == ["ok", "ok", "unparsed", "unparsed"]
