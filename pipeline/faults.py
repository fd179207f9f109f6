"""Fault injection for resume tests: kill the driver at a named point.

``SOLVE_VERIFY_FAULT=<point>:<count>[,<point>:<count>...]`` makes the process SIGKILL itself the
``count``-th time (1-based) it reaches ``<point>``. Points: ``before_commit_<table>``,
``before_rename_<table>`` (the ``.tmp`` is written, not yet renamed), ``after_commit_<table>``,
``mid_solve`` and ``mid_verify`` (the driver holds stage output it has not committed yet).
Unset in normal runs; reading it costs one dict lookup per point.
"""
from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "SOLVE_VERIFY_FAULT"
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
    if _hits[point] == plan[point]:
        os.kill(os.getpid(), signal.SIGKILL)
