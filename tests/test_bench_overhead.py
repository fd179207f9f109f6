"""The pipeline-overhead bench at a tiny size, so it keeps running: one stand-in-engine run of 200 rows
through the real pipeline (own local Ray, subprocess), its memory sampled, the pyarrow baseline, the
CSV and the plot."""
from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from pipeline.config import PROJECT_ROOT

pytestmark = pytest.mark.slow  # starts a local Ray and a (stand-in) replica


def test_overhead_bench_runs_at_a_tiny_size(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "bench.pipeline_overhead", "--rows", "200", "--solutions", "10",
                           "--out-dir", str(out)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "ratio pipeline/pyarrow rows/s at 200 rows" in proc.stdout
    (row,) = list(csv.DictReader((out / "overhead.csv").open()))
    assert int(row["rows"]) == 200 and int(row["problems"]) == 20
    assert 0 < float(row["pipeline_rows_per_s"]) and 0 < float(row["pyarrow_rows_per_s"])
    assert float(row["ratio"]) == pytest.approx(float(row["pipeline_rows_per_s"]) / float(row["pyarrow_rows_per_s"]),
                                                rel=0.05)  # rates are rounded to whole rows/s
    # the sampler saw the driver and the Ray workers (a replica imports vLLM: well over 50 MiB)
    assert float(row["peak_driver_private_mib"]) > 50 and float(row["peak_workers_private_mib"]) > 50
    assert (out / "overhead.png").stat().st_size > 0
