"""The nightly runner end to end over simulated nights: real analysis, history, regression rule, report.

Only the pipeline stage is replaced, by :class:`SyntheticPipeline` (schema-exact tables from
analysis.synthetic, a new sampling seed each night), so five nights run in about half a minute; the real tiny
pipeline under the nightly runner is in test_jobs_pipeline_e2e.py.
"""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from analysis.config import AnalysisConfig
from analysis.run import run as analyse
from analysis.synthetic import SyntheticSpec, write_synthetic_run
from jobs import nightly
from jobs.history import read
from jobs.storage import resolve


class SyntheticPipeline:
    """Executor whose pipeline stage writes a synthetic run; the analysis stage is the real one (in process).

    ``broken`` injects a regression: the solver answers half of the problems wrong (every sample of
    those problems gets a new wrong answer class), as a broken prompt or checkpoint would.
    """

    def __init__(self, seed: int, broken: bool = False) -> None:
        self.seed, self.broken, self.ran = seed, broken, []

    def run_all(self, specs, timeout_s):
        for entry, spec in specs:
            run_dir = Path(spec.run_dir)
            write_synthetic_run(run_dir, SyntheticSpec(problems=150, solutions=8, verifications=4, seed=self.seed,
                                                       run_id=spec.run_id))
            if self.broken:
                _break_half_the_problems(run_dir)
            analyse(AnalysisConfig(run_dir=str(run_dir), bootstrap=100, plots=False))
            self.ran.append(spec.run_id)
        return {}


def _break_half_the_problems(run_dir: Path) -> None:
    for part in (run_dir / "solutions").glob("*.parquet"):
        table = pl.from_arrow(pq.read_table(part))
        broken = pl.col("problem_id").str.slice(-1).cast(pl.Int32) % 2 == 0
        table = table.with_columns(
            is_correct=pl.when(broken).then(False).otherwise(pl.col("is_correct")),
            answer_class=pl.when(broken).then(99).otherwise(pl.col("answer_class")),
            extracted_answer=pl.when(broken).then(pl.lit("wrong")).otherwise(pl.col("extracted_answer")),
            grade_status=pl.when(broken).then(pl.lit("incorrect")).otherwise(pl.col("grade_status")),
        )
        pq.write_table(table.to_arrow().cast(pq.read_schema(part)), part)


@pytest.fixture
def cfg(tmp_path):
    return nightly.load_config([f"output_root={tmp_path}/runs", f"history={tmp_path}/history",
                                f"report_dir={tmp_path}/reports"], config_name="nightly/tiny")


def _dates(n: int) -> list[str]:
    return [(dt.date(2026, 3, 1) + dt.timedelta(days=i)).isoformat() for i in range(n)]


def test_nights_unchanged_then_injected_regression(cfg, tmp_path):
    dates = _dates(5)
    outcomes = {}
    for i, date in enumerate(dates):
        executor = SyntheticPipeline(seed=i, broken=(i == 4))
        outcomes[date] = nightly.run_night(cfg, date, executor)
        assert executor.ran == [f"nightly-{date}-toy-toy-s4_v2"]

    # First three nights: not enough history to judge; the fourth is unchanged (new seed): not flagged.
    for date in dates[:4]:
        assert outcomes[date].exit_code == 0, (tmp_path / "reports" / date / "report.md").read_text()
    findings = pl.read_csv(tmp_path / "reports" / dates[3] / "findings.csv")
    assert set(findings["status"]) == {"ok"}
    assert (findings["value"] != findings["baseline"]).all()  # a genuinely different sample, not a copy
    assert set(pl.read_csv(tmp_path / "reports" / dates[0] / "findings.csv")["status"]) == {"insufficient_history"}

    # Fifth night: the injected regression is flagged and the runner fails.
    last = outcomes[dates[4]]
    assert last.exit_code == nightly.EXIT_REGRESSION and last.n_regressions >= 3
    flagged = pl.read_csv(tmp_path / "reports" / dates[4] / "findings.csv").filter(pl.col("status") == "regression")
    assert {"pass@1", "maj@8"} <= set(flagged["metric"])
    assert (flagged["value"] < flagged["baseline"] - flagged["tolerance"]).all()
    report = (tmp_path / "reports" / dates[4] / "report.md").read_text()
    assert report.startswith(f"# Nightly benchmark report — {dates[4]}\n\n**REGRESSION**")
    assert (tmp_path / "reports" / dates[4] / "plots" / "pass_1.png").stat().st_size > 1000

    history = read(resolve(cfg.history))
    assert history["date"].n_unique() == 5
    # synthetic manifests carry no commit: the runner's checkout is recorded
    assert history["git_commit"].str.contains(r"^[0-9a-f]{40}$").all()
    per_night = history.group_by("date").len()["len"]
    assert per_night.min() == per_night.max() >= 5  # the same metrics every night
    parts = {p.parent.relative_to(tmp_path / "history").as_posix() for p in (tmp_path / "history").rglob("*.parquet")}
    assert parts == {f"date={d}/model=toy/dataset=toy" for d in dates}


def test_rerunning_a_night_skips_finished_runs_and_does_not_double_rows(cfg):
    date = _dates(1)[0]
    nightly.run_night(cfg, date, SyntheticPipeline(seed=0))
    again = SyntheticPipeline(seed=0)
    nightly.run_night(cfg, date, again)
    assert again.ran == []  # its analysis curves exist
    history = read(resolve(cfg.history))
    assert history.height == history.unique(["date", "model", "dataset", "budget", "metric"]).height


class FailingPipeline:
    def run_all(self, specs, timeout_s):
        return {entry: "exit 1: engine died" for entry, _ in specs}


def test_a_failed_run_fails_the_night_and_is_reported(cfg, tmp_path):
    date = _dates(1)[0]
    outcome = nightly.run_night(cfg, date, FailingPipeline())
    assert outcome.exit_code == nightly.EXIT_REGRESSION and len(outcome.failed_runs) == 1
    report = (tmp_path / "reports" / date / "report.md").read_text()
    assert "| toy | toy | s4_v2 | exit 1: engine died |" in report


def test_metric_names_from_curves():
    curves = pl.DataFrame({
        "label": ["oracle", "oracle", "majority", "majority", "best_of_n[g:p_yes]", "best_of_n[g:p_yes]"],
        "S": [1, 8, 1, 8, 8, 8], "V": [0, 0, 0, 0, 2, 4],
        "success": [0.4, 0.8, 0.4, 0.6, 0.65, 0.7], "ci_lo": [0.3] * 6, "ci_hi": [0.9] * 6,
    })
    got = nightly.metrics_from_curves(curves)
    assert dict(zip(got["metric"], got["value"])) == {"best_of_n[g:p_yes]@8_v4": 0.7, "maj@8": 0.6, "pass@1": 0.4,
                                                      "pass@8": 0.8}
    with pytest.raises(ValueError, match="ci_lo"):
        nightly.metrics_from_curves(curves.drop("ci_lo"))


def test_cli_rejects_bad_date_and_bad_spec(capsys):
    assert nightly.main(["--local", "--date", "2026-02-30", "--config-name", "nightly/tiny"]) == nightly.EXIT_USAGE
    assert "2026-02-30" in capsys.readouterr().err
    assert nightly.main(["--local", "--config-name", "nightly/tiny", "regression.min_history=1"]) == nightly.EXIT_USAGE
    assert "min_history" in capsys.readouterr().err


def test_specs_compose_and_every_run_is_a_valid_pipeline_config():
    from pipeline.config import compose

    prod = nightly.load_config([], "nightly")
    assert len(nightly.entries(prod)) == len(prod.models) * len(prod.datasets) * len(prod.budgets) == 4
    tiny = nightly.load_config([], "nightly/tiny")
    (entry,) = nightly.entries(tiny)
    assert entry.overrides[-1] == "cluster=local"
    for spec in (prod, tiny):
        for e in nightly.entries(spec):
            run = compose([*e.overrides, "run_id=x"])  # the pipeline's own typed config and checks
            assert run.dataset.name == e.dataset and run.budget.solutions > 0


@pytest.mark.slow
def test_cli_local_night_with_the_tiny_pipeline(tmp_path):
    """`python -m jobs.nightly --local --config-name nightly/tiny` as jobs/README.md shows it, on a random-weight
    tiny Llama (the real pipeline and analysis); a canary token in the environment appears in no output."""
    from pipeline.testing import build_tiny_llama
    from toyworld.task import make_problem_set, write_jsonl

    model = build_tiny_llama(tmp_path / "model")
    write_jsonl(make_problem_set(2, seed=1)[:4], tmp_path / "toy.jsonl")
    overrides = [f"solver.path={model}", f"verifier.path={model}", f"dataset.file={tmp_path / 'toy.jsonl'}",
                 "cluster=local", "budget.solutions=2", "budget.verifications=1"]
    token = "canary-cli-0123456789abcdef"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"RAY_AUTH_TOKEN": token}
    out = tmp_path / "nightly"
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.nightly", "--local", "--config-name", "nightly/tiny", "--date", "2026-05-01",
         f"output_root={out}/runs", f"history={out}/history", f"report_dir={out}/reports",
         # plots off: analysis' log-scaled gain plot fails when every success rate is 0 (random weights).
         'analysis_overrides=["bootstrap=50","plots=false"]',
         "pipeline_overrides=[" + ",".join(f'"{o}"' for o in overrides) + "]"],
        cwd=nightly.CONF_DIR.parent, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = out / "reports" / "2026-05-01" / "report.md"
    assert proc.stdout.strip().endswith(f"OK: 0 flagged series, 0 failed runs; report: {report}")
    assert (out / "runs" / "nightly-2026-05-01-toy-toy-s4_v2" / "analysis" / "curves.parquet").exists()
    assert {"pass@1", "maj@2"} <= set(read(resolve(str(out / "history")))["metric"])
    leaks = [p for p in out.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]
    assert leaks == [] and token not in proc.stdout + proc.stderr
