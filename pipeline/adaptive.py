"""Adaptive compute inside a run: stop sampling a problem once its answers agree, verify only split votes.

The policies are the offline ones of ``analysis.adaptive`` (one implementation, replayed there on
recorded samples, applied here to live ones): ``StopWhenAgree.walk`` gives a problem's sampling rounds and
its next draw from the answer classes seen so far, ``VerifyWhenSplit.verifies`` whether its solutions are
verified. ``adaptive`` in the config (``pipeline.config.AdaptiveConfig``) turns them on.

Sampling rounds run inside the solver replica (:class:`AdaptiveSolveStage`): it draws a problem's first
round, grades it (answer classes continue the problem's earlier ones), asks the policy, and draws the
next round of the problems that go on, so the engine stays up for all rounds and other problems'
requests fill it meanwhile. A problem comes back to the driver once the policy stops it, and its new
solutions are committed as one unit, like a fixed-budget problem: a kill loses only problems in flight,
and the rerun asks the policy again from the committed solutions (:func:`next_rounds`). Every round
sends the problem's prompt again (the prefix cache serves most of it): its solutions' ``prompt_tokens`` and
``cached_prompt_tokens`` are the sums over the rounds of this invocation, so prompt − cached is what the
engine computed.

Decisions are not sent back from the replicas: :func:`record_decisions` replays the same policy over the
committed answer classes (in solution_idx order) and writes the ``decisions`` rows not yet present, so
they always describe exactly what is on disk, and a kill between the solutions' commit and the
decisions' leaves nothing a rerun does not fill in.
"""
from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pyarrow as pa

from analysis.adaptive import StopWhenAgree, VerifyWhenSplit, top_votes
from pipeline.config import RunConfig
from pipeline.solve import GRADE_COLUMNS, SAMPLE_COLUMNS, GradeStage, SolveStage
from pipeline.store import TableStore


def stop_policy(cfg: RunConfig) -> StopWhenAgree | None:
    """The configured stopping policy (None: every problem gets S solutions)."""
    a = cfg.adaptive
    return StopWhenAgree(a.k, cfg.budget.solutions, a.round_size) if a.stop_when_agree else None


def verify_policy(cfg: RunConfig) -> VerifyWhenSplit | None:
    """The configured verification policy (None: every solution is verified)."""
    a, b = cfg.adaptive, cfg.budget
    return VerifyWhenSplit(b.solutions, b.verifications, a.agreement) if a.verify_when_split else None


def committed_classes(store: TableStore, problem_ids: set[str], max_idx: int) -> dict[str, np.ndarray]:
    """Answer classes (-1: no answer) of the committed solutions with solution_idx < ``max_idx`` of
    ``problem_ids``, in solution_idx order."""
    found: dict[str, dict[int, int]] = {p: {} for p in problem_ids}
    for t in store.iter_columns(["problem_id", "solution_idx", "answer_class"]):
        for p, i, c in zip(*(t.column(k).to_pylist() for k in ("problem_id", "solution_idx", "answer_class"))):
            if p in found and i < max_idx:
                found[p][i] = -1 if c is None else c
    return {p: np.array([c for _, c in sorted(d.items())], int) for p, d in found.items()}


def next_rounds(cfg: RunConfig, stores: dict[str, TableStore], requests: pa.Table) -> pa.Table:
    """The pending solve requests whose policy goes on, each asking for its next round (``n``), with the
    problem's committed answer classes (``prior_class``) for the replica's decisions."""
    policy = stop_policy(cfg)
    ids = requests.column("problem_id").to_pylist()
    classes = committed_classes(stores["solutions"], set(ids), cfg.budget.solutions)
    more = [policy.walk(classes[p])[1] for p in ids]
    out = (requests.set_column(requests.column_names.index("n"), "n", pa.array(more, pa.int32()))
           .append_column("prior_class", pa.array([classes[p].tolist() for p in ids], pa.list_(pa.int32()))))
    return out.filter(pa.array([m > 0 for m in more], pa.bool_()))


class AdaptiveSolveStage(SolveStage):
    """Ray Data stage: one solver replica drawing each problem's rounds until the stopping policy ends them;
    problem rows in (``n`` = first round, ``prior_text`` / ``prior_class`` = committed solutions), the
    same rows with all new samples graded out (the columns of SolveStage followed by GradeStage)."""

    def __init__(self, model, seed: int, sampling, policy: StopWhenAgree, grading: dict,
                 engine_timeout_s: float | None = None):
        super().__init__(model, seed, sampling, engine_timeout_s)
        self.policy = policy
        self.grader = GradeStage(**grading)
        self._grading = threading.Lock()  # two stage calls run at once; the grading pool serves one

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.num_rows
        classes = [list(c or []) for c in batch.column("prior_class").to_pylist()]
        prior = [list(t or []) for t in batch.column("prior_text").to_pylist()]
        more = batch.column("n").to_pylist()
        new = [{c: [] for c in SAMPLE_COLUMNS + GRADE_COLUMNS} for _ in range(rows)]
        sent, cached = [0] * rows, [0] * rows  # prompt tokens over the problem's rounds (see the module doc)
        while todo := [i for i in range(rows) if more[i] > 0]:
            sub = batch.take(todo)
            sub = (sub.set_column(sub.column_names.index("n"), "n", pa.array([more[i] for i in todo], pa.int32()))
                   .set_column(sub.column_names.index("prior_text"), "prior_text",
                               pa.array([prior[i] + new[i]["text"] for i in todo], pa.list_(pa.string()))))
            out = super().__call__(sub)
            with self._grading:
                out = self.grader(out)
            for j, i in enumerate(todo):
                for c in new[i]:
                    new[i][c] += out.column(c)[j].as_py()
                sent[i] += out.column("prompt_tokens")[j].as_py()
                cached[i] += out.column("cached_prompt_tokens")[j].as_py()
                classes[i] += [-1 if c is None else c for c in out.column("answer_class")[j].as_py()]
                more[i] = self.policy.walk(np.array(classes[i], int))[1]
        types = {c: out.schema.field(c).type for c in new[0]}
        result = batch.drop_columns(["prompt_token_ids"])
        cols = {
            "prompt_tokens": pa.array(sent, pa.int32()),
            "cached_prompt_tokens": pa.array(cached, pa.int32()),
            **{c: pa.array([r[c] for r in new], types[c]) for c in SAMPLE_COLUMNS},
            "replica_id": pa.array([self.replica_id] * rows, pa.string()),
            "node_id": pa.array([self.node_id] * rows, pa.string()),
            **self.timing_columns(rows),
            **{c: pa.array([r[c] for r in new], types[c]) for c in GRADE_COLUMNS},
        }
        for name, col in cols.items():
            result = result.append_column(name, col)
        return result


def _policy_name(policy) -> str:
    if isinstance(policy, StopWhenAgree):
        return f"stop_when_agree(k={policy.k},step={policy.step},S={policy.s_max})"
    return f"verify_when_split(agreement={policy.agreement:g})"


def record_decisions(cfg: RunConfig, stores: dict[str, TableStore], revision: int,
                     problem_ids: list[str]) -> tuple[list[str], dict]:
    """Write the ``decisions`` rows of ``problem_ids`` that are not on disk yet (replayed from the committed
    solutions, see the module doc); returns the problems to verify and a summary for the manifest."""
    stop, check = stop_policy(cfg), verify_policy(cfg)
    classes = committed_classes(stores["solutions"], set(problem_ids), cfg.budget.solutions)
    store = TableStore(cfg.run_dir, "decisions")
    done = store.done_units(["problem_id", "stage", "solutions_so_far"])
    rows: list[dict] = []
    to_verify, tally = [], Counter()

    def add(p: str, stage: str, seen: np.ndarray, rnd: int, decision: str, reason: str, policy) -> None:
        tally[f"{stage}_{decision}_{reason}"] += 1
        if (p, stage, seen.size) not in done:
            rows.append(dict(run_id=cfg.run_id, problem_id=p, stage=stage, solutions_so_far=seen.size, round=rnd,
                             decision=decision, reason=reason, top_votes=top_votes(seen),
                             policy=_policy_name(policy), revision=revision))

    for p in problem_ids:
        c = classes[p]
        rounds = 1
        if stop is not None:
            walked, _ = stop.walk(c)
            for i, r in enumerate(walked):
                add(p, "solve", c[: r.solutions], i, "continue" if r.more else "stop", r.reason, stop)
            rounds = len(walked)
        if check is not None and c.size:
            verify = check.verifies(c)
            add(p, "verify", c, rounds, "verify" if verify else "skip", "split" if verify else "agree", check)
            if verify:
                to_verify.append(p)
    if rows:
        store.commit(pa.Table.from_pylist(rows))
    summary = {"problems": len(problem_ids), "solutions": int(sum(c.size for c in classes.values())),
               "decisions": dict(sorted(tally.items()))}
    return (to_verify if check is not None else list(problem_ids)), summary
