"""Adaptive compute inside a run (``adaptive`` config, ``pipeline.adaptive``) on the shipped toy models:
a policy that never stops reproduces the fixed run's keys; early stopping reaches the fixed budget's
success within its interval at fewer measured tokens; the decisions table matches the solutions; a
driver killed mid-way resumes exactly once. Config checks run without an engine."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from analysis.adaptive import top_votes
from bench.adaptive_saving import compare
from conftest import TOY_S, TOY_V, copy_run
from pipeline.config import PROJECT_ROOT, ConfigError, compose
from pipeline.run import run
from pipeline.schema import KEYS

S, V, K = 8, 1, 3


def _table(run_dir: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(sorted((run_dir / name).glob("part-*.parquet")))


def _classes(sols: pl.DataFrame) -> dict[str, np.ndarray]:
    return {p: g.sort("solution_idx")["answer_class"].fill_null(-1).to_numpy()
            for (p,), g in sols.group_by(["problem_id"])}


def _assert_stopped_at_first_agreement(run_dir: Path, k: int, s: int) -> dict[str, np.ndarray]:
    """Every problem has solution_idx 0..n-1 once, n = the first count where k answers agree (or S), and its
    decisions are one row per round: continue (split) until the last, stop (agree / cap)."""
    sols, dec = _table(run_dir, "solutions"), _table(run_dir, "decisions")
    assert sols.select(KEYS["solutions"]).is_duplicated().sum() == 0
    assert dec.select(KEYS["decisions"]).is_duplicated().sum() == 0
    classes = _classes(sols)
    for p, c in classes.items():
        n = c.size
        assert n == s or (top_votes(c) >= k > top_votes(c[:-1])), (p, c)
        solve = dec.filter((pl.col("problem_id") == p) & (pl.col("stage") == "solve")).sort("round")
        assert solve["round"].to_list() == list(range(solve.height))
        assert solve["solutions_so_far"].to_list() == list(range(min(k, s), n + 1)), (p, solve)
        assert solve["decision"].to_list() == ["continue"] * (solve.height - 1) + ["stop"]
        assert solve["reason"][-1] == ("agree" if top_votes(c) >= k else "cap")
        assert solve["top_votes"].to_list() == [top_votes(c[:m]) for m in solve["solutions_so_far"]]
    return classes


@pytest.fixture(scope="module")
def compared(toy_fixed_run, toy_mixed_problems, tmp_path_factory):
    """A fixed run (S=8, V=1) and a stop-when-agree + verify-when-split run of the same problems. The fixed
    run is a copy of the session's shared toy run (conftest: the very config compare runs as ``fixed``), so
    compare resumes it, finds it finished and starts no engine for it."""
    assert (S, V) == (TOY_S, TOY_V)
    out = tmp_path_factory.mktemp("adaptive")
    copy_run(toy_fixed_run, out)
    result = compare(out, str(toy_mixed_problems), None, S, K, 1, verifications=V, policy="stop_and_verify_split")
    last = json.loads((out / "fixed" / "manifest.json").read_text())["invocations"][-1]
    assert last["status"] == "finished" and last["stages"] == {}  # resumed as finished: nothing regenerated
    print(json.dumps(result, indent=1))
    return out, result


def test_adaptive_config_is_validated_and_off_by_default():
    assert not compose([]).adaptive.enabled and "adaptive" not in compose([]).identity()
    cfg = compose(["adaptive=stop_when_agree"])
    assert cfg.adaptive.stop_when_agree and cfg.identity()["adaptive"]["k"] == 3
    for override, key in (("adaptive.k=0", "adaptive.k"), ("adaptive.round_size=0", "adaptive.round_size"),
                          ("adaptive.agreement=0", "adaptive.agreement"), ("cluster.mode=streaming", "cluster.mode")):
        with pytest.raises(ConfigError, match=key):
            compose(["adaptive=stop_and_verify_split", override])


@pytest.mark.slow
def test_early_stopping_reaches_the_fixed_success_with_fewer_measured_tokens(compared):
    out, r = compared
    fixed, adaptive = r["fixed"], r["adaptive"]
    assert fixed["solutions"] == S and K <= adaptive["solutions"] < S
    assert fixed["success_lo"] <= adaptive["success"] <= fixed["success_hi"]
    assert adaptive["generated_tokens"] < fixed["generated_tokens"] and r["tokens_ratio"] < 1
    assert adaptive["verify_tokens"] < fixed["verify_tokens"]  # unanimous problems were not verified
    manifest = json.loads((out / "stop_and_verify_split" / "manifest.json").read_text())
    assert manifest["adaptive"]["solutions"] == round(adaptive["solutions"] * 12)


@pytest.mark.slow
def test_decisions_table_matches_the_solutions_and_verifications(compared):
    out, _ = compared
    run_dir = out / "stop_and_verify_split"
    classes = _assert_stopped_at_first_agreement(run_dir, K, S)
    dec, ver = _table(run_dir, "decisions"), _table(run_dir, "verifications")
    verify = dec.filter(pl.col("stage") == "verify")
    assert verify.height == len(classes)
    verified = ver.group_by("problem_id", "solution_idx").len()
    assert (verified["len"] == V).all()
    for p, decision, seen in verify.select("problem_id", "decision", "solutions_so_far").iter_rows():
        unanimous = top_votes(classes[p]) == classes[p].size
        assert seen == classes[p].size and decision == ("skip" if unanimous else "verify")
        assert verified.filter(pl.col("problem_id") == p).height == (0 if unanimous else seen)
    assert 0 < verify.filter(pl.col("decision") == "skip").height < verify.height


@pytest.mark.slow
def test_a_policy_that_never_stops_reproduces_the_fixed_runs_keys(compared, toy_mixed_problems):
    out, _ = compared
    cfg = compose([f"dataset.file={toy_mixed_problems}", f"output_dir={out}", "run_id=never", "wandb.enabled=false",
                   f"budget.solutions={S}", f"budget.verifications={V}", "adaptive=stop_and_verify_split",
                   f"adaptive.k={S + 1}", "adaptive.agreement=1.5"])
    never = run(cfg).run_dir
    for name in ("solutions", "verifications"):
        keys = [k for k in KEYS[name] if k != "run_id"]
        assert _table(never, name).select(keys).sort(keys).equals(_table(out / "fixed", name).select(keys).sort(keys))
    dec = _table(never, "decisions")
    assert set(dec.select("stage", "decision", "reason", "solutions_so_far").iter_rows()) == {
        ("solve", "stop", "cap", S), ("verify", "verify", "split", S)}
    assert dec.height == 2 * 12


@pytest.mark.slow
def test_driver_killed_mid_adaptive_run_resumes_exactly_once(ray_local, toy_mixed_problems, tmp_path):
    args = [sys.executable, "-m", "pipeline.run", f"dataset.file={toy_mixed_problems}", f"output_dir={tmp_path}",
            "run_id=killed", "wandb.enabled=false", f"budget.solutions={S}", "budget.verifications=0",
            "adaptive=stop_when_agree", "cluster.batch_size=2", "cluster.commit_interval_s=0",
            f"cluster.address={ray_local}"]
    env = dict(os.environ, SOLVE_VERIFY_FAULT="after_commit_solutions:2")
    killed = subprocess.run(args, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-3000:]
    run_dir = tmp_path / "killed"
    assert 0 < _table(run_dir, "solutions")["problem_id"].n_unique() < 12
    assert not (run_dir / "decisions").exists() or not list((run_dir / "decisions").glob("part-*"))
    run(compose(args[3:-1]))  # the rerun, in this process (the session's Ray)
    classes = _assert_stopped_at_first_agreement(run_dir, K, S)
    assert len(classes) == 12
