"""Fault injection for resume and watchdog tests: kill (or hang) a process at a named point.

``SOLVE_VERIFY_FAULT=<point>:<count>[:<action>][,...]`` acts the ``count``-th time (1-based) the
process reaches ``<point>``. Actions: ``kill`` (default: the process SIGKILLs itself) and ``hang``
(the calling thread blocks forever, holding whatever it holds; the engine watchdog's test uses it).
Points: ``before_commit_<table>``, ``before_rename_<table>`` (the ``.tmp`` is written, not yet renamed),
``after_commit_<table>``, ``mid_solve`` and ``mid_verify`` (the driver holds stage output it has not
committed yet), inside the engine replicas ``replica_solve`` / ``replica_verify`` (a replica dies
mid-batch; Ray restarts it and Ray Data retries the batch), and ``engine_step_<role>`` (``solver`` /
``verifier``: before each engine step, inside the engine lock, so ``hang`` there is an engine that
stops making progress).

Counts are per process. With ``SOLVE_VERIFY_FAULT_DIR=<dir>`` a point fires at most once across all
processes (a marker file ``<dir>/<point>.fired`` is written first), so a restarted replica, which
counts from zero again, does not die again. Unset in normal runs; a point then costs one lookup.
"""
from __future__ import annotations

import os
import signal
import threading
from collections import Counter

ENV = "SOLVE_VERIFY_FAULT"
DIR_ENV = "SOLVE_VERIFY_FAULT_DIR"
ACTIONS = ("kill", "hang")
_hits: Counter[str] = Counter()


def _plan() -> dict[str, tuple[int, str]]:
    spec = os.environ.get(ENV, "")
    plan = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        fields = item.split(":")
        point, count, action = (fields + ["kill"])[:3] if len(fields) in (2, 3) else ("", "", "")
        if not point or not count.isdigit() or int(count) < 1 or action not in ACTIONS:
            raise ValueError(f"{ENV}={spec!r}: each item must be <point>:<count>[:<action>] with count >= 1 "
                             f"and action one of {ACTIONS}, got {item!r}")
        plan[point] = (int(count), action)
    return plan


def hit(point: str) -> None:
    """Count a pass through ``point``; SIGKILL this process or hang this thread when the plan says so."""
    plan = _plan()
    if point not in plan:
        return
    count, action = plan[point]
    _hits[point] += 1
    if _hits[point] != count:
        return
    marker_dir = os.environ.get(DIR_ENV)
    if marker_dir:
        try:  # exclusive create: only the first process to get here fires
            os.close(os.open(os.path.join(marker_dir, f"{point}.fired"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    if action == "hang":
        threading.Event().wait()
    os.kill(os.getpid(), signal.SIGKILL)
