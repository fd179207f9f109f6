"""jobs.storage on local paths and on a local S3-compatible server (moto_server on 127.0.0.1)."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyarrow.fs import FileSelector

from jobs import history as hist
from jobs.regression import RegressionRule, evaluate
from jobs.report import write_report
from jobs.storage import resolve


def test_local_paths_and_file_uris(tmp_path):
    loc = resolve(str(tmp_path / "a"))
    assert loc.is_local and loc.display == str(tmp_path / "a")
    loc.join("b", "c.txt").write_text("hello")
    assert (tmp_path / "a" / "b" / "c.txt").read_text() == "hello"
    same = resolve(f"file://{tmp_path}/a/b/c.txt")
    assert same.read_text() == "hello" and same.exists()
    assert resolve("relative/dir").display == os.path.abspath("relative/dir")
    with pytest.raises(FileNotFoundError, match="no such file"):
        loc.join("missing.txt").read_text()


@pytest.mark.parametrize("bad", ["", "foo://bucket/x", "s3://"])
def test_bad_locations_are_named(bad):
    with pytest.raises(ValueError, match="storage location|empty"):
        resolve(bad)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto_server bound to loopback, with dummy credentials only for this module."""
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("moto_server not installed (pip install -e '.[dev]')")
    port = _free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_EC2_METADATA_DISABLED="true")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.2)
        yield f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1&allow_bucket_creation=true"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_history_and_report_on_s3(s3_endpoint):
    history = resolve(f"s3://nightly/history?{s3_endpoint}")
    assert history.display == "s3://nightly/history" and not history.is_local  # no endpoint in what we print
    history.fs.create_dir("nightly")  # the bucket
    dates = [(dt.date(2026, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(5)]
    for i, date in enumerate(dates):
        value = 0.3 if i == 4 else 0.6
        hist.append(history, [hist.MetricRecord(date, "org/model", "toy", "s8", "pass@1", value, 0.55, 0.65)])
    table = hist.read(history)
    assert table.height == 5 and table["model"].unique().to_list() == ["org/model"]
    findings = evaluate(table, dates[-1], RegressionRule(min_history=3))
    assert [f.status for f in findings] == ["regression"]

    out = resolve(f"s3://nightly/reports?{s3_endpoint}").join(dates[-1])
    report = write_report(out, table, findings, dates[-1], RegressionRule(min_history=3), [])
    assert report.display == f"s3://nightly/reports/{dates[-1]}/report.md"
    assert report.read_text().startswith(f"# Nightly benchmark report — {dates[-1]}\n\n**REGRESSION**")
    assert out.join("plots", "pass_1.png").read_bytes()[:4] == b"\x89PNG"
    listed = {info.path for info in history.fs.get_file_info(FileSelector("nightly/history", recursive=True))}
    assert f"nightly/history/date={dates[0]}/model=org%2Fmodel/dataset=toy" in listed
