"""The engine-hang watchdog in one process: an idle engine is left alone, a hung one is killed with a
message naming the replica and the stacks showing where it hung. (The end-to-end case, a hung replica
replaced and its batches retried by Ray, is in ``test_pipeline_run.py``.) The stand-in engine
stands in for vLLM; the hang is the ``engine_step_solver`` fault point's ``hang`` action."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from pipeline.config import PROJECT_ROOT

pytestmark = pytest.mark.slow  # imports vLLM (~10-30 s)

SCRIPT = """
import os, time
from pipeline import faults
from pipeline.config import compose
from pipeline.engine import EngineLoop, build_llm, resolve_sampling, sampling_params

cfg = compose(["model@solver=standin"])
loop = EngineLoop(build_llm(cfg.solver, 0), "solver-test", "solver", timeout_s=1.0)
params = sampling_params(resolve_sampling(cfg.solver, cfg.budget.solver), n=2)
print("outputs", len(loop.generate([[5, 6, 7]], params)[0].outputs), flush=True)
time.sleep(2.5)  # idle for longer than the limit: nothing waits, so no hang
print("outputs", len(loop.generate([[5, 6, 7]], params)[0].outputs), flush=True)
os.environ[faults.ENV] = "engine_step_solver:1:hang"
print("hanging at", time.monotonic(), flush=True)
loop.generate([[5, 6, 7]], params)
print("returned", flush=True)
"""


def test_watchdog_kills_a_hung_engine_not_an_idle_one_and_names_the_replica():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["outputs 2", "outputs 2"] and "returned" not in proc.stdout
    hung_at = float(lines[2].split()[-1])
    assert time.monotonic() - hung_at < 30  # killed after ~1 s, not left hanging
    assert "engine watchdog: replica solver-test finished no engine step" in proc.stderr
    assert "cluster.engine_timeout_s=1" in proc.stderr
    assert "faults.py\", line" in proc.stderr and " in hit" in proc.stderr  # the stack shows where it hung
