"""Working with stored runs: extending a finished run in place (revisions), re-scoring, dry-run estimates.

Real Ray (the session's ``ray_local``), real vLLM on the tiny random Llama, real Parquet. One small base
run (5 problems, S=2, V=1) is extended step by step; each step checks that earlier parts stay
byte-identical and that the new rows appear exactly once.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from conftest import pipeline_overrides
from pipeline.config import PROJECT_ROOT, compose
from pipeline.manifest import ConfigMismatch
from pipeline.run import run
from pipeline.schema import KEYS

pytestmark = pytest.mark.slow
PROBLEMS, S0, V0 = 5, 2, 1


def _table(run_dir: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(sorted((run_dir / name).glob("part-*.parquet")))


def _hashes(run_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in run_dir.glob("*/part-*.parquet")}


def _assert_kept(before: dict[str, str], run_dir: Path) -> None:
    now = _hashes(run_dir)
    for name, digest in before.items():
        assert now.get(name) == digest, f"{name} changed or vanished"


def _no_duplicates(run_dir: Path) -> None:
    for name in ("problems", "solutions", "verifications"):
        df = _table(run_dir, name)
        assert df.select(KEYS[name]).is_duplicated().sum() == 0, f"duplicate keys in {name}"


@pytest.fixture(scope="module")
def stored(ray_local, tiny_model, toy_problems, tmp_path_factory):
    """The base run's directory and a function giving the overrides of a run (or extension) of it."""
    out = tmp_path_factory.mktemp("stored")

    def overrides(*extra: str, run_id: str = "ext") -> list[str]:
        return pipeline_overrides(tiny_model, toy_problems, out, f"run_id={run_id}", f"dataset.limit={PROBLEMS}",
                                  f"budget.solutions={S0}", f"budget.verifications={V0}", *extra)

    run(compose(overrides()))
    return out / "ext", overrides


def test_extension_adds_a_verifier_and_more_solutions_for_a_subset_exactly_once(stored, tmp_path):
    run_dir, overrides = stored
    before = _hashes(run_dir)
    sols0 = _table(run_dir, "solutions")
    ids = sorted(sols0["problem_id"].unique().to_list())
    subset = ids[:2]
    (tmp_path / "ids.txt").write_text("# still rising\n" + "\n".join(subset) + "\n")

    # revision 1: S 2 -> 3 on a subset (from a file), plus a second verifier over those problems' solutions
    ext = compose(overrides("budget.solutions=3", "verification.name=second-genrm", f"subset.file={tmp_path / 'ids.txt'}"))
    result = run(ext)
    _assert_kept(before, run_dir)
    _no_duplicates(run_dir)
    sols, vers = _table(run_dir, "solutions"), _table(run_dir, "verifications")
    per_problem = dict(sols.group_by("problem_id").len().iter_rows())
    assert per_problem == {p: 3 if p in subset else S0 for p in ids}
    new = sols.filter(pl.col("revision") == 1)
    assert sorted(new["problem_id"].to_list()) == subset and (new["solution_idx"] == 2).all()
    assert (new["seed"] == ext.budget.seed + 1).all() and (sols.filter(pl.col("revision") == 0).height == len(ids) * S0)
    # answer classes continue the earlier ones: an answer string has one class within a problem
    answered = sols.filter(pl.col("extracted_answer").is_not_null())
    assert answered.group_by("problem_id", "extracted_answer").agg(pl.col("answer_class").n_unique())["answer_class"].max() in (None, 1)
    second = vers.filter(pl.col("verifier") == "second-genrm")
    assert second.height == 3 * len(subset) and (second["revision"] == 1).all()
    first = vers.filter(pl.col("verifier") == "toy-genrm")
    assert first.height == len(ids) * S0 * V0 and (first["revision"] == 0).all()
    assert result.summary.solutions == sols.height

    m = json.loads((run_dir / "manifest.json").read_text())
    assert [r["revision"] for r in m["revisions"]] == [0, 1]
    assert m["revisions"][1]["subset"]["problems"] == 2
    assert "budget.solutions: 2 -> 3" in m["revisions"][1]["changes"]
    assert [inv["revision"] for inv in m["invocations"]] == [0, 1]

    # the same command again resumes revision 1: nothing to do, nothing written
    before = _hashes(run_dir)
    again = run(ext)
    assert again.stages == {} and _hashes(run_dir) == before
    m = json.loads((run_dir / "manifest.json").read_text())
    assert len(m["revisions"]) == 2 and m["invocations"][-1]["revision"] == 1


def test_extension_killed_mid_way_resumes_exactly_once(stored, ray_local, tmp_path):
    """Revision: V 1 -> 2 for the original verifier on every problem. The driver is SIGKILLed after its
    first verifications commit; the rerun finishes the revision without redoing committed units."""
    run_dir, overrides = stored
    before = _hashes(run_dir)
    rev = len(json.loads((run_dir / "manifest.json").read_text())["revisions"])  # the revision this adds
    args = overrides("budget.verifications=2", "cluster.batch_size=2", "cluster.max_rows_per_part=1",
                     "cluster.commit_interval_s=0", f"cluster.address={ray_local}")
    log = tmp_path / "log.txt"
    with log.open("w") as fh:
        proc = subprocess.run([sys.executable, "-m", "pipeline.run", *args], cwd=PROJECT_ROOT, stdout=fh,
                              stderr=subprocess.STDOUT, timeout=300,
                              env={**os.environ, "SOLVE_VERIFY_FAULT": "after_commit_verifications:1"})
    assert proc.returncode == -signal.SIGKILL, log.read_text()[-3000:]
    _assert_kept(before, run_dir)
    killed = _hashes(run_dir)
    result = run(compose(args))
    _assert_kept(killed, run_dir)
    _no_duplicates(run_dir)
    vers = _table(run_dir, "verifications").filter(pl.col("verifier") == "toy-genrm")
    sols = _table(run_dir, "solutions")
    # every solution with idx < S=2 has 2 verifications; the solution_idx 2 rows of revision 1 have none
    assert vers.height == sols.filter(pl.col("solution_idx") < S0).height * 2
    assert sorted(vers.group_by("problem_id", "solution_idx").len()["len"].unique().to_list()) == [2]
    assert (vers.filter(pl.col("verification_idx") == 1)["revision"] == rev).all()
    m = json.loads((run_dir / "manifest.json").read_text())
    assert len(m["revisions"]) == rev + 1
    assert [inv["revision"] for inv in m["invocations"]][-2:] == [rev, rev]
    assert 0 < result.stages["verify"].units < sols.filter(pl.col("solution_idx") < S0).height


def test_incompatible_changes_are_refused_with_the_diff(stored):
    run_dir, overrides = stored
    before = _hashes(run_dir)
    with pytest.raises(ConfigMismatch) as e:
        run(compose(overrides("budget.solutions=4", "budget.solver.temperature=0.5")))
    assert "budget.solver.temperature: 1.0 -> 0.5" in str(e.value) and "budget.solutions: " not in str(e.value)
    # an existing verifier's name with other settings would mix its rows
    with pytest.raises(ConfigMismatch) as e:
        run(compose(overrides("budget.verifier.max_tokens=8")))
    assert "verifier 'toy-genrm'" in str(e.value) and "budget.verifier.max_tokens: 24 -> 8" in str(e.value)
    assert _hashes(run_dir) == before


def test_regrade_changes_only_grade_columns_and_keeps_the_old_grades(stored, tmp_path):
    import shutil

    from pipeline.graders import get_grader
    from pipeline.rescore import GRADE_COLUMNS, RescoreConfig, rescore

    run_dir = tmp_path / "copy"
    shutil.copytree(stored[0], run_dir)
    before = _table(run_dir, "solutions")
    verifications = _hashes(run_dir)
    (record,) = rescore(RescoreConfig(run_dir=str(run_dir), grader="gsm8k"))
    after = _table(run_dir, "solutions")
    others = [c for c in before.columns if c not in GRADE_COLUMNS]
    assert after.select(others).equals(before.select(others))  # row order kept too: parts rewritten in place
    assert (after["grader_version"] == get_grader("gsm8k").version).all()
    assert record["rows_changed"] == after.height and record["parts_rewritten"] == len(list(run_dir.glob("solutions/part-*")))
    for name, digest in verifications.items():
        if not name.startswith("solutions/"):
            assert _hashes(run_dir)[name] == digest
    kept = _table(run_dir, "grades")
    assert kept.height == before.height and (kept["grader_version"] == get_grader("toy").version).all()
    assert kept.select("problem_id", "solution_idx", *GRADE_COLUMNS).sort("problem_id", "solution_idx").equals(
        before.select("problem_id", "solution_idx", *GRADE_COLUMNS).sort("problem_id", "solution_idx"))
    # again: nothing changes; back to the run's own grader without keeping: the pipeline's grades exactly
    # (answer classes included, across the rows of both revisions)
    hashes = _hashes(run_dir)
    assert rescore(RescoreConfig(run_dir=str(run_dir), grader="gsm8k"))[0]["parts_rewritten"] == 0
    assert _hashes(run_dir) == hashes
    rescore(RescoreConfig(run_dir=str(run_dir), grader="toy", replace=True))
    assert _table(run_dir, "solutions").equals(before) and _table(run_dir, "grades").height == before.height
    m = json.loads((run_dir / "manifest.json").read_text())
    assert [r["grader"] for r in m["rescores"]] == ["gsm8k", "gsm8k", "toy"]
    # the re-parse with the run's own parser reproduces the recorded verdicts
    (parsed,) = rescore(RescoreConfig(run_dir=str(run_dir), verifier="toy-genrm", parser_prompt="toy_genrm_v1"))
    assert parsed["rows_changed"] == 0


def _measured_tokens(run_dir: Path, revision: int) -> float:
    """Prompt (once per request) + generated + verdict-cue tokens of one revision's rows."""
    total = 0
    for name, group in (("solutions", ["problem_id"]), ("verifications", ["problem_id", "solution_idx"])):
        rows = _table(run_dir, name).filter(pl.col("revision") == revision)
        total += rows.group_by(group).agg(pl.col("prompt_tokens").first())["prompt_tokens"].sum()
        total += rows["completion_tokens"].sum()
    m = json.loads((run_dir / "manifest.json").read_text())
    return total + sum(inv["stages"].get("verify", {}).get("extra_tokens", 0)
                       for inv in m["invocations"] if inv["revision"] == revision)


def test_dry_run_estimate_is_within_20_percent_of_the_run_it_predicts(stored):
    """The base run's config, dry-run into a fresh run id (a pilot on 3 problems at S=2, V=1), against
    the tokens the base run (revision 0) recorded."""
    from pipeline.estimate import estimate, format_estimate

    run_dir, overrides = stored
    cfg = compose(overrides("dry_run.enabled=true", "dry_run.pilot_problems=3", run_id="ext-dry"))
    est = estimate(cfg)
    print(format_estimate(cfg, est))
    assert not cfg.run_dir.exists()  # nothing written
    assert est.problems == PROBLEMS and est.solve.generations == PROBLEMS * S0
    assert est.verify.generations == PROBLEMS * S0 * V0 and est.solve.flops > 0 and est.verify.gpu_hours > 0
    measured = _measured_tokens(run_dir, 0)
    assert abs(est.tokens - measured) <= 0.2 * measured, (est.tokens, measured)


def test_dry_run_of_an_extension_costs_only_what_it_adds(stored):
    from pipeline.estimate import estimate

    run_dir, overrides = stored
    before = _hashes(run_dir)
    sols = _table(run_dir, "solutions")
    cfg = compose(overrides("budget.solutions=4", "dry_run.enabled=true", f"dry_run.from_run={run_dir}"))
    est = estimate(cfg)
    missing = sum(4 - n for n in sols.group_by("problem_id").len()["len"].to_list())
    assert est.solve.generations == missing and est.per_generation.source == str(run_dir)
    have = _table(run_dir, "verifications").filter(pl.col("verifier") == "toy-genrm").group_by(
        "problem_id", "solution_idx").len()
    short = sols.join(have, on=["problem_id", "solution_idx"], how="left").select(
        (V0 - pl.col("len").cast(pl.Int64).fill_null(0)).clip(0).sum()).item()
    assert est.verify.generations == missing * V0 + short
    assert _hashes(run_dir) == before and "2 -> 4" not in (run_dir / "manifest.json").read_text()
    with pytest.raises(ConfigMismatch):  # refused as the run would refuse it
        estimate(compose(overrides("budget.seed=3", "dry_run.enabled=true", f"dry_run.from_run={run_dir}")))
