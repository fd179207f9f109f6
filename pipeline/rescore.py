"""Re-score a stored run without regenerating: re-grade its solutions, re-parse its verdicts.

    python -m pipeline.rescore run_dir=runs/demo grader=gsm8k                 # re-grade, keep the old grades
    python -m pipeline.rescore run_dir=runs/demo grader=toy replace=true      # re-grade, drop the old grades
    python -m pipeline.rescore run_dir=runs/demo verifier=toy-genrm parser_prompt=toy_genrm_v1   # re-parse

Re-grading grades every problem's solutions together (in solution_idx order, through
``pipeline.grade.GradingPool``, so answer classes span all of a problem's solutions, whichever revision
wrote them) against the stored reference (``problems.answer``), then rewrites only the solutions parts
whose grade columns change (extracted_answer, answer_class, is_correct, grade_status, grader_version;
every other column keeps its value). Unless ``replace=true``, the grades a part held are first committed to
the ``grades`` table, labelled by their grader_version, so the earlier grading stays available. Re-parsing
reads each verification text of ``verifier`` again with the parser of ``parser_prompt`` (its verdict cue
and yes/no words; a critic's boxed index, which must name one of the solution's steps) and rewrites verdict / predicted_error_step / parse_status;
P(Yes) comes from the engine's logprobs and is left as recorded. The analysis then reads the new scores
(``python -m analysis.run run_dir=...``).

Each part is rewritten atomically, archive before rewrite, so a killed re-score is finished by running it
again (already re-scored parts are unchanged then). Do not re-score a run directory while a pipeline run
writes to it. Every re-score is recorded in the manifest's ``rescores`` list and its summary is refreshed.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.manifest import Manifest
from pipeline.schema import MANIFEST_FILE
from pipeline.store import StoreError, TableStore

GRADE_COLUMNS = ("extracted_answer", "answer_class", "is_correct", "grade_status", "grader_version")
PARSE_COLUMNS = ("verdict", "predicted_error_step", "parse_status")


class RescoreError(ValueError):
    """The re-score request or the run directory is unusable; the message names the key or file."""


@dataclass
class RescoreConfig:
    """What to re-score (Hydra primary config ``conf/rescore.yaml``); validated on construction."""

    run_dir: str = "???"
    grader: Optional[str] = None  # pipeline.graders name; null: no re-grading
    replace: bool = False  # true: do not keep the replaced grades in the grades table
    timeout_s: float = 5.0  # per-answer grading timeout
    processes: int = 1  # grading worker processes (isolated graders)
    verifier: Optional[str] = None  # re-parse this verifier's verifications ...
    parser_prompt: Optional[str] = None  # ... with this prompt's parser (pipeline.prompts name)

    def __post_init__(self) -> None:
        from pipeline.graders import GRADERS
        from pipeline.prompts import get_prompt

        if not self.run_dir or self.run_dir == "???":
            raise RescoreError("rescore config: run_dir is required (python -m pipeline.rescore run_dir=...)")
        if not (Path(self.run_dir) / MANIFEST_FILE).is_file():
            raise RescoreError(f"rescore config key 'run_dir': {self.run_dir} holds no {MANIFEST_FILE}; not a run")
        if self.grader is None and self.verifier is None:
            raise RescoreError("rescore config: nothing to do; set grader=<name> and/or verifier=<name> "
                               "parser_prompt=<prompt>")
        if self.grader is not None and self.grader not in GRADERS:
            raise RescoreError(f"rescore config key 'grader': {self.grader!r} is not one of {sorted(GRADERS)}")
        if (self.verifier is None) != (self.parser_prompt is None):
            raise RescoreError("rescore config keys 'verifier' and 'parser_prompt' go together")
        if self.parser_prompt is not None:
            try:
                get_prompt(self.parser_prompt)
            except KeyError as e:
                raise RescoreError(f"rescore config key 'parser_prompt': {e}") from None
        if self.timeout_s <= 0 or self.processes < 1:
            raise RescoreError("rescore config: timeout_s must be > 0 and processes >= 1")


def _changed(old: pa.Table, new: pa.Table, columns: tuple[str, ...]) -> bool:
    return any(not old.column(c).equals(new.column(c)) for c in columns)


def _replace_columns(table: pa.Table, values: dict[str, pa.Array]) -> pa.Table:
    for name, col in values.items():
        table = table.set_column(table.schema.get_field_index(name), name, col.cast(table.schema.field(name).type))
    return table


def regrade(run_dir: Path, grader: str, *, replace: bool = False, timeout_s: float = 5.0,
            processes: int = 1) -> dict:
    """Re-grade every solution of ``run_dir`` with ``grader`` (see the module doc); returns the record
    added to the manifest's ``rescores``."""
    from pipeline.grade import GradingPool

    sols, grades = TableStore(run_dir, "solutions"), TableStore(run_dir, "grades")
    for store in (sols, grades):
        store.recover()
    answers = {}
    for t in TableStore(run_dir, "problems").iter_columns(["problem_id", "answer"]):
        answers.update(zip(t.column("problem_id").to_pylist(), t.column("answer").to_pylist()))
    texts: dict[str, dict[int, str]] = {}
    for t in sols.iter_columns(["problem_id", "solution_idx", "text"]):
        for p, i, text in zip(*(t.column(c).to_pylist() for c in ("problem_id", "solution_idx", "text"))):
            texts.setdefault(p, {})[i] = text
    missing = sorted(set(texts) - set(answers))
    if missing:
        raise RescoreError(f"{run_dir}/problems: no row for problems {missing[:5]} that have solutions")
    with GradingPool(grader, timeout_s=timeout_s, processes=processes) as pool:
        ids = list(texts)
        graded = pool.grade_many([(answers[p], [texts[p][i] for i in sorted(texts[p])]) for p in ids])
        version = pool.grader_version
    new = {(p, i): g for p, gs in zip(ids, graded) for i, g in zip(sorted(texts[p]), gs)}
    archived = grades.done_units(["problem_id", "solution_idx", "grader_version"])
    now = time.time()
    rewritten = rows_changed = 0
    for part in sols.parts():
        old = pq.read_table(part)
        keys = list(zip(old.column("problem_id").to_pylist(), old.column("solution_idx").to_pylist()))
        gs = [new[k] for k in keys]
        updated = _replace_columns(old, {c: pa.array([getattr(g, c) for g in gs]) for c in GRADE_COLUMNS})
        if not _changed(old, updated, GRADE_COLUMNS):
            continue
        if not replace:
            keep = [(p, i, v) not in archived for (p, i), v in zip(keys, old.column("grader_version").to_pylist())]
            kept = old.filter(pa.array(keep, pa.bool_())).select(["run_id", "problem_id", "solution_idx",
                                                                   *GRADE_COLUMNS])
            if kept.num_rows:
                kept = kept.set_column(kept.schema.get_field_index("grader_version"), "grader_version",
                                       pc.fill_null(kept.column("grader_version"), "unknown"))
                grades.commit(kept.append_column("replaced_at", pa.array([now] * kept.num_rows, pa.float64())))
        rows_changed += sum(1 for a, b in zip(old.select(list(GRADE_COLUMNS)).to_pylist(),
                                              updated.select(list(GRADE_COLUMNS)).to_pylist()) if a != b)
        sols.rewrite(part, updated)
        rewritten += 1
    return {"kind": "grade", "at": now, "grader": grader, "grader_version": version, "replace": replace,
            "parts_rewritten": rewritten, "rows_changed": rows_changed}


def reparse(run_dir: Path, verifier: str, parser_prompt: str) -> dict:
    """Re-parse the verdicts of ``verifier``'s verifications with ``parser_prompt``'s parser (module doc);
    returns the record added to the manifest's ``rescores``."""
    from pipeline.parse import parse_verdict
    from pipeline.prompts import get_prompt
    from pipeline.verify import critic_reading

    prompt = get_prompt(parser_prompt)
    store = TableStore(run_dir, "verifications")
    store.recover()
    n_steps: dict[tuple[str, int], int] = {}  # a critic's index must name one of the solution's steps

    def steps_of(key: tuple[str, int]) -> int:
        if not n_steps:
            for t in TableStore(run_dir, "solutions").iter_columns(["problem_id", "solution_idx", "steps"]):
                for p, i, steps in zip(*(t.column(c).to_pylist() for c in ("problem_id", "solution_idx", "steps"))):
                    n_steps[(p, i)] = len(steps or [])
        return n_steps.get(key, 0)

    rewritten = rows_changed = seen = 0
    for part in store.parts():
        old = pq.read_table(part)
        cols = {c: old.column(c).to_pylist() for c in PARSE_COLUMNS}
        columns = ("verifier", "verifier_kind", "text", "problem_id", "solution_idx")
        for r, (name, kind, text, p, i) in enumerate(zip(*(old.column(c).to_pylist() for c in columns))):
            if name != verifier or text is None:
                continue
            seen += 1
            if kind == "critic":
                cols["predicted_error_step"][r], cols["verdict"][r], cols["parse_status"][r] = critic_reading(
                    text, steps_of((p, i)))
            else:
                cols["verdict"][r], cols["parse_status"][r] = parse_verdict(prompt, text)
        updated = _replace_columns(old, {c: pa.array(v, old.schema.field(c).type) for c, v in cols.items()})
        if _changed(old, updated, PARSE_COLUMNS):
            rows_changed += sum(1 for a, b in zip(old.select(list(PARSE_COLUMNS)).to_pylist(),
                                                  updated.select(list(PARSE_COLUMNS)).to_pylist()) if a != b)
            store.rewrite(part, updated)
            rewritten += 1
    if not seen:
        raise RescoreError(f"{run_dir}/verifications: no verification text of verifier {verifier!r} to re-parse")
    return {"kind": "parse", "at": time.time(), "verifier": verifier, "parser_prompt": parser_prompt,
            "parts_rewritten": rewritten, "rows_changed": rows_changed}


def rescore(cfg: RescoreConfig) -> list[dict]:
    """Run the re-grade and/or re-parse ``cfg`` asks for, record them in the manifest, refresh its summary."""
    from pipeline.progress import summarize

    run_dir = Path(cfg.run_dir)
    records = []
    if cfg.grader is not None:
        records.append(regrade(run_dir, cfg.grader, replace=cfg.replace, timeout_s=cfg.timeout_s,
                               processes=cfg.processes))
    if cfg.verifier is not None:
        records.append(reparse(run_dir, cfg.verifier, cfg.parser_prompt))
    manifest = Manifest(run_dir)
    manifest.data.setdefault("rescores", []).extend(records)
    verifier = manifest.data.get("config", {}).get("verification", {}).get("name")
    manifest.data["summary"] = summarize(run_dir, verifier).to_dict()
    manifest.write()
    return records


def main() -> None:
    import hydra
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    ConfigStore.instance().store(name="rescore_schema", node=RescoreConfig)

    @hydra.main(config_path="../conf", config_name="rescore", version_base="1.3")
    def _main(cfg) -> None:
        try:
            for r in rescore(OmegaConf.to_object(cfg)):
                print(", ".join(f"{k}={v}" for k, v in r.items() if k != "at"), flush=True)
        except (RescoreError, StoreError, OmegaConfBaseException) as e:  # says which key or file
            print(f"error: {e}", file=sys.stderr, flush=True)
            sys.exit(2)

    _main()


if __name__ == "__main__":
    main()
