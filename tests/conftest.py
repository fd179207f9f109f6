"""Shared fixtures.

Pipeline section: one tiny random-weight Llama (toy tokenizer, head_dim 64, float32; built in seconds
by ``pipeline.testing.build_tiny_llama``), one small toy problem set (plus one problem whose prompt is
longer than the engines' context, to exercise skipping), and one local Ray for the in-process runs.
Engines are started by the runs themselves; tests share runs through session fixtures.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

TINY_MAX_MODEL_LEN = 512


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from pipeline.testing import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama", max_position_embeddings=1024)


@pytest.fixture(scope="session")
def toy_problems(tmp_path_factory) -> Path:
    """8 toy problems (levels 1-4, two each), one long enough that its prompts fill whole KV blocks
    (so the prefix cache has something to share), and one too long for TINY_MAX_MODEL_LEN (skipped)."""
    from toyworld.task import make_problem_set

    rows = make_problem_set(per_level=2, seed=7, levels=[1, 2, 3, 4])
    for pid, ops in (("toy/medium", 36), ("toy/long", 120)):
        rows.append({"unique_id": pid, "problem": "Start with 1." + " Add 1." * ops, "solution": "",
                     "answer": str(ops + 1), "level": 1, "subject": "Arithmetic chains", "steps": []})
    path = tmp_path_factory.mktemp("data") / "toy.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def pipeline_overrides(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    """Overrides for a small, fast run of the tiny model on the toy problems (solver = verifier model)."""
    return [
        f"solver.path={model}", "model@verifier=tiny_solver", f"verifier.path={model}", "verifier.name=tiny-verifier",
        f"solver.max_model_len={TINY_MAX_MODEL_LEN}", f"verifier.max_model_len={TINY_MAX_MODEL_LEN}",
        f"dataset.file={data}", f"output_dir={out}", "wandb.enabled=false",
        "budget.solutions=3", "budget.verifications=2", "budget.solver.max_tokens=24",
        "budget.verifier.max_tokens=24", "cluster.batch_size=4", "cluster.object_store_memory=268435456",
        *extra,
    ]


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole session; yields its address. In-process runs reuse it (and never stop
    it); subprocess drivers join it with ``cluster.address=<address>``, which saves each a Ray start."""
    import ray

    # address="local": always a fresh cluster, never one that `ray start` left running on this machine
    ray.init(address="local", num_cpus=4, object_store_memory=256 * 2**20, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


# ---------------------------------------------------------------------------------------------------
# The shipped toy models: one real run shared by the modules that need solutions of the trained solver.
# ---------------------------------------------------------------------------------------------------
TOY_S, TOY_V = 8, 1  # solutions per problem, GenRM verifications per solution of the shared run


@pytest.fixture(scope="session")
def toy_mixed_problems(tmp_path_factory) -> Path:
    """12 toy problems of levels 3-5 (the first four of each in the demo set): some votes split."""
    from pipeline.config import PROJECT_ROOT

    rows = [json.loads(line) for line in (PROJECT_ROOT / "data/toy/toy_demo.jsonl").read_text().splitlines()]
    pick = [r for level in (3, 4, 5) for r in [r for r in rows if r["level"] == level][:4]]
    path = tmp_path_factory.mktemp("toy-mixed-data") / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in pick))
    return path


def toy_run_overrides(problems: Path, out: Path) -> list[str]:
    """The shared run's config: exactly what ``bench.adaptive_saving.compare`` runs as its fixed-budget
    baseline (``run_id=fixed``), so a compare in a directory holding a copy finds that run finished."""
    return [f"dataset.file={problems}", f"output_dir={out}", f"budget.solutions={TOY_S}",
            f"budget.verifications={TOY_V}", "wandb.enabled=false", "run_id=fixed"]


@pytest.fixture(scope="session")
def toy_fixed_run(ray_local, toy_mixed_problems, tmp_path_factory) -> Path:
    """One real run of the shipped toy solver and GenRM verifier (defaults) on ``toy_mixed_problems``:
    S=TOY_S solutions per problem, TOY_V verification each. A solver and a verifier engine start once per
    session instead of once per module. Shared read-only: a module that writes (analysis, extensions,
    resumes) works on ``copy_run(toy_fixed_run, its_dir)``."""
    from pipeline.config import compose
    from pipeline.run import run

    out = tmp_path_factory.mktemp("toy-shared")
    return run(compose(toy_run_overrides(toy_mixed_problems, out))).run_dir


def copy_run(run_dir: Path, out: Path) -> Path:
    """A copy of a run directory under ``out`` (same run id): a run is resumable and extensible wherever it
    lies, since the output directory is not part of its identity."""
    import shutil

    return Path(shutil.copytree(run_dir, out / run_dir.name))
