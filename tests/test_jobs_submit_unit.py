"""jobs.submit's entrypoint and runtime_env building (no cluster)."""
from __future__ import annotations

import shlex

import pytest

from jobs import submit


def test_entrypoint_round_trips_through_the_shell():
    spec = submit.JobSpec(overrides=("dataset=toy", "+note='a b; $X'", 'prompt.solver="x y"'), run_id="r1",
                          output_dir="s3://bucket/runs", analyze=True)
    pipeline, analysis = submit.build_entrypoint(spec).split(" && ")
    assert shlex.split(pipeline) == ["python", "-m", "pipeline.run", "dataset=toy", "+note='a b; $X'",
                                     'prompt.solver="x y"', "output_dir=s3://bucket/runs", "run_id=r1"]
    assert shlex.split(analysis) == ["python", "-m", "analysis.run", "run_dir=s3://bucket/runs/r1"]


@pytest.mark.parametrize("bad, match", [("a b", "bad Hydra override"), ("run_id=x", "--run-id"),
                                        ("+output_dir=/x", "--output-dir"), ("dataset=toy'", "bad Hydra")])
def test_bad_overrides_are_refused_before_upload(bad, match):
    with pytest.raises(ValueError, match=match):
        submit.build_entrypoint(submit.JobSpec(overrides=(bad,), run_id="r"))


def test_runtime_env_excludes_and_checks_the_repo(tmp_path):
    env = submit.build_runtime_env(submit.JobSpec(overrides=(), run_id="r", pip=("polars==2.1",),
                                                  env_vars={"WANDB_MODE": "offline"}))
    assert env["working_dir"] == str(submit.REPO_ROOT)
    assert {".git", ".venv", "runs", "wandb", "**/__pycache__"} <= set(env["excludes"])
    assert env["pip"] == ["polars==2.1"] and env["env_vars"] == {"WANDB_MODE": "offline"}
    with pytest.raises(ValueError, match="not the solve-verify repository"):
        submit.build_runtime_env(submit.JobSpec(overrides=(), run_id="r", working_dir=str(tmp_path)))


def test_cli_errors_exit_2_with_a_message(capsys):
    assert submit.main(["--address", "http://127.0.0.1:1", "status", "sv-x"]) == 2
    assert "error: Failed to connect to Ray at address: http://127.0.0.1:1" in capsys.readouterr().err
