"""Hydra composition of every config file, validation errors, rendering every configured prompt."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import PROJECT_ROOT, ConfigError, compose
from pipeline.datasets import load_problems
from pipeline.prompts import get_prompt

CONF = PROJECT_ROOT / "conf"
GROUPS = ("model", "dataset", "prompt", "budget", "verification", "cluster")


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_every_config_file_starts_with_its_launch_command():
    files = [CONF / "config.yaml"] + [p for g in GROUPS for p in (CONF / g).glob("*.yaml")]
    for path in files:
        head = path.read_text().splitlines()[:3]
        assert head[0].startswith("#") and "python -m pipeline.run" in "\n".join(head), path


@pytest.mark.parametrize("option", _options("model"))
@pytest.mark.parametrize("role", ["solver", "verifier"])
def test_every_model_preset_composes_in_both_roles(option, role):
    cfg = compose([f"model@{role}={option}"])
    assert getattr(cfg, role).path and getattr(cfg, role).max_model_len > 0


@pytest.mark.parametrize("group", ["dataset", "prompt", "budget", "verification", "cluster"])
def test_every_group_option_composes(group):
    for option in _options(group):
        cfg = compose([f"{group}={option}"])
        assert cfg.run_id


@pytest.mark.parametrize("dataset", ["math500", "gsm8k", "aime24", "amc23"])
def test_real_datasets_load_and_every_prompt_renders_for_a_real_problem(dataset):
    cfg = compose([f"dataset={dataset}", "dataset.limit=3"])
    problems = load_problems(cfg.dataset)
    assert len(problems) == 3 and all(p.answer for p in problems)
    p = problems[0]
    for option in _options("prompt"):
        pc = compose([f"prompt={option}"]).prompt
        solver = get_prompt(pc.solver).render(problem=p.problem)
        verifier = get_prompt(pc.verifier).render(problem=p.problem, solution="We compute.\nAnswer: 1")
        for rendered in (solver, verifier):
            text = rendered if isinstance(rendered, str) else "".join(m["content"] for m in rendered)
            assert p.problem in text


def test_defaults_and_overrides_reach_the_typed_config():
    cfg = compose(["dataset=math500", "budget.solutions=64", "model@solver=llama31_8b_instruct"])
    assert cfg.budget.solutions == 64 and cfg.dataset.name == "math500"
    assert cfg.solver.path == "meta-llama/Llama-3.1-8B-Instruct"
    assert cfg.run_id == "math500-Llama-3.1-8B-Instruct-s64-v2"
    with pytest.raises(Exception):  # frozen
        cfg.budget.solutions = 3  # type: ignore[misc]


@pytest.mark.parametrize("override, key", [
    ("budget.solutions=0", "budget.solutions"),
    ("budget.verifications=-1", "budget.verifications"),
    ("budget.solver.top_p=1.5", "budget.solver.top_p"),
    ("cluster.mode=turbo", "cluster.mode"),
    ("verification.kind=oracle", "verification.kind"),
    ("verification.model=judge", "verification.model"),
    ("solver.dtype=int3", "solver.dtype"),
    ("solver.replicas=0", "solver.replicas"),
    ("prompt.solver=no_such_prompt", "prompt.solver"),
    ("dataset.grader=no_such_grader", "dataset.grader"),
    ("run_id=a/b", "run_id"),
    ("cluster.engine_timeout_s=0", "cluster.engine_timeout_s"),
    ("verifier.engine=tgi", "verifier.engine"),
])
def test_bad_values_fail_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        compose([override])


@pytest.mark.parametrize("override, fragment", [
    ("budget.solutionz=3", "budget.solutionz"),
    ("budget.solutions=many", "budget.solutions"),
])
def test_unknown_keys_and_wrong_types_fail_naming_the_key(override, fragment):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match=fragment.replace(".", r"\.")):
        compose([override])


def test_identity_ignores_cluster_layout_but_not_budget():
    base = compose([])
    assert compose(["cluster.batch_size=7", "solver.replicas=2"]).identity() == base.identity()
    assert compose(["budget.seed=1"]).identity() != base.identity()
    assert compose(["cluster.engine_timeout_s=null"]).identity() == base.identity()
    assert compose(["solver.engine=standin"]).identity() != base.identity()  # canned rows never mix with real ones


def test_run_dir_resolves_relative_output_dir_against_the_project(tmp_path: Path):
    assert compose(["output_dir=runs"]).run_dir.parent == PROJECT_ROOT / "runs"
    assert compose([f"output_dir={tmp_path}"]).run_dir.parent == tmp_path


def test_default_config_reads_the_shipped_toy_problems_and_points_at_the_toy_checkpoints():
    cfg = compose([])
    problems = load_problems(cfg.dataset)
    assert len(problems) >= 100 and problems[0].reference_steps and cfg.dataset.grader == "toy"
    assert cfg.solver.path == "toyworld/checkpoints/solver" and cfg.verifier.path == "toyworld/checkpoints/verifier"
