"""Fault injection for resume tests: kill the driver at a named point.

``SOLVE_VERIFY_FAULT=<point>:<count>[,<point>:<count>...]`` makes the process SIGKILL itself the
``count``-th time (1-based) it reaches ``<point>``. Points: ``before_commit_<table>``,
``before_rename_<table>`` (the ``.tmp`` is written, not yet renamed), ``after_commit_<table>``,
``mid_solve`` and ``mid_verify`` (the driver holds stage output it has not committed yet), and inside
the engine replicas ``replica_solve`` / ``replica_verify`` (a replica dies mid-batch; Ray restarts it
and Ray Data retries the batch).

Counts are per process. With ``SOLVE_VERIFY_FAULT_DIR=<dir>`` a point fires at most once across all
processes (a marker file ``<dir>/<point>.fired`` is written first), so a restarted replica, which
counts from zero again, does not die again. Unset in normal runs; a point then costs one lookup.
"""
from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "SOLVE_VERIFY_FAULT"
DIR_ENV = "SOLVE_VERIFY_FAULT_DIR"
_hits: Counter[str] = Counter()


def _plan() -> dict[str, int]:
    spec = os.environ.get(ENV, "")
    plan = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        point, _, count = item.rpartition(":")
        if not point or not count.isdigit() or int(count) < 1:
            raise ValueError(f"{ENV}={spec!r}: each item must be <point>:<count> with count >= 1, got {item!r}")
        plan[point] = int(count)
    return plan


def hit(point: str) -> None:
    """Count a pass through ``point``; SIGKILL this process when the plan says so."""
    plan = _plan()
    if point not in plan:
        return
    _hits[point] += 1
    if _hits[point] != plan[point]:
        return
    marker_dir = os.environ.get(DIR_ENV)
    if marker_dir:
        try:  # exclusive create: only the first process to get here fires
            os.close(os.open(os.path.join(marker_dir, f"{point}.fired"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    os.kill(os.getpid(), signal.SIGKILL)
