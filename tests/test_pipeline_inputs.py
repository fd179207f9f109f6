"""Bad input fails early with file/line/key, or is recorded as a skip; no engine starts."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import pipeline_overrides
from pipeline.config import ConfigError, compose
from pipeline.datasets import DatasetError, load_problems
from pipeline.engine import ModelPathError, load_tokenizer
from pipeline.run import run
from pipeline.solve import prepare_solve

GOOD = {"unique_id": "a", "problem": "Start with 1. Add 2.", "answer": "3", "level": 1, "subject": "x", "steps": []}


def _write(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def _cfg(tmp_path, tiny_model, data: Path, *extra: str):
    return compose(pipeline_overrides(tiny_model, data, tmp_path / "runs", *extra))


def _rec(**kw) -> bytes:
    return json.dumps({**GOOD, **kw}).encode()


@pytest.mark.parametrize("lines, pattern", [
    ([_rec(), b'{"unique_id": "b", "answer": "1", "level": 1, "subject": "x", "steps": []}'],
     r":2: missing field 'problem'"),
    ([_rec(), _rec(unique_id="b", problem="   ")], r":2: field 'problem' \(problem text\) is empty"),
    ([_rec(), _rec(unique_id="b"), _rec()], r":3: duplicate problem id 'a' .*first seen on line 1"),
    ([_rec(), b'{"unique_id": "b", "problem": "caf\xe9"}'], r":2: not valid UTF-8"),
    ([_rec(), b"{not json"], r":2: not valid JSON"),
    ([_rec(level="hard")], r":1: field 'level' \(level\) must be an integer"),
    ([_rec(answer="seven")], r":1: field 'answer': toy reference"),
])
def test_bad_dataset_lines_name_file_line_and_key(tmp_path, tiny_model, lines, pattern):
    path = _write(tmp_path, lines)
    cfg = _cfg(tmp_path, tiny_model, path)
    with pytest.raises(DatasetError, match=str(path).replace(".", r"\.") + pattern):
        load_problems(cfg.dataset)


def test_unknown_field_mapping_names_the_config_key(tmp_path, tiny_model):
    cfg = _cfg(tmp_path, tiny_model, _write(tmp_path, [_rec()]), "dataset.fields.subject=topic")
    with pytest.raises(DatasetError, match=r"missing field 'topic' \(mapped to 'subject' by dataset.fields.subject\)"):
        load_problems(cfg.dataset)


def test_missing_dataset_file(tmp_path, tiny_model):
    cfg = _cfg(tmp_path, tiny_model, tmp_path / "nope.jsonl")
    with pytest.raises(DatasetError, match="nope.jsonl does not exist"):
        run(cfg)


def test_missing_model_path_fails_before_anything_starts(tmp_path, tiny_model):
    cfg = _cfg(tmp_path, tiny_model, _write(tmp_path, [_rec()]), f"solver.path={tmp_path / 'no-model'}")
    with pytest.raises(ModelPathError, match="solver.path: model directory .*no-model does not exist"):
        run(cfg)
    assert not cfg.run_dir.exists()


def test_characters_outside_the_toy_vocabulary_fail_at_config_time_naming_the_row(tmp_path, tiny_model):
    path = _write(tmp_path, [_rec(), _rec(unique_id="b", problem="Start with 1. Add π.")])
    cfg = _cfg(tmp_path, tiny_model, path)
    with pytest.raises(ConfigError, match=r"line 2, problem 'b': the solver tokenizer .* cannot represent"):
        prepare_solve(cfg, load_problems(cfg.dataset), load_tokenizer(cfg.solver))


def test_prompt_longer_than_context_is_recorded_as_skipped(tmp_path, tiny_model):
    path = _write(tmp_path, [_rec(), _rec(unique_id="long", problem="Start with 1." + " Add 1." * 100)])
    cfg = _cfg(tmp_path, tiny_model, path, "solver.max_model_len=256")
    inputs = prepare_solve(cfg, load_problems(cfg.dataset), load_tokenizer(cfg.solver))
    assert inputs.requests.column("problem_id").to_pylist() == ["a"]
    skips = dict(zip(inputs.problems.column("problem_id").to_pylist(), inputs.problems.column("skip_reason").to_pylist()))
    assert skips["a"] is None and skips["long"].startswith("prompt_too_long: ")


def test_real_dataset_with_unsupported_characters_is_refused_for_the_toy_model(tmp_path, tiny_model):
    cfg = compose(pipeline_overrides(tiny_model, tmp_path / "x", tmp_path / "runs") +
                  ["dataset=gsm8k", "dataset.file=data/gsm8k_test.jsonl", "dataset.limit=5"])
    # GSM8K's first problem has a typographic apostrophe (U+2019)
    with pytest.raises(ConfigError, match=r"gsm8k_test\.jsonl\) line 1, problem '0': the solver tokenizer"):
        prepare_solve(cfg, load_problems(cfg.dataset), load_tokenizer(cfg.solver))
