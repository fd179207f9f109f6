"""Import per-problem samples written by other evaluation suites into a run directory.

    python -m analysis.importers samples.jsonl runs/imported --run-id other-suite
    python -m analysis.run run_dir=runs/imported

One JSON object per line, one line per problem (the shape lm-evaluation-harness-style and
large_language_monkeys-style dumps reduce to). Keys (aliases in brackets):

- ``problem_id`` [``id``, ``doc_id``, ``idx``] (required): unique per line.
- ``answers`` [``extracted_answers``, ``filtered_resps``] (required): the extracted final answer of each
  sample; ``null`` where the sample gave none.
- ``correct`` [``is_correct``, ``corrects``] (required): a boolean per sample (1/0 accepted).
- ``scores`` [``verifier_scores``] (optional): per sample a P(correct) in [0, 1], or a list of them
  (several verifications), or ``null`` (not verified). Stored as p_yes of verifier ``--verifier``.
- ``answer_classes`` (optional): equivalence class id per sample. Without it, all correct answers form
  one class (they are equivalent through the reference) and wrong answers are grouped by exact string.
- ``responses`` [``samples``, ``resps``] (optional): sample texts; ``answer`` [``reference``, ``target``]
  (optional reference); ``problem`` [``question``]; ``dataset``, ``level``, ``subject`` (optional).
- ``completion_tokens`` (optional per-sample list) and ``prompt_tokens`` (optional int) make lambda
  measurable; without them token counts are 0 and the analysis needs ``lam=...``.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.schema import MANIFEST_FILE, SCHEMA_VERSION, conform

ALIASES = {
    "problem_id": ("problem_id", "id", "doc_id", "idx"),
    "answers": ("answers", "extracted_answers", "filtered_resps"),
    "correct": ("correct", "is_correct", "corrects"),
    "scores": ("scores", "verifier_scores"),
    "responses": ("responses", "samples", "resps"),
    "answer": ("answer", "reference", "target"),
    "problem": ("problem", "question"),
}
REQUIRED = ("problem_id", "answers", "correct")


def _get(record: dict, key: str, where: str, required: bool = False):
    for alias in ALIASES.get(key, (key,)):
        if alias in record:
            return record[alias]
    if required:
        raise ValueError(f"{where}: missing key {key!r} (or one of {ALIASES[key]})")
    return None


def _classes(answers: list, correct: list[bool], given: list | None) -> list[int | None]:
    if given is not None:
        return [None if c is None else int(c) for c in given]
    ids: dict[str, int] = {}
    out = []
    for a, ok in zip(answers, correct):
        if a is None:
            out.append(None)
            continue
        key = "\x00correct" if ok else str(a).strip()
        out.append(ids.setdefault(key, len(ids)))
    return out


def jsonl_records(path: Path) -> Iterator[tuple[str, dict]]:
    """``(where, record)`` for each non-empty line of a JSONL file; ValueError naming the line if bad."""
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not valid JSON ({e})") from None


def import_jsonl(path: str | Path, run_dir: str | Path, *, run_id: str | None = None, **kwargs) -> Path:
    """Convert ``path`` into tables under ``run_dir`` (which must not already hold tables); return it.

    Keyword arguments are those of :func:`import_records`."""
    path = Path(path)
    return import_records(jsonl_records(path), run_dir, run_id=run_id or path.stem, source=path.name, **kwargs)


def import_records(records: Iterable[tuple[str, dict]], run_dir: str | Path, *, run_id: str, source: str,
                   dataset: str = "imported", model: str = "imported-solver", verifier: str = "imported",
                   verifier_model: str = "imported-verifier", verifier_kind: str = "genrm",
                   model_params: dict[str, float] | None = None) -> Path:
    """Write per-problem records (the keys of the module doc; ``where`` names each one in errors) as
    tables under ``run_dir``, which must not already hold tables. ``verifier_kind="prm"`` stores each
    sample's scores as the step_scores of one verification instead of one p_yes per verification."""
    run_dir = Path(run_dir)
    if any((run_dir / t).exists() for t in ("problems", "solutions", "verifications")):
        raise ValueError(f"{run_dir} already holds tables; import into a new directory")
    problems, solutions, verifications = [], [], []
    seen: set[str] = set()
    for where, rec in records:
        pid = str(_get(rec, "problem_id", where, True))
        if pid in seen:
            raise ValueError(f"{where}: duplicate problem_id {pid!r}")
        seen.add(pid)
        answers, correct = _get(rec, "answers", where, True), _get(rec, "correct", where, True)
        n = len(answers)
        if len(correct) != n:
            raise ValueError(f"{where}: {len(correct)} 'correct' values for {n} answers")
        correct = [bool(c) for c in correct]
        scores = _get(rec, "scores", where)
        responses = _get(rec, "responses", where) or [a if a is not None else "" for a in answers]
        tokens = rec.get("completion_tokens") or [0] * n
        for key, values in (("scores", scores), ("responses", responses), ("completion_tokens", tokens)):
            if values is not None and len(values) != n:
                raise ValueError(f"{where}: {len(values)} {key!r} values for {n} answers")
        classes = _classes(answers, correct, rec.get("answer_classes"))
        problems.append({"run_id": run_id, "problem_id": pid, "dataset": str(rec.get("dataset", dataset)),
                         "problem": str(_get(rec, "problem", where) or ""), "answer": _get(rec, "answer", where),
                         "level": rec.get("level"), "subject": rec.get("subject")})
        for i in range(n):
            solutions.append({
                "run_id": run_id, "problem_id": pid, "solution_idx": i, "text": str(responses[i]),
                "extracted_answer": None if answers[i] is None else str(answers[i]), "answer_class": classes[i],
                "is_correct": correct[i], "grader_version": f"imported:{source}",
                "grade_status": "no_answer" if answers[i] is None else ("correct" if correct[i] else "incorrect"),
                "prompt_tokens": int(rec.get("prompt_tokens", 0)), "completion_tokens": int(tokens[i]),
                "model": model,
            })
            sample_scores = scores[i] if scores is not None else None
            if sample_scores is None:
                continue
            values = np.atleast_1d(np.asarray(sample_scores, dtype=float))
            bad = values[~((values >= 0.0) & (values <= 1.0))]
            if bad.size:
                raise ValueError(f"{where}: score {bad[0]} of sample {i} is not a probability in [0, 1]")
            if verifier_kind == "prm":
                verifications.append({
                    "run_id": run_id, "problem_id": pid, "solution_idx": i, "verifier": verifier,
                    "verification_idx": 0, "verifier_kind": "prm", "step_scores": values.tolist(),
                    "p_yes_source": "none", "prompt_tokens": 0, "completion_tokens": 0, "model": verifier_model,
                })
                continue
            for j, p in enumerate(values):
                verifications.append({
                    "run_id": run_id, "problem_id": pid, "solution_idx": i, "verifier": verifier,
                    "verification_idx": j, "verifier_kind": "genrm", "p_yes": float(p), "verdict": bool(p >= 0.5),
                    "p_yes_source": "verdict_token", "parse_status": "ok", "prompt_tokens": 0,
                    "completion_tokens": 0, "model": verifier_model,
                })
    if not problems:
        raise ValueError(f"{source}: no records")
    for table, rows in (("problems", problems), ("solutions", solutions), ("verifications", verifications)):
        if rows:
            (run_dir / table).mkdir(parents=True, exist_ok=True)
            pq.write_table(conform(table, pa.Table.from_pylist(rows)), run_dir / table / "part-00000.parquet")
    manifest = {"schema_version": SCHEMA_VERSION, "run_id": run_id, "imported_from": source,
                "model_params": model_params or {}}
    (run_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    return run_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("jsonl", type=Path)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--run-id")
    ap.add_argument("--dataset", default="imported")
    ap.add_argument("--verifier", default="imported")
    args = ap.parse_args()
    print(import_jsonl(args.jsonl, args.run_dir, run_id=args.run_id, dataset=args.dataset, verifier=args.verifier))


if __name__ == "__main__":
    main()
