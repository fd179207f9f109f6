"""The grading pool's timeout: a pathological answer that really hangs sympy is cut off in time."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from pipeline.grade import GradingPool

# 9^(9^(9^9)): math-verify parses it instantly, then comparing it with a number never finishes
# (CPU-bound, constant memory: about 80 MB after 20 s here).
HANG = "\\boxed{9^{9^{9^{9}}}}"
TIMEOUT_S = 2.0


def test_the_pathological_answer_really_hangs_without_a_timeout():
    code = (
        "import sys\n"
        "from pipeline.graders import get_grader\n"
        "g = get_grader('math'); g.warm_up()\n"
        "print('start', flush=True)\n"
        f"g.check('1', {HANG[7:-1]!r})\n"
        "print('done', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "start"
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=2 * TIMEOUT_S)
    finally:
        proc.kill()
        proc.wait()


def test_timeout_within_limit_then_later_items_still_grade():
    with GradingPool("math", timeout_s=TIMEOUT_S, processes=2) as pool:
        assert pool.grade("1", ["\\boxed{1}"])[0].grade_status == "correct"  # workers up before timing
        pids = pool.worker_pids
        t0 = time.monotonic()
        hung, fine = pool.grade("1", [HANG, "\\boxed{2}"])
        elapsed = time.monotonic() - t0
        assert hung.grade_status == "timeout" and hung.is_correct is False
        assert hung.extracted_answer == "9^{9^{9^{9}}}" and hung.answer_class == 0
        assert fine.grade_status == "incorrect" and fine.answer_class == 1
        assert TIMEOUT_S <= elapsed <= TIMEOUT_S + 1.0
        # the hung worker was killed and replaced; the other one kept running
        assert pool.replaced_workers == 1
        killed = [p for p in pids if p not in pool.worker_pids]
        assert len(killed) == 1 and not _alive(killed[0])
        # later calls still grade, on the replacement worker too
        assert [g.grade_status for g in pool.grade("\\frac{1}{2}", ["\\boxed{0.5}", "\\boxed{1/2}", "\\boxed{3}"])] \
            == ["correct", "correct", "incorrect"]


def test_single_worker_recovers_within_one_call():
    with GradingPool("math", timeout_s=TIMEOUT_S, processes=1) as pool:
        grades = pool.grade("2", ["\\boxed{2}", HANG, "\\boxed{2.0}", "\\boxed{3}"])
        assert [g.grade_status for g in grades] == ["correct", "timeout", "correct", "incorrect"]
        assert [g.answer_class for g in grades] == [0, 1, 0, 2]
        assert pool.replaced_workers == 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
