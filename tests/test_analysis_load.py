"""Loading run directories: arrays, schema-version checks, partial runs, and the JSONL importer round trip."""
from __future__ import annotations

import json
import shutil

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from analysis.importers import import_jsonl
from analysis.load import load_run, read_table
from analysis.synthetic import SyntheticSpec, write_synthetic_run
from pipeline.schema import SCHEMA_VERSION_KEY


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    return write_synthetic_run(tmp_path_factory.mktemp("run"), SyntheticSpec(
        problems=12, solutions=6, verifications=3, critic_verifications=2, prm=True, problems_per_file=5))


def test_arrays_match_tables(synthetic_run):
    arrays = load_run(synthetic_run)
    sols = read_table(synthetic_run, "solutions")
    assert arrays.valid.sum() == sols.height
    pos = {pid: i for i, pid in enumerate(arrays.problem_ids)}
    for row in sols.sample(20, seed=0).iter_rows(named=True):
        i, j = pos[row["problem_id"]], row["solution_idx"]
        assert arrays.correct[i, j] == row["is_correct"]
        assert (arrays.classes["string"][i, j] < 0) == (row["extracted_answer"] is None)
    ver = read_table(synthetic_run, "verifications").filter(pl.col("verifier") == "genrm")
    values, present = arrays.verifiers["genrm"].scores["p_yes"]
    row = ver.row(7, named=True)
    assert values[pos[row["problem_id"]], row["solution_idx"], row["verification_idx"]] == row["p_yes"]
    assert present.sum() == ver.height
    prm_min = arrays.verifiers["prm"].scores["prm_min"][0]
    first = read_table(synthetic_run, "verifications").filter(pl.col("verifier") == "prm").row(0, named=True)
    assert prm_min[pos[first["problem_id"]], first["solution_idx"], 0] == min(first["step_scores"])
    # Correct answers spelled two ways: one equivalence class, two string classes.
    both = (sols.filter(pl.col("is_correct")).group_by("problem_id")
            .agg(pl.col("extracted_answer").n_unique().alias("spellings")).filter(pl.col("spellings") == 2))
    i = pos[both["problem_id"][0]]
    corr = arrays.correct[i] & arrays.valid[i]
    assert len(set(arrays.classes["equivalence"][i][corr])) == 1
    assert len(set(arrays.classes["string"][i][corr])) == 2


def test_partial_run_skips_tmp_files_and_missing_problems(synthetic_run, tmp_path):
    run = tmp_path / "partial"
    shutil.copytree(synthetic_run, run)
    # A file being written and a problem not yet solved: both must be tolerated.
    (run / "solutions" / "part-00099.parquet.tmp").write_bytes(b"partial garbage")
    (run / "verifications" / ".tmp-writer").mkdir()
    (run / "verifications" / ".tmp-writer" / "x.parquet").write_bytes(b"garbage")
    files = sorted((run / "solutions").glob("*.parquet"))
    files[-1].unlink()
    arrays = load_run(run)
    assert 0 < len(arrays.problem_ids) < 12
    assert any("have no solutions" in n for n in arrays.notes)


def test_newer_schema_version_is_rejected(synthetic_run, tmp_path):
    run = tmp_path / "newer"
    shutil.copytree(synthetic_run, run)
    path = sorted((run / "problems").glob("*.parquet"))[0]
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    meta[SCHEMA_VERSION_KEY] = b"999"
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(ValueError, match="schema version 999 is newer"):
        load_run(run)


RECORDS = [
    {"problem_id": "a", "problem": "1/2 of 1?", "answer": "1/2", "level": 2,
     "answers": ["1/2", "0.5", None, "3"], "correct": [True, True, False, False],
     "scores": [[0.9, 0.7], 0.8, None, [0.2]], "completion_tokens": [10, 12, 8, 9], "prompt_tokens": 20},
    {"problem_id": "b", "answers": ["4", "4", "5"], "correct": [0, 0, 1], "scores": [0.1, 0.3, 0.95],
     "completion_tokens": [5, 5, 6], "prompt_tokens": 15},
]


def test_importer_round_trip(tmp_path):
    src = tmp_path / "samples.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n")
    run = import_jsonl(src, tmp_path / "run")
    sols = read_table(run, "solutions").sort("problem_id", "solution_idx")
    ver = read_table(run, "verifications").sort("problem_id", "solution_idx", "verification_idx")
    for rec in RECORDS:
        mine = sols.filter(pl.col("problem_id") == rec["problem_id"])
        assert mine["extracted_answer"].to_list() == rec["answers"]
        assert mine["is_correct"].to_list() == [bool(c) for c in rec["correct"]]
        scores = []
        for i, s in enumerate(rec["scores"]):
            got = ver.filter((pl.col("problem_id") == rec["problem_id"]) & (pl.col("solution_idx") == i))
            scores.append(None if got.height == 0 else got["p_yes"].to_list())
        assert scores == [None if s is None else list(np.atleast_1d(s)) for s in rec["scores"]]
    arrays = load_run(run)
    # "1/2" and "0.5" are both correct, hence one equivalence class; string votes keep them apart.
    eq = arrays.classes["equivalence"][0]
    st = arrays.classes["string"][0]
    assert eq[0] == eq[1] and st[0] != st[1] and eq[2] == -1
    assert arrays.solve_tokens.generated_per_sample == pytest.approx(np.mean([10, 12, 8, 9, 5, 5, 6]))
    assert read_table(run, "problems").filter(pl.col("problem_id") == "a")["answer"].item() == "1/2"


def test_importer_errors_name_line_and_key(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps(RECORDS[0]) + "\n" + json.dumps({"problem_id": "x", "answers": ["1"]}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: missing key 'correct'"):
        import_jsonl(src, tmp_path / "run")
    src.write_text(json.dumps({"problem_id": "x", "answers": ["1"], "correct": [1], "scores": [1.5]}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: score 1.5 of sample 0"):
        import_jsonl(src, tmp_path / "run2")


def test_vote_key_string_splits_equivalent_answers(synthetic_run):
    from analysis.curves import evaluate

    arrays = load_run(synthetic_run)
    by_key = {key: evaluate(arrays, [6], [0], vote_key=key, methods=("majority",)).values[:, 0]
              for key in ("equivalence", "string")}
    # Correct answers come in two spellings: string votes split them, so they can only lose votes.
    assert np.all(by_key["string"] <= by_key["equivalence"] + 1e-12)
    assert by_key["string"].mean() < by_key["equivalence"].mean()
