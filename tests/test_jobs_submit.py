"""jobs.submit and the nightly runner against a real local Ray head (127.0.0.1, token auth on with a
canary token), started once for this module.

The plumbing tests submit to a stand-in ``pipeline.run`` (a temp working_dir whose module echoes its
arguments) so quoting, uploads, logs, status and stop are checked in seconds; the last test runs the
real pipeline (tiny random-weight Llama) and the real analysis as Ray jobs through the nightly runner,
then looks for the canary token everywhere the run and the cluster wrote.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from jobs import nightly, submit
from jobs.history import read
from jobs.storage import resolve

pytestmark = pytest.mark.slow

STAND_IN = textwrap.dedent('''
    """Stand-in for pipeline.run: records its argv and the uploaded files, optionally sleeps."""
    import json, os, sys, time
    args = dict(a.split("=", 1) for a in sys.argv[1:])
    run_dir = os.path.join(args["output_dir"], args["run_id"])
    os.makedirs(run_dir, exist_ok=True)
    json.dump({"argv": sys.argv[1:], "files": sorted(os.listdir("."))}, open(os.path.join(run_dir, "argv.json"), "w"))
    print("stand-in pipeline got", len(sys.argv) - 1, "args", flush=True)
    time.sleep(float(args.get("+sleep", 0)))
    sys.exit(int(args.get("+exit", 0)))
''')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RayHead:
    """A `ray start --head --block` process group owned by this test session."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="svray-"))  # short: Ray's socket paths have a length limit
        self.token = f"canary-{uuid.uuid4().hex}"
        self.dashboard_port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        # The head enables token auth because a token is present; no draining on SIGTERM (tests only).
        env.update(RAY_AUTH_TOKEN=self.token, RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",
                   PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
        cmd = ["ray", "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={_free_port()}",
               "--dashboard-host=127.0.0.1", f"--dashboard-port={self.dashboard_port}",
               f"--dashboard-agent-listen-port={_free_port()}", f"--ray-client-server-port={_free_port()}",
               "--num-cpus=4", "--object-store-memory=300000000", f"--temp-dir={self.tmp}",
               "--disable-usage-stats", "--include-dashboard=true"]
        self.log = open(self.tmp / "head.log", "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def wait_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                submit.connect(self.address).get_version()
                return
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Ray head did not start: {(self.tmp / 'head.log').read_text()[-3000:]}")
                time.sleep(1)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass
        self.log.close()


@pytest.fixture(scope="module")
def ray_head():
    head = RayHead()
    saved = os.environ.get("RAY_AUTH_TOKEN")
    os.environ["RAY_AUTH_TOKEN"] = head.token  # what a user exports; jobs.submit reads it from here
    try:
        head.wait_ready()
        yield head
    finally:
        head.stop()
        if saved is None:
            os.environ.pop("RAY_AUTH_TOKEN", None)
        else:
            os.environ["RAY_AUTH_TOKEN"] = saved


@pytest.fixture(scope="module")
def stand_in_repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    (repo / "pipeline").mkdir()
    (repo / "pipeline" / "__init__.py").write_text("")
    (repo / "pipeline" / "run.py").write_text(STAND_IN)
    for excluded in (".git", "runs", ".venv", "wandb"):
        (repo / excluded).mkdir()
        (repo / excluded / "big.bin").write_bytes(os.urandom(1024))
    return repo


def _spec(repo: Path, out: Path, *overrides: str) -> submit.JobSpec:
    return submit.JobSpec(overrides=overrides, run_id=f"t-{uuid.uuid4().hex[:8]}", output_dir=str(out),
                          working_dir=str(repo), python=sys.executable)


def test_submit_quotes_overrides_uploads_repo_without_excluded_dirs(ray_head, stand_in_repo, tmp_path, capsys):
    overrides = ("dataset=toy", "+note='two words; $HOME \"q\"'", "budget.solutions=4")
    spec = _spec(stand_in_repo, tmp_path, *overrides)
    client = submit.connect(ray_head.address)
    job_id = submit.submit(client, spec)
    assert job_id == f"sv-{spec.run_id}"
    assert submit.follow(client, job_id) == "SUCCEEDED"
    got = json.loads((tmp_path / spec.run_id / "argv.json").read_text())
    assert got["argv"] == [*overrides, f"output_dir={tmp_path}", f"run_id={spec.run_id}"]
    assert "pipeline" in got["files"]
    assert not {".git", "runs", ".venv", "wandb"} & set(got["files"])
    assert submit.run_dir_of(client, job_id) == f"{tmp_path}/{spec.run_id}"
    logs = client.get_job_logs(job_id)
    assert "stand-in pipeline got 5 args" in logs
    assert ray_head.token not in logs
    assert ray_head.token not in json.dumps(client.get_job_info(job_id).runtime_env)
    capsys.readouterr()  # drop the followed logs
    for command, expected in (("status", "SUCCEEDED"), ("where", f"{tmp_path}/{spec.run_id}")):
        assert submit.main(["--address", ray_head.address, command, job_id]) == 0
        assert capsys.readouterr().out.strip() == expected


def test_cli_submit_follows_logs_and_prints_run_dir(ray_head, stand_in_repo, tmp_path, capsys):
    code = submit.main(["--address", ray_head.address, "submit", "--run-id", "cli-run", "--output-dir",
                        str(tmp_path), "--working-dir", str(stand_in_repo), "--python", sys.executable,
                        "--", "dataset=toy"])
    out = capsys.readouterr().out
    assert code == 0
    assert "stand-in pipeline got 3 args" in out
    assert out.rstrip().endswith(f"job sv-cli-run SUCCEEDED; run directory: {tmp_path}/cli-run")
    assert ray_head.token not in out


def test_stop_a_running_job(ray_head, stand_in_repo, tmp_path, capsys):
    spec = _spec(stand_in_repo, tmp_path, "+sleep=120")
    client = submit.connect(ray_head.address)
    job_id = submit.submit(client, spec)
    deadline = time.monotonic() + 60
    while submit.status(client, job_id) != "RUNNING":
        assert time.monotonic() < deadline, "job never started"
        time.sleep(0.5)
    assert submit.main(["--address", ray_head.address, "stop", job_id]) == 0
    assert capsys.readouterr().out.strip() == f"{job_id}: stop requested"
    assert submit.wait(client, job_id, timeout_s=60, poll_s=0.5) == "STOPPED"


def test_nightly_ray_executor_resubmits_a_failed_job_of_the_same_night(ray_head, stand_in_repo, tmp_path):
    log_dir = resolve(str(tmp_path / "logs"))
    executor = nightly.RayJobsExecutor(ray_head.address, "RAY_AUTH_TOKEN", log_dir)
    entry = nightly.Entry("m", "d", "b", ())
    failing = _spec(stand_in_repo, tmp_path, "+exit=3")
    failures = executor.run_all([(entry, failing)], timeout_s=60)
    assert list(failures) == [entry] and f"job {failing.submission_id} FAILED" in failures[entry]
    again = submit.JobSpec(overrides=("dataset=toy",), run_id=failing.run_id, output_dir=str(tmp_path),
                           working_dir=str(stand_in_repo), python=sys.executable)
    assert executor.run_all([(entry, again)], timeout_s=60) == {}
    assert "stand-in pipeline got 3 args" in (tmp_path / "logs" / f"{failing.run_id}.log").read_text()
    states = {j.submission_id: j.status.value for j in submit.connect(ray_head.address).list_jobs()
              if j.submission_id.startswith(failing.submission_id)}
    assert states.pop(failing.submission_id) == "FAILED"
    assert [(k.startswith(f"{failing.submission_id}-retry-"), v) for k, v in states.items()] == [(True, "SUCCEEDED")]


def _non_loopback_ip() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent; this only picks the outgoing interface
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def test_job_server_listens_on_loopback_only(ray_head):
    ip = _non_loopback_ip()
    if ip is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    socket.create_connection(("127.0.0.1", ray_head.dashboard_port), timeout=5).close()
    with pytest.raises(OSError):
        socket.create_connection((ip, ray_head.dashboard_port), timeout=5).close()


def _http_status(url: str, token: str | None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_job_server_enforces_the_token(ray_head, monkeypatch, capsys):
    # Raw HTTP, so no client-side token discovery (env, ~/.ray/auth_token, cached config) can interfere.
    url = f"{ray_head.address}/api/jobs/"
    assert _http_status(url, None) == 401
    assert _http_status(url, "not-the-token") == 403
    assert _http_status(url, ray_head.token) == 200
    monkeypatch.setenv("WRONG_TOKEN", "not-the-token")
    assert submit.main(["--address", ray_head.address, "--token-env", "WRONG_TOKEN", "list"]) == 2
    assert "Authentication failed" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    """A random-weight tiny Llama (solver and verifier) and 4 toy problems: real engines, meaningless text."""
    from pipeline.testing import build_tiny_llama
    from toyworld.task import make_problem_set, write_jsonl

    root = tmp_path_factory.mktemp("tiny")
    model = build_tiny_llama(root / "model")
    write_jsonl(make_problem_set(2, seed=1)[:4], root / "toy.jsonl")
    return [f"solver.path={model}", f"verifier.path={model}", f"dataset.file={root / 'toy.jsonl'}"]


def _files_containing(text: str, *roots: Path) -> list[Path]:
    needle = text.encode()
    return [p for root in roots for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_tiny_pipeline_as_ray_jobs_through_the_nightly_runner(ray_head, tiny_world, tmp_path):
    pipeline_overrides = [*tiny_world, "cluster=ray_cluster", "cluster.replica_num_gpus=0", "cluster.mode=phased",
                          "budget.solutions=2", "budget.verifications=1"]
    cfg = nightly.load_config([f"output_root={tmp_path}/runs", f"history={tmp_path}/history",
                               f"report_dir={tmp_path}/reports",
                               # plots off: analysis' log-scaled gain plot fails when every success rate is 0,
                               # which is what a random-weight model scores (reported to the analysis owner).
                               'analysis_overrides=["bootstrap=50","plots=false"]',
                               "pipeline_overrides=[" + ",".join(f'"{o}"' for o in pipeline_overrides) + "]"],
                              config_name="nightly/tiny")
    date = "2026-04-01"
    executor = nightly.RayJobsExecutor(ray_head.address, "RAY_AUTH_TOKEN", resolve(cfg.report_dir).join(date, "logs"))
    outcome = nightly.run_night(cfg, date, executor)
    log = tmp_path / "reports" / date / "logs" / f"nightly-{date}-toy-toy-s4_v2.log"
    assert outcome.failed_runs == (), log.read_text()[-3000:]
    assert outcome.exit_code == 0  # first night: nothing to compare with

    run_dir = tmp_path / "runs" / f"nightly-{date}-toy-toy-s4_v2"
    for table in ("problems", "solutions", "verifications"):
        assert list((run_dir / table).glob("*.parquet")), table
    assert (run_dir / "manifest.json").exists() and (run_dir / "analysis" / "curves.parquet").exists()
    assert "analysis written to" in log.read_text()
    history = read(resolve(cfg.history))
    assert set(history["date"]) == {date} and {"pass@1", "pass@2", "maj@2"} <= set(history["metric"])
    assert (tmp_path / "reports" / date / "report.md").read_text().startswith(f"# Nightly benchmark report — {date}")

    # The canary token: not in the run directory (tables, manifest, hydra logs, wandb offline folder),
    # the history, the report, the job logs we saved, nor anything the Ray head wrote (its session logs,
    # job driver logs included).
    assert (run_dir / "wandb").is_dir()
    assert _files_containing(ray_head.token, tmp_path, ray_head.tmp) == []
    control = tmp_path.parent / "canary-control"
    control.mkdir(exist_ok=True)
    (control / "blob.bin").write_bytes(b"\x00\x01" + ray_head.token.encode() + b"\xff")
    assert _files_containing(ray_head.token, control) == [control / "blob.bin"]  # the scan does find it
