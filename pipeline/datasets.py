"""Reading a problem set (JSON Lines) into typed problems, with errors that name file, line and key.

The dataset config maps the file's field names onto ours (``FieldMap``). Every line is checked before
any engine starts: valid UTF-8, a JSON object, the mapped fields present, non-empty problem text,
unique ids, a reference answer the dataset's grader can read.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import DatasetConfig, SubsetConfig, resolve_path


class DatasetError(ValueError):
    """A problem set cannot be read; the message names the file, the line and the key."""


@dataclass(frozen=True)
class Problem:
    problem_id: str
    problem: str
    answer: str | None  # the reference answer as the grader reads it (``Grader.gold``)
    level: int | None
    subject: str | None
    reference_steps: list[str] | None
    line: int  # 1-based line in the source file, for error messages


def _field(record: dict[str, Any], key: str | None, where: str, ours: str) -> Any:
    if key is None:
        return None
    if key not in record:
        raise DatasetError(
            f"{where}: missing field {key!r} (mapped to {ours!r} by dataset.fields.{ours}); "
            f"the record has {sorted(record)}"
        )
    return record[key]


def _parse_line(raw: bytes, where: str, index: int, cfg: DatasetConfig) -> Problem:
    from pipeline.graders import get_grader

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{where}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{where}: not valid JSON ({e.msg}, column {e.colno})") from None
    if not isinstance(record, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(record).__name__}")
    f = cfg.fields
    pid = _field(record, f.problem_id, where, "problem_id")
    problem = _field(record, f.problem, where, "problem")
    if not isinstance(problem, str) or not problem.strip():
        raise DatasetError(f"{where}: field {f.problem!r} (problem text) is empty or not a string")
    answer = _field(record, f.answer, where, "answer")
    gold = None
    if answer is not None:
        # json accepts NaN / Infinity; str() would turn them into answers like "nan" that graders may read.
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)) or (
                isinstance(answer, float) and not math.isfinite(answer)):
            raise DatasetError(f"{where}: field {f.answer!r} (answer) must be a string or a finite number, "
                               f"got {answer!r}")
        try:
            gold = get_grader(cfg.grader).gold(str(answer))
        except ValueError as e:
            raise DatasetError(f"{where}: field {f.answer!r}: {e}") from None
    level = _field(record, f.level, where, "level")
    if level is not None and not isinstance(level, int):
        raise DatasetError(f"{where}: field {f.level!r} (level) must be an integer, got {level!r}")
    steps = _field(record, f.reference_steps, where, "reference_steps")
    if steps is not None and not (isinstance(steps, list) and all(isinstance(s, str) for s in steps)):
        raise DatasetError(f"{where}: field {f.reference_steps!r} (reference_steps) must be a list of strings")
    subject = _field(record, f.subject, where, "subject")
    return Problem(
        problem_id=str(index if pid is None else pid),
        problem=problem,
        answer=gold,
        level=level,
        subject=None if subject is None else str(subject),
        reference_steps=steps,
        line=index + 1,
    )


def load_problems(cfg: DatasetConfig) -> list[Problem]:
    """The first ``cfg.limit`` problems of ``cfg.file`` (all when null), validated (see module doc)."""
    path: Path = resolve_path(cfg.file)
    if not path.is_file():
        raise DatasetError(f"dataset {cfg.name!r}: file {path} does not exist (config key 'dataset.file')")
    problems: list[Problem] = []
    first_line: dict[str, int] = {}
    with path.open("rb") as fh:
        for index, raw in enumerate(fh):
            if cfg.limit is not None and len(problems) >= cfg.limit:
                break
            where = f"{path}:{index + 1}"
            if not raw.strip():
                raise DatasetError(f"{where}: empty line")
            p = _parse_line(raw, where, index, cfg)
            if p.problem_id in first_line:
                raise DatasetError(
                    f"{where}: duplicate problem id {p.problem_id!r} (field {cfg.fields.problem_id!r}), "
                    f"first seen on line {first_line[p.problem_id]}"
                )
            first_line[p.problem_id] = p.line
            problems.append(p)
    if not problems:
        raise DatasetError(f"dataset {cfg.name!r}: {path} holds no problems")
    return problems


def load_subset(cfg: SubsetConfig, problems: list[Problem]) -> list[str] | None:
    """The problem ids ``cfg`` selects (listed and/or read from its file), in dataset order; None: all.

    Raises DatasetError naming the file (and line) or the config key of an id that is not among
    ``problems`` (the dataset after ``dataset.limit``).
    """
    if cfg.problem_ids is None and cfg.file is None:
        return None
    known = {p.problem_id for p in problems}
    wanted: set[str] = set()
    for pid in cfg.problem_ids or []:
        if str(pid) not in known:
            raise DatasetError(f"config key 'subset.problem_ids': problem id {pid!r} is not in the dataset "
                               f"(after dataset.limit)")
        wanted.add(str(pid))
    if cfg.file is not None:
        for where, pid in _subset_file_ids(resolve_path(cfg.file)):
            if pid not in known:
                raise DatasetError(f"{where}: problem id {pid!r} (config key 'subset.file') is not in the dataset "
                                   f"(after dataset.limit)")
            wanted.add(pid)
    return [p.problem_id for p in problems if p.problem_id in wanted]


def _subset_file_ids(path: Path) -> list[tuple[str, str]]:
    """(where, problem id) pairs of a subset file: text (one id per line; blank lines and # comments
    skipped), or CSV / Parquet with a ``problem_id`` column."""
    if not path.is_file():
        raise DatasetError(f"subset file {path} does not exist (config key 'subset.file')")
    if path.suffix in (".csv", ".parquet"):
        import polars as pl

        frame = pl.read_csv(path, infer_schema=False) if path.suffix == ".csv" else pl.read_parquet(path)
        if "problem_id" not in frame.columns:
            raise DatasetError(f"{path}: no 'problem_id' column (has {frame.columns}); config key 'subset.file'")
        return [(f"{path} row {i + 1}", str(pid)) for i, pid in enumerate(frame["problem_id"].to_list())]
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if line.strip() and not line.lstrip().startswith("#"):
            out.append((f"{path}:{i + 1}", line.strip()))
    return out
