"""Nightly benchmarks: run every model × dataset × budget of a spec, append the results to the history,
and write a regression report. Exits 1 when a metric regressed or a run failed, 0 otherwise.

    # here, one run after the other: the embedded toy model on CPU
    python -m jobs.nightly --local --config-name nightly/tiny
    # a simulated night (injected date) with a Hydra override of the spec
    python -m jobs.nightly --local --config-name nightly/tiny --date 2026-01-05 regression.k=4
    # submit the runs as Ray jobs to $RAY_ADDRESS (RAY_AUTH_TOKEN in the environment)
    python -m jobs.nightly --config-name nightly/tiny --date 2026-01-06 'pipeline_overrides=["cluster=ray_cluster","cluster.replica_num_gpus=0"]'

conf/nightly.yaml is the GPU spec (run it with ``--address`` on a cluster; see jobs/README.md).

Each run is ``pipeline.run`` followed by ``analysis.run`` on its run directory
``<output_root>/nightly-<date>-<model>-<dataset>-<budget>`` (which must be readable from here: a shared
disk or object store when the runs go to a cluster). The runner then reads the analysis curves
(:func:`read_metrics`: pass@1, and each method at the run's largest S and V), appends one history row
per metric (:mod:`jobs.history`), judges tonight against past nights (:mod:`jobs.regression`) and
writes ``<report_dir>/<date>/report.md`` (:mod:`jobs.report`). A run whose analysis curves already
exist is not run again, so re-running a night after a crash only redoes what is missing.
"""
from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import re
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

import polars as pl
import pyarrow.parquet as pq
from omegaconf import OmegaConf

from jobs import history as hist
from jobs import submit
from jobs.regression import RegressionRule, evaluate
from jobs.report import FailedRun, write_report
from jobs.storage import Location, resolve

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
CURVES_FILE = "analysis/curves.parquet"
EXIT_OK, EXIT_REGRESSION, EXIT_USAGE = 0, 1, 2


# ---------------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------------
@dataclass
class RegressionConfig:
    min_history: int = 3
    window: int = 14
    k: float = 3.0
    min_delta: float = 0.02
    ci_factor: float = 1.0
    lower_is_better: list[str] = field(default_factory=list)


@dataclass
class NightlyConfig:
    """The spec: each of ``models``, ``datasets``, ``budgets`` maps a name to pipeline overrides."""

    models: dict[str, list[str]] = field(default_factory=dict)
    datasets: dict[str, list[str]] = field(default_factory=dict)
    budgets: dict[str, list[str]] = field(default_factory=dict)
    pipeline_overrides: list[str] = field(default_factory=list)
    analysis_overrides: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    output_root: str = "runs/nightly/runs"
    history: str = "runs/nightly/history"
    report_dir: str = "runs/nightly/reports"
    timeout_s: float = 6 * 3600.0
    regression: RegressionConfig = field(default_factory=RegressionConfig)

    def rule(self) -> RegressionRule:
        r = self.regression
        return RegressionRule(r.min_history, r.window, r.k, r.min_delta, r.ci_factor, tuple(r.lower_is_better))


def load_config(overrides: Sequence[str] = (), config_name: str = "nightly",
                config_dir: Path = CONF_DIR) -> NightlyConfig:
    """Compose ``<config_dir>/<config_name>.yaml`` with Hydra overrides into a checked NightlyConfig."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base=None):
            composed = compose(config_name=config_name, overrides=list(overrides))
    except HydraException as err:
        raise ValueError(f"{config_dir}/{config_name}.yaml: {err}") from err
    OmegaConf.set_struct(composed, False)
    try:
        cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(NightlyConfig), composed))
    except Exception as err:  # omegaconf's errors name the key; add the file
        raise ValueError(f"{config_dir}/{config_name}.yaml: {err}") from err
    for group in ("models", "datasets", "budgets"):
        if not getattr(cfg, group):
            raise ValueError(f"{config_dir}/{config_name}.yaml: {group!r} is empty; the spec needs at least one")
        for name in getattr(cfg, group):
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise ValueError(f"{config_dir}/{config_name}.yaml: {group}.{name}: names may use letters, "
                                 "digits, '_', '.', '-' (they become run ids and partition values)")
    cfg.rule()  # validates the regression parameters now, not after a night of runs
    return cfg


@dataclass(frozen=True)
class Entry:
    """One run of the spec: a model × dataset × budget combination and its pipeline overrides."""

    model: str
    dataset: str
    budget: str
    overrides: tuple[str, ...]

    def run_id(self, date: str) -> str:
        return f"nightly-{date}-{self.model}-{self.dataset}-{self.budget}"


def entries(cfg: NightlyConfig) -> list[Entry]:
    """The cartesian product models × datasets × budgets, in spec order."""
    return [Entry(m, d, b, tuple(cfg.models[m] + cfg.datasets[d] + cfg.budgets[b] + cfg.pipeline_overrides))
            for m, d, b in itertools.product(cfg.models, cfg.datasets, cfg.budgets)]


# ---------------------------------------------------------------------------------------------------
# Running the jobs
# ---------------------------------------------------------------------------------------------------
class Executor(Protocol):
    def run_all(self, specs: list[tuple[Entry, submit.JobSpec]], timeout_s: float) -> dict[Entry, str]:
        """Run every spec to completion; return the failure reason of each entry that failed."""


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class LocalExecutor:
    """Runs each job's entrypoint here, one after the other, with this interpreter."""

    def __init__(self, log_dir: Location) -> None:
        self.log_dir = log_dir

    def run_all(self, specs, timeout_s):
        failures = {}
        for entry, spec in specs:
            with tempfile.TemporaryFile("w+") as log:
                try:
                    proc = subprocess.run(["bash", "-c", submit.build_entrypoint(spec)], cwd=spec.working_dir,
                                          stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s)
                    code = proc.returncode
                except subprocess.TimeoutExpired:
                    code = f"timeout after {timeout_s:.0f} s"
                log.seek(0)
                text = log.read()
            self.log_dir.join(f"{spec.run_id}.log").write_text(text)
            if code != 0:
                failures[entry] = f"exit {code}: {_tail(text, 5)}"
        return failures


class RayJobsExecutor:
    """Submits every job to a Ray cluster at once (the cluster schedules them), then waits for all."""

    def __init__(self, address: str | None, token_env: str, log_dir: Location) -> None:
        self.client = submit.connect(address, token_env)
        self.log_dir = log_dir

    def _start(self, spec: submit.JobSpec) -> str:
        """Submit ``spec``. Its job id is fixed by the run id, so a job of the same night may exist: one
        still running (another runner) is waited for; after one that ended (a re-run after a failure) the
        run is submitted again under ``<job id>-retry-<suffix>`` (the pipeline resumes its run directory)."""
        try:
            state = submit.status(self.client, spec.submission_id)
        except RuntimeError as err:
            if "404" not in str(err):
                raise
            return submit.submit(self.client, spec)
        if state in submit.TERMINAL:
            return submit.submit(self.client, spec, submission_id=f"{spec.submission_id}-retry-{uuid.uuid4().hex[:6]}")
        return spec.submission_id

    def run_all(self, specs, timeout_s):
        job_ids = {entry: self._start(spec) for entry, spec in specs}
        failures = {}
        for (entry, spec), job_id in zip(specs, job_ids.values()):
            try:
                state = submit.wait(self.client, job_id, timeout_s)
            except TimeoutError as err:
                self.client.stop_job(job_id)
                state = str(err)
            logs = self.client.get_job_logs(job_id)
            self.log_dir.join(f"{spec.run_id}.log").write_text(logs)
            if state != "SUCCEEDED":
                failures[entry] = f"job {job_id} {state}: {_tail(logs, 5)}"
        return failures


# ---------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------
def metric_name(label: str, s: int, v: int) -> str:
    """History name of a curve point: ``pass@S`` (oracle), ``maj@S`` (majority), else ``<label>@S`` plus
    ``_vV`` when verifications are used, e.g. ``best_of_n[toy-genrm:p_yes]@4_v2``."""
    base = {"oracle": "pass", "majority": "maj"}.get(label, label)
    return f"{base}@{s}" + (f"_v{v}" if v else "")


def metrics_from_curves(curves: pl.DataFrame) -> pl.DataFrame:
    """The points a night tracks from the analysis curves (columns label, S, V, success, ci_lo, ci_hi):
    pass@1, and every method at its largest S with its largest V. Returns metric, value, ci_low, ci_high."""
    missing = {"label", "S", "V", "success", "ci_lo", "ci_hi"} - set(curves.columns)
    if missing:
        raise ValueError(f"analysis curves lack columns {sorted(missing)}")
    top = curves.group_by("label").agg(pl.col("S").max().alias("s_max"), pl.col("V").max().alias("v_max"))
    picked = (curves.join(top, on="label")
              .filter((pl.col("S") == pl.col("s_max")) | ((pl.col("label") == "oracle") & (pl.col("S") == 1)))
              .filter(pl.col("V") == pl.col("v_max"))
              .unique(["label", "S", "V"]).sort(["label", "S"]))
    return pl.DataFrame({
        "metric": [metric_name(r["label"], r["S"], r["V"]) for r in picked.iter_rows(named=True)],
        "value": picked["success"], "ci_low": picked["ci_lo"], "ci_high": picked["ci_hi"],
    })


def read_metrics(run_dir: Location, entry: Entry, date: str, metrics: Sequence[str]) -> list[hist.MetricRecord]:
    """History records from the run's analysis curves (see :func:`metrics_from_curves`), keeping only
    ``metrics`` when given. Raises naming the file when it is unreadable or a requested metric is absent."""
    curves_loc = run_dir.join(CURVES_FILE)
    try:
        with curves_loc.fs.open_input_file(curves_loc.path) as f:
            table = metrics_from_curves(pl.from_arrow(pq.read_table(f)))
    except FileNotFoundError as err:
        raise ValueError(f"{curves_loc.display}: not found (did the analysis run?)") from err
    except ValueError as err:
        raise ValueError(f"{curves_loc.display}: {err}") from err
    if metrics:
        absent = sorted(set(metrics) - set(table["metric"]))
        if absent:
            raise ValueError(f"{curves_loc.display}: metrics {absent} requested by the spec are not there; "
                             f"available: {table['metric'].to_list()}")
        table = table.filter(pl.col("metric").is_in(list(metrics)))
    commit = _run_commit(run_dir) or _git_commit()
    return [
        hist.MetricRecord(date=date, model=entry.model, dataset=entry.dataset, budget=entry.budget,
                          metric=row["metric"], value=_finite_or_none(row["value"]), ci_low=row["ci_low"],
                          ci_high=row["ci_high"], run_id=entry.run_id(date), git_commit=commit)
        for row in table.iter_rows(named=True)
    ]


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or x != x else x


def _run_commit(run_dir: Location) -> str | None:
    """The git commit the pipeline recorded in the run's manifest (absent in Ray jobs, whose uploaded
    working_dir has no .git; then the runner's own checkout is used)."""
    manifest = run_dir.join("manifest.json")
    if not manifest.exists():
        return None
    try:
        return json.loads(manifest.read_text()).get("git_commit")
    except ValueError:
        return None


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=CONF_DIR.parent, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


@dataclass(frozen=True)
class NightOutcome:
    report: Location
    n_regressions: int
    failed_runs: tuple[FailedRun, ...]

    @property
    def exit_code(self) -> int:
        return EXIT_REGRESSION if self.n_regressions or self.failed_runs else EXIT_OK


def run_night(cfg: NightlyConfig, date: str, executor: Executor, python: str = "python") -> NightOutcome:
    """Run the spec for ``date`` (those runs without analysis curves yet), record, judge, report."""
    output_root = resolve(cfg.output_root)
    specs = [(e, submit.JobSpec(overrides=e.overrides, run_id=e.run_id(date), output_dir=output_root.display,
                                python=python, analyze=True,
                                analysis_overrides=tuple(cfg.analysis_overrides)))
             for e in entries(cfg)]
    todo = [(e, s) for e, s in specs if not output_root.join(s.run_id, CURVES_FILE).exists()]
    failures = executor.run_all(todo, cfg.timeout_s) if todo else {}

    records: list[hist.MetricRecord] = []
    for entry, spec in specs:
        if entry in failures:
            continue
        try:
            records += read_metrics(output_root.join(spec.run_id), entry, date, cfg.metrics)
        except (OSError, ValueError) as err:
            failures[entry] = f"results unreadable: {err}"
    history_loc = resolve(cfg.history)
    hist.append(history_loc, records)

    failed = tuple(FailedRun(e.model, e.dataset, e.budget, reason) for e, reason in failures.items())
    table = hist.read(history_loc)
    rule = cfg.rule()
    findings = evaluate(table, date, rule) if not table.filter(pl.col("date") == date).is_empty() else []
    report = write_report(resolve(cfg.report_dir).join(date), table, findings, date, rule, list(failed))
    return NightOutcome(report, sum(f.failing for f in findings), failed)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jobs.nightly", description=__doc__.split("\n")[0])
    p.add_argument("--local", action="store_true", help="run here instead of submitting Ray jobs")
    p.add_argument("--address", help="Ray job server (default $RAY_ADDRESS or http://127.0.0.1:8265)")
    p.add_argument("--token-env", default=submit.DEFAULT_TOKEN_ENV, help="env var holding the cluster's token")
    p.add_argument("--date", default=None, help="night to record, YYYY-MM-DD (default: today, UTC)")
    p.add_argument("--config-name", default="nightly", help="spec under conf/ (e.g. nightly/tiny)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides of the spec")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: 0 = no regression, 1 = regression or failed run, 2 = bad spec or arguments."""
    args = _parser().parse_args(argv)
    date = args.date or dt.datetime.now(dt.timezone.utc).date().isoformat()
    try:
        dt.date.fromisoformat(date)
    except ValueError as err:
        print(f"error: --date {date!r}: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        cfg = load_config(args.overrides, args.config_name)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    log_dir = resolve(cfg.report_dir).join(date, "logs")
    if args.local:
        outcome = run_night(cfg, date, LocalExecutor(log_dir), python=sys.executable)
    else:
        outcome = run_night(cfg, date, RayJobsExecutor(args.address, args.token_env, log_dir))
    verdict = "REGRESSION" if outcome.exit_code else "OK"
    print(f"{verdict}: {outcome.n_regressions} flagged series, {len(outcome.failed_runs)} failed runs; "
          f"report: {outcome.report.display}")
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
