"""Grading solutions: final-answer extraction, correctness and answer classes, under a timeout.

``GradingPool(grader, timeout_s, processes)`` grades one problem's solutions at a time
(``grade(reference, texts)``) or many problems at once (``grade_many``). For each problem:

1. extract each solution's final answer (pure string work, in this process);
2. ``check`` each *distinct* answer once against the reference (in parallel);
3. assign answer classes: walk the distinct answers in order of first appearance; an answer joins
   the class of an earlier answer with the same key (e.g. the same sympy form) or, failing that, of
   the first class representative it is equivalent to (``match``); otherwise it opens a new class.
   Class ids are 0, 1, 2, ... in order of first appearance, so votes later only compare ids.

Graders that can hang (sympy inside math-verify) run in ``processes`` worker processes; a task that
exceeds ``timeout_s`` gets its worker killed (SIGKILL) and replaced, and its answer is graded
``timeout`` (is_correct False, own answer class); other tasks keep running. Workers start with
``spawn`` so the pool is safe beside threads (Ray, vLLM). Cheap graders run inline, no processes.

Statuses (``schema.GRADE_STATUSES``): ``correct`` / ``incorrect``; ``no_answer`` (nothing extracted,
counted wrong); ``timeout`` and ``error`` (the grader gave up or failed on that answer, counted
wrong); ``skipped`` (no reference: is_correct is null, classes are still computed).
Model output is only ever parsed, never evaluated.
"""
from __future__ import annotations

import multiprocessing as mp
import threading
import time
from collections import deque
from collections.abc import Generator, Hashable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from pipeline.graders import Grader, get_grader
from pipeline.schema import GRADE_STATUSES


@dataclass(frozen=True)
class Grade:
    """The grade of one solution (the solutions table's grading columns)."""

    extracted_answer: str | None
    answer_class: int | None
    is_correct: bool | None
    grade_status: str
    grader_version: str

    def __post_init__(self) -> None:
        if self.grade_status not in GRADE_STATUSES:
            raise ValueError(f"grade_status {self.grade_status!r} not in {GRADE_STATUSES}")


@dataclass(frozen=True)
class _Task:
    op: str  # a Grader method: "check" or "match"
    args: tuple


@dataclass(frozen=True)
class _Outcome:
    status: str  # "ok", "timeout" or "error"
    value: object = None


# A problem's grading as a coroutine: it yields batches of tasks and receives their outcomes, so
# the pool can interleave many problems over its workers while each problem stays sequential.
_Job = Generator[list[_Task], list[_Outcome], list[Grade]]


def _grade_problem(grader: Grader, reference: str | None, texts: Sequence[str]) -> _Job:
    version = grader.version
    answers = [grader.extract(t) for t in texts]
    distinct = list(dict.fromkeys(a for a in answers if a is not None))
    try:
        gold = None if reference is None else grader.gold(reference)
        gold_error = False
    except ValueError:
        gold, gold_error = None, True

    checked = (yield [_Task("check", (gold, a)) for a in distinct]) if distinct else []
    status: dict[str, str] = {}
    correct: dict[str, bool | None] = {}
    cls: dict[str, int] = {}
    key_class: dict[Hashable, int] = {}
    reps: list[str] = []  # one comparable answer per class that has one, with its class id
    rep_class: list[int] = []
    n_classes = 0
    for answer, out in zip(distinct, checked):
        if out.status != "ok":  # graded wrong (not graded at all without a reference)
            status[answer], correct[answer] = out.status, None if reference is None else False
            cls[answer], n_classes = n_classes, n_classes + 1  # cannot be compared: own class
            continue
        ok, key = out.value
        if gold_error:
            status[answer], correct[answer] = "error", False
        elif ok is None:
            status[answer], correct[answer] = "skipped", None
        else:
            status[answer], correct[answer] = ("correct" if ok else "incorrect"), ok
        if key in key_class:
            cls[answer] = key_class[key]
            continue
        c = None
        if not grader.keys_decide and reps:
            (m,) = yield [_Task("match", (answer, tuple(reps)))]
            if m.status == "ok" and m.value is not None:  # a hung comparison keeps it apart
                c = rep_class[m.value]
        if c is None:
            c, n_classes = n_classes, n_classes + 1
            reps.append(answer)
            rep_class.append(c)
        cls[answer] = key_class[key] = c
    grades = []
    for a in answers:
        if a is None:
            grades.append(Grade(None, None, None if reference is None else False, "no_answer", version))
        else:
            grades.append(Grade(a, cls[a], correct[a], status[a], version))
    return grades


# ---------------------------------------------------------------------------------------------
# Worker processes.
# ---------------------------------------------------------------------------------------------
def _worker_main(conn: Connection, grader_name: str) -> None:
    grader = get_grader(grader_name)
    grader.warm_up()
    conn.send(None)  # ready: deadlines start only now, so import time never counts as a timeout
    while (msg := conn.recv()) is not None:
        op, args = msg
        try:
            conn.send(("ok", getattr(grader, op)(*args)))
        except Exception as e:  # any failure on model output is that answer's grade, not a crash
            conn.send(("error", f"{type(e).__name__}: {e}"))


@dataclass
class _Worker:
    process: mp.process.BaseProcess
    conn: Connection
    ready: bool = False
    task: tuple[int, int] | None = None  # (job, slot) being worked on
    deadline: float = 0.0


class GradingPool:
    """Grades solutions with a named grader (``pipeline.graders.GRADERS``) under a per-task timeout.

    ``timeout_s`` bounds each check of one distinct answer and each class comparison; ``processes``
    is the number of worker processes for isolated graders (ignored by inline ones). Calls from
    several threads are serialised by a lock. Use as a context manager or call ``close()``.

    Workers are started with ``spawn``, which re-imports the main script: scripts that create a
    pool need the usual ``if __name__ == "__main__":`` guard (as vLLM scripts already do).
    """

    def __init__(self, grader: str, timeout_s: float = 5.0, processes: int = 1) -> None:
        if timeout_s <= 0 or processes < 1:
            raise ValueError(f"GradingPool needs timeout_s > 0 and processes >= 1, got {timeout_s}, {processes}")
        self.grader = get_grader(grader)
        self.timeout_s = timeout_s
        self.replaced_workers = 0  # workers killed after a timeout or death
        self._ctx = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._workers = [self._spawn() for _ in range(processes)] if self.grader.isolated else []

    @property
    def grader_version(self) -> str:
        return self.grader.version

    @property
    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    def grade(self, reference: str | None, texts: Sequence[str]) -> list[Grade]:
        """Grades of one problem's solutions ``texts`` against ``reference`` (None: not graded)."""
        return self.grade_many([(reference, texts)])[0]

    def grade_many(self, problems: Sequence[tuple[str | None, Sequence[str]]]) -> list[list[Grade]]:
        """``grade`` for many ``(reference, texts)`` problems, their tasks interleaved over the workers."""
        with self._lock:
            jobs = [_grade_problem(self.grader, ref, texts) for ref, texts in problems]
            return _Scheduler(self, jobs).run()

    def close(self) -> None:
        """Stop the workers (idempotent)."""
        for w in self._workers:
            try:
                w.conn.send(None)
            except OSError:
                pass
        for w in self._workers:
            w.process.join(timeout=1.0)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.conn.close()
        self._workers = []

    def __enter__(self) -> GradingPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        # daemon: the workers die with this process even when close() is never called
        process = self._ctx.Process(target=_worker_main, args=(child, self.grader.name), daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    def _replace(self, w: _Worker) -> None:
        w.process.kill()
        w.process.join()
        w.conn.close()
        if not w.ready:
            raise RuntimeError(f"grader {self.grader.name!r} worker died while starting "
                               f"(exit code {w.process.exitcode})")
        self._workers[self._workers.index(w)] = self._spawn()
        self.replaced_workers += 1


class _Scheduler:
    """Drives the problems' coroutines over the pool's workers (or inline) for one call."""

    def __init__(self, pool: GradingPool, jobs: list[_Job]) -> None:
        self.pool, self.jobs = pool, jobs
        self.results: list[list[Grade] | None] = [None] * len(jobs)
        self.pending: deque[tuple[int, int, _Task]] = deque()
        self.outcomes: dict[int, list[_Outcome | None]] = {}
        self.remaining: dict[int, int] = {}

    def run(self) -> list[list[Grade]]:
        for j in range(len(self.jobs)):
            self._advance(j, None)
        if self.pool._workers:
            self._run_workers()
        else:
            self._run_inline()
        return self.results  # type: ignore[return-value]  # every job has finished

    def _advance(self, j: int, sent: list[_Outcome] | None) -> None:
        try:
            batch = self.jobs[j].send(sent)
        except StopIteration as stop:
            self.results[j] = stop.value
            return
        self.outcomes[j] = [None] * len(batch)
        self.remaining[j] = len(batch)
        self.pending.extend((j, slot, task) for slot, task in enumerate(batch))

    def _complete(self, j: int, slot: int, outcome: _Outcome) -> None:
        self.outcomes[j][slot] = outcome
        self.remaining[j] -= 1
        if self.remaining[j] == 0:
            self._advance(j, self.outcomes.pop(j))  # type: ignore[arg-type]  # all slots filled

    def _run_inline(self) -> None:
        grader = self.pool.grader
        while self.pending:
            j, slot, task = self.pending.popleft()
            try:
                outcome = _Outcome("ok", getattr(grader, task.op)(*task.args))
            except Exception as e:  # same contract as a worker: a failure grades that answer
                outcome = _Outcome("error", f"{type(e).__name__}: {e}")
            self._complete(j, slot, outcome)

    def _run_workers(self) -> None:
        pool = self.pool
        while self.pending or any(w.task for w in pool._workers):
            for w in pool._workers:
                if w.ready and w.task is None and self.pending:
                    j, slot, task = self.pending.popleft()
                    w.conn.send((task.op, task.args))
                    w.task, w.deadline = (j, slot), time.monotonic() + pool.timeout_s
            deadlines = [w.deadline for w in pool._workers if w.task]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            for conn in wait([w.conn for w in pool._workers], timeout=timeout):
                w = next(w for w in pool._workers if w.conn is conn)
                try:
                    msg = conn.recv()
                except (EOFError, OSError):  # the worker died (e.g. out of memory)
                    task = w.task
                    pool._replace(w)
                    if task:
                        self._complete(*task, _Outcome("error", "grading worker died"))
                    continue
                if not w.ready:
                    w.ready = True
                    continue
                task, w.task = w.task, None
                self._complete(*task, _Outcome(*msg))
            now = time.monotonic()
            for w in list(pool._workers):
                if w.task and now >= w.deadline:
                    task = w.task
                    pool._replace(w)  # a hung sympy call cannot be interrupted: kill it
                    self._complete(*task, _Outcome("timeout"))
