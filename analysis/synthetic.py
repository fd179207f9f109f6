"""A synthetic run directory that follows ``pipeline.schema`` exactly, with controllable size.

Used by the analysis tests and bench in place of a real run. Each problem has a latent difficulty; a
solution is correct with that probability; correct solutions share answer class 0 but are written in
two spellings (so ``vote_key=string`` and ``equivalence`` differ), wrong ones fall in a few Zipf-like
wrong classes, a few give no answer. A GenRM verifier's p_yes is a noisy sigmoid of a per-solution
quality that depends on correctness (so averaging more verifications helps); a critic gives verdicts
and error steps; a PRM gives one verification with per-step scores. Token counts are plausible.

    python -m analysis.synthetic runs/synthetic --problems 500 --solutions 128 --verifications 128
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.schema import MANIFEST_FILE, SCHEMA_VERSION, conform

SOLVER_MODEL = "synthetic-solver-1b"
MODEL_PARAMS = {SOLVER_MODEL: 1.0e9, "synthetic-genrm-1b": 1.0e9, "synthetic-critic-1b": 1.0e9,
                "synthetic-prm-0.5b": 0.5e9}


@dataclass(frozen=True)
class SyntheticSpec:
    """Size and content of a synthetic run."""

    problems: int = 40
    solutions: int = 16
    verifications: int = 8
    critic_verifications: int = 0  # 0 = no critic verifier
    prm: bool = False
    seed: int = 0
    run_id: str = "synthetic"
    problems_per_file: int = 100

    def __post_init__(self):
        for name in ("problems", "solutions", "problems_per_file"):
            if getattr(self, name) < 1:
                raise ValueError(f"SyntheticSpec.{name} must be >= 1, got {getattr(self, name)}")
        if self.verifications < 0 or self.critic_verifications < 0:
            raise ValueError("SyntheticSpec verification counts must be >= 0")


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _write(run_dir: Path, table: str, part: int, columns: dict) -> None:
    folder = run_dir / table
    folder.mkdir(parents=True, exist_ok=True)
    data = conform(table, pa.table(columns))
    pq.write_table(data, folder / f"part-{part:05d}.parquet")


def _solutions(spec: SyntheticSpec, rng, pids: np.ndarray, difficulty: np.ndarray) -> dict:
    p, n = len(pids), spec.solutions
    correct = rng.random((p, n)) < difficulty[:, None]
    wrong_class = np.minimum(rng.zipf(1.6, size=(p, n)), 12)  # wrong classes 1..12
    blank = rng.random((p, n)) < 0.05
    cls = np.where(correct, 0, wrong_class)
    spelling = rng.random((p, n)) < 0.3  # a correct answer sometimes written as a decimal
    answers = np.where(cls == 0, np.where(spelling, "0.5", "\\frac{1}{2}"), np.char.add("w", cls.astype(str)))
    answers = np.where(blank, None, answers)
    cls = np.where(blank, -1, cls)
    correct &= ~blank
    prompt = np.repeat(rng.integers(150, 400, size=p), n)
    return {
        "run_id": [spec.run_id] * (p * n),
        "problem_id": np.repeat(pids, n),
        "solution_idx": np.tile(np.arange(n, dtype=np.int32), p),
        "text": np.char.add("synthetic solution ", np.tile(np.arange(n), p).astype(str)),
        "extracted_answer": pa.array(answers.ravel(), type=pa.string()),
        "answer_class": pa.array(cls.ravel(), mask=(cls.ravel() < 0), type=pa.int32()),
        "is_correct": correct.ravel(),
        "grade_status": np.where(blank.ravel(), "no_answer", np.where(correct.ravel(), "correct", "incorrect")),
        "grader_version": ["synthetic"] * (p * n),
        "prompt_tokens": prompt.astype(np.int32),
        "cached_prompt_tokens": np.where(np.tile(np.arange(n), p) == 0, 0, prompt).astype(np.int32),
        "completion_tokens": rng.integers(150, 450, size=p * n).astype(np.int32),
        "finish_reason": ["stop"] * (p * n),
        "model": [SOLVER_MODEL] * (p * n),
    }


def _verifications(spec, rng, sol: dict, verifier: str, kind: str, model: str, m: int) -> dict:
    rows = len(sol["problem_id"])
    correct = np.asarray(sol["is_correct"])
    quality = np.where(correct, 1.0, -1.0) + rng.normal(0.0, 1.0, size=rows)
    logits = quality[:, None] + rng.normal(0.0, 1.5, size=(rows, m))
    p_yes = _sigmoid(logits).ravel()
    total = rows * m
    prompt = np.repeat(np.asarray(sol["prompt_tokens"]) + np.asarray(sol["completion_tokens"]) + 40, m)
    vidx = np.tile(np.arange(m, dtype=np.int32), rows)
    cols = {
        "run_id": pa.array([spec.run_id], pa.string()).take(np.zeros(total, dtype=np.int64)),
        "problem_id": pa.array(np.repeat(np.asarray(sol["problem_id"]), m)),
        "solution_idx": np.repeat(np.asarray(sol["solution_idx"]), m),
        "verifier": pa.array([verifier], pa.string()).take(np.zeros(total, dtype=np.int64)),
        "verification_idx": vidx,
        "verifier_kind": pa.array([kind], pa.string()).take(np.zeros(total, dtype=np.int64)),
        "prompt_tokens": prompt.astype(np.int32),
        "cached_prompt_tokens": np.where(vidx == 0, 0, prompt).astype(np.int32),
        "model": pa.array([model], pa.string()).take(np.zeros(total, dtype=np.int64)),
    }
    if kind == "prm":
        n_steps = rng.integers(2, 7, size=rows)
        offsets = np.concatenate([[0], np.cumsum(n_steps)])
        step_logits = np.repeat(quality, n_steps) + rng.normal(1.0, 1.5, size=offsets[-1])
        cols["step_scores"] = pa.ListArray.from_arrays(offsets.astype(np.int32), _sigmoid(step_logits))
        cols["completion_tokens"] = np.zeros(total, dtype=np.int32)
        return cols
    verdict = p_yes > 0.5
    cols.update({
        "verdict": verdict, "p_yes": p_yes if kind == "genrm" else None,
        "p_yes_source": ["verdict_token" if kind == "genrm" else "none"] * total,
        "parse_status": ["ok"] * total,
        "completion_tokens": rng.integers(200, 600, size=total).astype(np.int32),
        "finish_reason": pa.array(["stop"], pa.string()).take(np.zeros(total, dtype=np.int64)),
    })
    if kind == "critic":
        cols["predicted_error_step"] = np.where(verdict, -1, 1).astype(np.int32)
    if cols["p_yes"] is None:
        del cols["p_yes"]
    return cols


def write_synthetic_run(run_dir: str | Path, spec: SyntheticSpec = SyntheticSpec()) -> Path:
    """Write ``spec``'s run (tables and manifest) under ``run_dir``; return the path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    difficulty = rng.beta(0.7, 0.7, size=spec.problems)
    pids = np.array([f"p{i:05d}" for i in range(spec.problems)])
    verifiers = [("genrm", "genrm", "synthetic-genrm-1b", spec.verifications)]
    if spec.critic_verifications:
        verifiers.append(("critic", "critic", "synthetic-critic-1b", spec.critic_verifications))
    if spec.prm:
        verifiers.append(("prm", "prm", "synthetic-prm-0.5b", 1))
    for part, lo in enumerate(range(0, spec.problems, spec.problems_per_file)):
        hi = min(lo + spec.problems_per_file, spec.problems)
        _write(run_dir, "problems", part, {
            "run_id": [spec.run_id] * (hi - lo), "problem_id": pids[lo:hi], "dataset": ["synthetic"] * (hi - lo),
            "problem": [f"synthetic problem {i}" for i in range(lo, hi)], "answer": ["\\frac{1}{2}"] * (hi - lo),
            "level": (1 + np.floor(5 * (1 - difficulty[lo:hi])).clip(0, 4)).astype(np.int32),
        })
        sol = _solutions(spec, rng, pids[lo:hi], difficulty[lo:hi])
        _write(run_dir, "solutions", part, sol)
        for name, kind, model, m in verifiers:
            if m:
                _write(run_dir, "verifications", part * 10 + len(name),
                       _verifications(spec, rng, sol, name, kind, model, m))
    manifest = {
        "schema_version": SCHEMA_VERSION, "run_id": spec.run_id, "synthetic": asdict(spec),
        "model_params": MODEL_PARAMS,
        # Measured wall time x replicas per stage; synthetic values proportional to the tokens.
        "replica_seconds": {"solve": 1e-4 * spec.problems * spec.solutions * 300,
                            "verify": {name: 1e-4 * spec.problems * spec.solutions * m * 400
                                       for name, _, _, m in verifiers if m}},
    }
    (run_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    return run_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    for name, default in asdict(SyntheticSpec()).items():
        kind = type(default) if not isinstance(default, bool) else (lambda s: s.lower() in ("1", "true", "yes"))
        ap.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default)
    args = vars(ap.parse_args())
    run_dir = args.pop("run_dir")
    print(write_synthetic_run(run_dir, SyntheticSpec(**args)))


if __name__ == "__main__":
    main()
