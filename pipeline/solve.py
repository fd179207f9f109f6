"""Solve and grade stages.

The unit that flows through both stages is one *problem* row: its prompt token ids in, and list
columns with its samples out (``n`` samples in one request, so the engine computes the prompt once
and the children share it through the prefix cache). A problem is never split across batches, which
keeps the driver's commits whole. ``solution_rows`` turns such rows into ``solutions`` table rows.

Top-ups (a run extended to a larger S): a request row says how many samples it wants (``n``) and the
solution_idx of its first one (``first_idx``), and carries the problem's earlier solution texts
(``prior_text``) so grading assigns the new answers the answer classes the earlier ones already have.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import faults
from pipeline.config import ConfigError, ModelConfig, RunConfig
from pipeline.datasets import Problem
from pipeline.engine import Replica, SamplingUsed, has_unknown_tokens, render_ids, sampling_params
from pipeline.prompts import get_prompt

# Per-sample list columns the solve stage adds to each problem row.
SAMPLE_COLUMNS = ("text", "completion_tokens", "finish_reason")
# Per-sample list columns the grade stage adds.
GRADE_COLUMNS = ("extracted_answer", "answer_class", "is_correct", "grade_status", "grader_version", "steps")


@dataclass(frozen=True)
class SolveInputs:
    """What the driver prepared for the solve stage: problem rows and the ``problems`` table."""

    requests: pa.Table  # problem_id, problem, answer, prompt_token_ids (problems with a usable prompt)
    problems: pa.Table  # the problems table rows, skip_reason set where the prompt does not fit


def prepare_solve(cfg: RunConfig, problems: list[Problem], tokenizer) -> SolveInputs:
    """Render and tokenise every solver prompt; record prompts that do not fit as skipped.

    Raises ConfigError naming the file line and problem id when the tokenizer cannot represent the
    text (its unknown token appears), before any engine starts.
    """
    prompt = get_prompt(cfg.prompt.solver)
    limit = cfg.solver.max_model_len
    req: dict[str, list] = {"problem_id": [], "problem": [], "answer": [], "prompt_token_ids": []}
    skip: list[str | None] = []
    for p in problems:
        ids = render_ids(tokenizer, prompt, problem=p.problem)
        if has_unknown_tokens(tokenizer, ids):
            raise ConfigError(
                f"dataset {cfg.dataset.name!r} ({cfg.dataset.file}) line {p.line}, problem {p.problem_id!r}: "
                f"the solver tokenizer of {cfg.solver.name!r} cannot represent its text (unknown token); "
                f"use a model whose vocabulary covers it or clean the dataset"
            )
        if len(ids) >= limit:
            skip.append(f"prompt_too_long: {len(ids)} tokens >= solver.max_model_len {limit}")
            continue
        skip.append(None)
        for k, v in (("problem_id", p.problem_id), ("problem", p.problem), ("answer", p.answer),
                     ("prompt_token_ids", ids)):
            req[k].append(v)
    problems_table = pa.table({
        "run_id": [cfg.run_id] * len(problems),
        "problem_id": [p.problem_id for p in problems],
        "dataset": [cfg.dataset.name] * len(problems),
        "problem": [p.problem for p in problems],
        "answer": [p.answer for p in problems],
        "level": pa.array([p.level for p in problems], pa.int32()),
        "subject": [p.subject for p in problems],
        "reference_steps": pa.array([p.reference_steps for p in problems], pa.list_(pa.string())),
        "skip_reason": pa.array(skip, pa.string()),
    })
    requests = pa.table({
        "problem_id": pa.array(req["problem_id"], pa.string()),
        "problem": pa.array(req["problem"], pa.string()),
        "answer": pa.array(req["answer"], pa.string()),
        "prompt_token_ids": pa.array(req["prompt_token_ids"], pa.list_(pa.int32())),
    })
    return SolveInputs(requests=requests, problems=problems_table)


class SolveStage(Replica):
    """Ray Data stage: one solver replica; problem rows in, the same rows with their ``n`` samples out."""

    def __init__(self, model: ModelConfig, seed: int, sampling: SamplingUsed, engine_timeout_s: float | None = None):
        super().__init__(model, seed, role="solver", engine_timeout_s=engine_timeout_s)
        self.sampling = sampling
        self._params: dict[int, object] = {}

    def __call__(self, batch: pa.Table) -> pa.Table:
        prompts = batch.column("prompt_token_ids").to_pylist()
        params = [self._params.setdefault(n, sampling_params(self.sampling, n=n)) for n in batch.column("n").to_pylist()]
        outs = self.generate(prompts, params)
        faults.hit("replica_solve")
        cols = {
            "prompt_tokens": pa.array([len(p) for p in prompts], pa.int32()),
            "cached_prompt_tokens": pa.array([o.num_cached_tokens or 0 for o in outs], pa.int32()),
            "text": pa.array([[c.text for c in o.outputs] for o in outs], pa.list_(pa.string())),
            "completion_tokens": pa.array([[len(c.token_ids) for c in o.outputs] for o in outs],
                                          pa.list_(pa.int32())),
            "finish_reason": pa.array([[c.finish_reason for c in o.outputs] for o in outs], pa.list_(pa.string())),
            "replica_id": pa.array([self.replica_id] * len(outs), pa.string()),
            "node_id": pa.array([self.node_id] * len(outs), pa.string()),
            **self.timing_columns(len(outs)),
        }
        out = batch.drop_columns(["prompt_token_ids"])
        for name, col in cols.items():
            out = out.append_column(name, col)
        return out


class GradeStage:
    """Ray Data stage: grades each problem row's samples with the dataset's grader (process pool, timeout),
    after the problem's earlier solutions (``prior_text``) so answer classes continue theirs."""

    def __init__(self, grader: str, timeout_s: float, processes: int, step_rule: str):
        from pipeline.grade import GradingPool

        self.pool = GradingPool(grader, timeout_s=timeout_s, processes=processes)
        self.step_rule = step_rule

    def __call__(self, batch: pa.Table) -> pa.Table:
        from pipeline.steps import solution_steps

        texts = batch.column("text").to_pylist()
        prior = [p or [] for p in batch.column("prior_text").to_pylist()]
        grades = [gs[len(p):] for p, gs in zip(prior, self.pool.grade_many(
            [(a, p + t) for a, p, t in zip(batch.column("answer").to_pylist(), prior, texts)]))]
        cols = {
            "extracted_answer": (pa.string(), [[g.extracted_answer for g in gs] for gs in grades]),
            "answer_class": (pa.int32(), [[g.answer_class for g in gs] for gs in grades]),
            "is_correct": (pa.bool_(), [[g.is_correct for g in gs] for gs in grades]),
            "grade_status": (pa.string(), [[g.grade_status for g in gs] for gs in grades]),
            "grader_version": (pa.string(), [[g.grader_version for g in gs] for gs in grades]),
            "steps": (pa.list_(pa.string()), [[solution_steps(t, self.step_rule) for t in ts] for ts in texts]),
        }
        for name, (type_, values) in cols.items():
            batch = batch.append_column(name, pa.array(values, pa.list_(type_)))
        return batch

    def __del__(self):
        self.pool.close()


def list_positions(lists: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """For each element of the flattened ``lists``: the index of its row and its position in the list."""
    lists = lists.combine_chunks() if isinstance(lists, pa.ChunkedArray) else lists
    lengths = pc.fill_null(pc.list_value_length(lists), 0)
    parents = pc.list_parent_indices(lists)
    starts = pc.subtract(pc.cumulative_sum(lengths), lengths)
    pos = pc.subtract(pa.array(range(len(parents)), pa.int64()), pc.take(starts, parents))
    return parents, pc.cast(pos, pa.int32())


def solution_rows(batch: pa.Table, run_id: str, model_name: str, seed: int, revision: int) -> pa.Table:
    """Graded problem rows -> ``solutions`` rows (one per sample; solution_idx = first_idx + sample index)."""
    parents, idx = list_positions(batch.column("text"))
    n = len(parents)
    cols = {
        "run_id": pa.array([run_id] * n, pa.string()),
        "problem_id": pc.take(batch.column("problem_id"), parents),
        "solution_idx": pc.cast(pc.add(pc.take(batch.column("first_idx"), parents), idx), pa.int32()),
    }
    for name in SAMPLE_COLUMNS + GRADE_COLUMNS:
        cols[name] = pc.list_flatten(batch.column(name))
    for name in ("prompt_tokens", "cached_prompt_tokens", "replica_id", "node_id"):
        cols[name] = pc.take(batch.column(name), parents)
    cols["seed"] = pa.array([seed] * n, pa.int64())
    cols["model"] = pa.array([model_name] * n, pa.string())
    cols["revision"] = pa.array([revision] * n, pa.int32())
    return pa.table(cols)
