"""Submit a pipeline run to a Ray cluster through the Ray Jobs API, then follow, inspect or stop it.

    # submit, follow the logs until the job ends, print the run directory
    python -m jobs.submit submit --run-id smoke-run --analyze -- cluster=ray_cluster cluster.replica_num_gpus=0 dataset.limit=4 budget.solutions=4 budget.verifications=2
    python -m jobs.submit status sv-smoke-run
    python -m jobs.submit where sv-smoke-run      # the run directory of that job
    python -m jobs.submit logs sv-smoke-run
    python -m jobs.submit submit --no-wait --run-id smoke-stop -- cluster=ray_cluster cluster.replica_num_gpus=0 dataset.limit=4
    python -m jobs.submit stop sv-smoke-stop
    python -m jobs.submit list                    # every job on the cluster with its status

(jobs/README.md has the whole walk-through; scripts/smoke_jobs.sh runs these commands.)

The address defaults to $RAY_ADDRESS, else http://127.0.0.1:8265 (the dashboard's job server, e.g.
through ``ray dashboard cluster.yaml`` port-forwarding). Ray 2.59+ enables token authentication on
the job server: the token is read from the environment variable named by ``--token-env``
(default RAY_AUTH_TOKEN) and sent as an ``Authorization: Bearer`` header. It is never put in the
job's runtime_env, entrypoint, metadata or our logs: the job's driver authenticates with the
cluster's own token, already present on the head node.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, TextIO

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
DEFAULT_TOKEN_ENV = "RAY_AUTH_TOKEN"
RUN_DIR_KEY = "solve_verify.run_dir"
REPO_ROOT = Path(__file__).resolve().parent.parent
# Never upload these with working_dir (size limit and secrets: ray#38566, #45602).
WORKING_DIR_EXCLUDES = (
    ".git", ".venv", "venv", "runs", "outputs", "multirun", "wandb", "**/__pycache__", "*.egg-info",
    ".pytest_cache", ".hypothesis", "build", ".ipynb_checkpoints", ".env", "*.log",
)
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


@dataclass(frozen=True)
class JobSpec:
    """One pipeline run as a Ray job. ``output_dir`` is as seen from the cluster (shared disk or URI)."""

    overrides: tuple[str, ...]
    run_id: str
    output_dir: str = "runs"
    working_dir: str = str(REPO_ROOT)
    python: str = "python"
    pip: tuple[str, ...] = ()
    env_vars: dict[str, str] = field(default_factory=dict)
    analyze: bool = False
    analysis_overrides: tuple[str, ...] = ()
    entrypoint_num_cpus: float | None = None

    @property
    def run_dir(self) -> str:
        return f"{self.output_dir.rstrip('/')}/{self.run_id}"

    @property
    def submission_id(self) -> str:
        return f"sv-{self.run_id}"


def check_overrides(overrides: Sequence[str]) -> None:
    """Raise ValueError naming the override that Hydra's grammar rejects (before anything is uploaded)."""
    for ov in overrides:
        try:
            OverridesParser.create().parse_overrides([ov])
        except OverrideParseException as err:
            raise ValueError(f"bad Hydra override {ov!r}: {err}") from err
        if ov.split("=", 1)[0].lstrip("+~") in ("output_dir", "run_id"):
            raise ValueError(f"override {ov!r}: set the run location with --output-dir / --run-id instead")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def build_entrypoint(spec: JobSpec) -> str:
    """The shell command the job runs: the pipeline, then (``analyze``) the analysis of its run directory.

    Every word is quoted with shlex, so override values with spaces, quotes or ``$`` reach Hydra intact.
    """
    check_overrides(spec.overrides)
    check_overrides(spec.analysis_overrides)
    cmd = shlex.join([spec.python, "-m", "pipeline.run", *spec.overrides, f"output_dir={spec.output_dir}",
                      f"run_id={spec.run_id}"])
    if spec.analyze:
        cmd += " && " + shlex.join([spec.python, "-m", "analysis.run", f"run_dir={spec.run_dir}",
                                    *spec.analysis_overrides])
    return cmd


def build_runtime_env(spec: JobSpec) -> dict:
    """working_dir (with caches, runs, .git and virtualenvs excluded), pip dependencies, env vars."""
    if not Path(spec.working_dir, "pipeline").is_dir():
        raise ValueError(f"working_dir {spec.working_dir!r} is not the solve-verify repository (no pipeline/)")
    env: dict = {"working_dir": spec.working_dir, "excludes": list(WORKING_DIR_EXCLUDES)}
    if spec.pip:
        env["pip"] = list(spec.pip)
    if spec.env_vars:
        env["env_vars"] = dict(spec.env_vars)
    return env


def connect(address: str | None = None, token_env: str = DEFAULT_TOKEN_ENV):
    """A JobSubmissionClient for ``address``, authenticated with the token in ``$token_env`` if set."""
    from ray.job_submission import JobSubmissionClient

    address = address or os.environ.get("RAY_ADDRESS") or DEFAULT_ADDRESS
    token = os.environ.get(token_env)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return JobSubmissionClient(address, headers=headers)


def submit(client, spec: JobSpec, agent_wait_s: float = 60.0, submission_id: str | None = None) -> str:
    """Submit ``spec`` (as ``submission_id``, default ``spec.submission_id``); return the job's id.

    A head that just started answers before its job agent is up ("No available agent to submit job");
    that refusal is retried for up to ``agent_wait_s`` seconds, any other error is raised at once.
    """
    kwargs = dict(entrypoint=build_entrypoint(spec), runtime_env=build_runtime_env(spec),
                  submission_id=submission_id or spec.submission_id, metadata={RUN_DIR_KEY: spec.run_dir},
                  entrypoint_num_cpus=spec.entrypoint_num_cpus)
    deadline = time.monotonic() + agent_wait_s
    while True:
        try:
            return client.submit_job(**kwargs)
        except RuntimeError as err:
            if "No available agent" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(2)


def status(client, job_id: str) -> str:
    """The job's status name: PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED."""
    return str(client.get_job_status(job_id).value)


def run_dir_of(client, job_id: str) -> str:
    """The run directory recorded in the job's metadata at submission."""
    metadata = client.get_job_info(job_id).metadata or {}
    if RUN_DIR_KEY not in metadata:
        raise KeyError(f"job {job_id} was not submitted by jobs.submit (no {RUN_DIR_KEY} in its metadata)")
    return metadata[RUN_DIR_KEY]


def follow(client, job_id: str, out: TextIO | None = None) -> str:
    """Stream the job's logs to ``out`` (default: the current sys.stdout) until it ends; return its final status."""
    out = out or sys.stdout

    async def _tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            out.write(chunk)
            out.flush()

    asyncio.run(_tail())
    return wait(client, job_id, timeout_s=60)


def wait(client, job_id: str, timeout_s: float, poll_s: float = 2.0) -> str:
    """Poll until the job reaches a terminal status; raise TimeoutError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (state := status(client, job_id)) not in TERMINAL:
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {state} after {timeout_s:.0f} s")
        time.sleep(poll_s)
    return state


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jobs.submit", description=__doc__.split("\n")[0])
    p.add_argument("--address", help=f"job server URL (default $RAY_ADDRESS or {DEFAULT_ADDRESS})")
    p.add_argument("--token-env", default=DEFAULT_TOKEN_ENV, help="env var holding the cluster's auth token")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("submit", help="submit a pipeline run; Hydra overrides after --")
    s.add_argument("--run-id", default=None, help="run id (default: timestamp + random suffix)")
    s.add_argument("--output-dir", default="runs",
                   help="output root as seen from the cluster: a shared path or a URI; a relative path is "
                        "made absolute here (default: runs)")
    s.add_argument("--working-dir", default=str(REPO_ROOT), help="repository to upload")
    s.add_argument("--python", default="python", help="python executable on the cluster")
    s.add_argument("--pip", action="append", default=[], help="extra pip requirement for the job (repeatable)")
    s.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="job env var (not secrets)")
    s.add_argument("--analyze", action="store_true", help="run the analysis on the run directory afterwards")
    s.add_argument("--no-wait", action="store_true", help="print the job id and return")
    s.add_argument("overrides", nargs="*", help="Hydra overrides for pipeline.run")
    sub.add_parser("list", help="list the cluster's jobs with their status and run directory")
    for name, help_ in (("logs", "print the job's logs"), ("status", "print the job's status"),
                        ("stop", "stop the job"), ("where", "print the job's run directory")):
        c = sub.add_parser(name, help=help_)
        c.add_argument("job_id")
        if name == "logs":
            c.add_argument("--follow", action="store_true", help="stream until the job ends")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI; exit status 0 on success (for ``submit``: the job succeeded, or --no-wait), 1 when the
    followed job did not succeed, 2 on a usage, connection or authentication error."""
    from ray.exceptions import AuthenticationError

    args = _parser().parse_args(argv)
    try:
        return _run_command(args)
    except (ValueError, KeyError, ConnectionError, AuthenticationError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run_command(args: argparse.Namespace) -> int:
    client = connect(args.address, args.token_env)
    if args.command == "submit":
        bad_env = [kv for kv in args.env if "=" not in kv]
        if bad_env:
            raise ValueError(f"--env {bad_env[0]!r}: expected KEY=VALUE")
        env_vars = dict(kv.split("=", 1) for kv in args.env)
        # A relative output dir would land in the job's unpacked working_dir copy on the cluster.
        output_dir = args.output_dir if "://" in args.output_dir else os.path.abspath(args.output_dir)
        spec = JobSpec(overrides=tuple(args.overrides), run_id=args.run_id or new_run_id(),
                       output_dir=output_dir, working_dir=args.working_dir, python=args.python,
                       pip=tuple(args.pip), env_vars=env_vars, analyze=args.analyze)
        job_id = submit(client, spec)
        print(f"submitted {job_id}; run directory: {spec.run_dir}", flush=True)
        if args.no_wait:
            return 0
        final = follow(client, job_id)
        print(f"job {job_id} {final}; run directory: {spec.run_dir}")
        return 0 if final == "SUCCEEDED" else 1
    if args.command == "list":
        for job in client.list_jobs():
            run_dir = (job.metadata or {}).get(RUN_DIR_KEY, "-")
            print(f"{job.submission_id or job.job_id}\t{job.status.value}\t{run_dir}")
    elif args.command == "logs":
        if args.follow:
            follow(client, args.job_id)
        else:
            print(client.get_job_logs(args.job_id), end="")
    elif args.command == "status":
        print(status(client, args.job_id))
    elif args.command == "stop":
        stopped = client.stop_job(args.job_id)
        print(f"{args.job_id}: {'stop requested' if stopped else 'already finished'}")
    elif args.command == "where":
        print(run_dir_of(client, args.job_id))
    return 0


if __name__ == "__main__":
    sys.exit(main())
