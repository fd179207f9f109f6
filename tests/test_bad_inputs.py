"""The bad-input corpus (tests/data/bad_inputs/): each file gives a clear error naming file, line and key,
or a recorded skip; and fuzzing of the dataset reader (never any other exception).

Everything here runs before an engine would start: reading (``load_problems``) and prompt preparation
(``prepare_solve``, which tokenises with the model's tokenizer).
"""
import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pipeline.config import ConfigError, compose
from pipeline.datasets import DatasetError, load_problems
from pipeline.solve import prepare_solve
from toyworld.tokenizer import build_tokenizer

CORPUS = Path(__file__).parent / "data" / "bad_inputs"

# file -> (line named in the message or None, a fragment of the message)
ERRORS = {
    "wrong_json.jsonl": (2, "not valid JSON"),
    "missing_problem.jsonl": (1, "missing field 'problem'"),
    "missing_answer.jsonl": (1, "missing field 'answer'"),
    "level_not_int.jsonl": (1, "field 'level' (level) must be an integer, got 'hard'"),
    "problem_not_string.jsonl": (1, "field 'problem' (problem text) is empty or not a string"),
    "duplicate_ids.jsonl": (3, "duplicate problem id 'a' (field 'unique_id'), first seen on line 1"),
    "empty_problem.jsonl": (1, "empty or not a string"),
    "nan_answer.jsonl": (1, "field 'answer' (answer) must be a string or a finite number, got nan"),
    "blank_line.jsonl": (2, "empty line"),
    "non_utf8.jsonl": (2, "not valid UTF-8"),
    "not_an_object.jsonl": (1, "expected a JSON object, got list"),
    "empty_file.jsonl": (None, "holds no problems"),
    "answer_not_integer.jsonl": (1, "field 'answer'"),
    "steps_not_list.jsonl": (1, "must be a list of strings"),
}


@pytest.fixture(scope="module")
def cfg():
    return compose(["run_id=bad-inputs"])


def _with_file(cfg, path: Path):
    return dataclasses.replace(cfg, dataset=dataclasses.replace(cfg.dataset, file=str(path)))


def test_the_corpus_covers_every_case():
    assert {p.name for p in CORPUS.glob("*.jsonl")} == set(ERRORS) | {
        "extra_fields_ok.jsonl", "unsupported_chars.jsonl", "huge_problem.jsonl"}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_bad_file_gives_an_error_naming_file_line_and_key(cfg, name):
    line, fragment = ERRORS[name]
    with pytest.raises(DatasetError) as err:
        load_problems(_with_file(cfg, CORPUS / name).dataset)
    message = str(err.value)
    assert fragment in message
    assert str(CORPUS / name) in message
    if line is not None:
        assert f"{name}:{line}:" in message


def test_nan_answer_is_refused_whatever_the_grader():
    math = compose(["run_id=bad-inputs", "dataset=math500"])
    with pytest.raises(DatasetError, match="nan_answer.jsonl:1: .*finite number, got nan"):
        load_problems(_with_file(math, CORPUS / "nan_answer.jsonl").dataset)


def test_extra_fields_are_ignored(cfg):
    problems = load_problems(_with_file(cfg, CORPUS / "extra_fields_ok.jsonl").dataset)
    assert [p.problem_id for p in problems] == ["a"]


def test_characters_the_model_cannot_read_fail_before_any_engine_naming_line_and_id(cfg):
    c = _with_file(cfg, CORPUS / "unsupported_chars.jsonl")
    with pytest.raises(ConfigError, match=r"line 2, problem 'b'.*cannot represent"):
        prepare_solve(c, load_problems(c.dataset), build_tokenizer())


def test_huge_problem_is_recorded_as_skipped_not_a_crash(cfg):
    c = _with_file(cfg, CORPUS / "huge_problem.jsonl")
    inputs = prepare_solve(c, load_problems(c.dataset), build_tokenizer())
    assert inputs.requests.num_rows == 0
    assert inputs.problems.column("skip_reason")[0].as_py().startswith("prompt_too_long")


_FIELD = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                   st.text(max_size=30), st.lists(st.text(max_size=5), max_size=3))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.one_of(
    st.binary(max_size=60),
    st.fixed_dictionaries({}, optional={k: _FIELD for k in ("unique_id", "problem", "answer", "level", "steps")})
    .map(lambda d: json.dumps(d).encode())), min_size=0, max_size=4))
def test_reader_fuzz_only_loads_or_raises_dataset_error(cfg, tmp_path_factory, records):
    path = tmp_path_factory.mktemp("fuzz") / "f.jsonl"
    path.write_bytes(b"\n".join(r.replace(b"\n", b" ") for r in records) + (b"\n" if records else b""))
    try:
        problems = load_problems(_with_file(cfg, path).dataset)
    except DatasetError as e:
        assert str(path) in str(e)
        return
    for p in problems:
        assert isinstance(p.problem, str) and p.problem.strip()
        assert p.answer is None or isinstance(p.answer, str)
        assert p.level is None or isinstance(p.level, int)
    assert len({p.problem_id for p in problems}) == len(problems)
