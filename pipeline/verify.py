"""Verify stage: V generative verifications per solution, their verdicts and P(Yes).

The unit is one *solution* row (problem text + solution text in, and ``verify_n`` / ``verify_first_idx``:
how many verifications it wants and the verification_idx of the first, >0 when a run is extended to a
larger V); the stage adds ``v_``-prefixed list columns with its verifications (``n`` in one request,
prefix caching on, so the critiques share the prompt). ``verification_rows`` turns such rows into
``verifications`` table rows.

P(Yes) is read from the engine's *raw* logprobs (before temperature / top-p) of the prompt's yes and
no tokens, requested with ``logprob_token_ids=[yes_id, no_id]``, and normalised over the two:
- at the verdict position of the critique (the last yes/no token right after the verdict cue):
  ``p_yes_source = "verdict_token"``;
- when the critique has no verdict: the critique (cut before any half-written verdict) is followed by
  the verdict cue on its own line, and P(Yes) comes from a one-token continuation:
  ``p_yes_source = "verdict_cue"`` (``parse_status`` stays ``no_verdict``);
- when even that does not fit in ``max_model_len``, or the prompt itself does not: p_yes is null,
  ``p_yes_source = "none"``.
"""
from __future__ import annotations

from dataclasses import replace

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import faults
from pipeline.config import ModelConfig
from pipeline.engine import Replica, SamplingUsed, render_ids, sampling_params
from pipeline.parse import p_yes_from_logprobs, parse_verdict, verdict_position
from pipeline.prompts import Prompt, get_prompt, strip_thinking
from pipeline.solve import list_positions

# Per-verification list columns the stage adds (name in the stage output -> table column).
V_COLUMNS = {
    "v_text": "text", "v_verdict": "verdict", "v_p_yes": "p_yes", "v_p_yes_source": "p_yes_source",
    "v_parse_status": "parse_status", "v_completion_tokens": "completion_tokens",
    "v_finish_reason": "finish_reason",
}
V_TYPES = {
    "v_text": pa.string(), "v_verdict": pa.bool_(), "v_p_yes": pa.float64(), "v_p_yes_source": pa.string(),
    "v_parse_status": pa.string(), "v_completion_tokens": pa.int32(), "v_finish_reason": pa.string(),
}
# Per-solution scalar columns the stage adds.
V_SCALARS = {"v_prompt_tokens": "prompt_tokens", "v_cached_prompt_tokens": "cached_prompt_tokens",
             "v_replica_id": "replica_id", "v_node_id": "node_id"}


def cue_continuation(prompt: Prompt, critique: str) -> str:
    """The critique cut before any (half-written) verdict, then the verdict cue on its own line."""
    cue = prompt.verdict_cue or ""
    at = critique.rfind(cue.strip())
    head = (critique[:at] if at >= 0 else critique).rstrip()
    sep = "\n" if head and not cue.startswith("\n") else ""
    return head + sep + cue


def verdict_token_ids(tokenizer, prompt: Prompt) -> tuple[int, int]:
    """Ids of the prompt's yes / no texts in this tokenizer; each must be exactly one token."""
    ids = []
    for what, text in (("yes_text", prompt.yes_text), ("no_text", prompt.no_text)):
        enc = tokenizer.encode(text, add_special_tokens=False)
        if len(enc) != 1:
            raise ValueError(f"prompt {prompt.name!r}: {what} {text!r} is {len(enc)} tokens {enc} in this "
                             f"tokenizer; P(Yes) needs a single verdict token")
        ids.append(enc[0])
    return ids[0], ids[1]


class VerifyStage(Replica):
    """Ray Data stage: one verifier replica; solution rows in, the same rows with their verifications out."""

    def __init__(self, model: ModelConfig, seed: int, prompt_name: str, sampling: SamplingUsed,
                 engine_timeout_s: float | None = None):
        super().__init__(model, seed, role="verifier", engine_timeout_s=engine_timeout_s)
        self.prompt = get_prompt(prompt_name)
        self.yes_id, self.no_id = verdict_token_ids(self.tokenizer, self.prompt)
        self.sampling = sampling
        self._params: dict[int, object] = {}  # SamplingParams by n
        self.cue_params = sampling_params(replace(sampling, max_tokens=1), n=1,
                                          logprob_token_ids=[self.yes_id, self.no_id])

    def _p_yes(self, logprobs_at) -> float:
        return p_yes_from_logprobs(logprobs_at[self.yes_id].logprob, logprobs_at[self.no_id].logprob)

    def __call__(self, batch: pa.Table) -> pa.Table:
        limit = self.model.max_model_len
        prompts = [render_ids(self.tokenizer, self.prompt, problem=p, solution=strip_thinking(s))
                   for p, s in zip(batch.column("problem").to_pylist(), batch.column("text").to_pylist())]
        wanted = batch.column("verify_n").to_pylist()
        fits = [i for i, ids in enumerate(prompts) if len(ids) < limit]
        params = [self._params.setdefault(wanted[i], sampling_params(
            self.sampling, n=wanted[i], logprob_token_ids=[self.yes_id, self.no_id])) for i in fits]
        outs = dict(zip(fits, self.generate([prompts[i] for i in fits], params)))
        faults.hit("replica_verify")
        rows: list[dict[str, list]] = []
        cue_jobs: list[tuple[int, int, list[int]]] = []  # (row, verification, continuation ids)
        for i, ids in enumerate(prompts):
            r = {k: [] for k in V_TYPES}
            if i not in outs:  # prompt longer than the verifier's context: recorded, not generated
                for _ in range(wanted[i]):
                    for k, v in (("v_text", None), ("v_verdict", None), ("v_p_yes", None), ("v_p_yes_source", "none"),
                                 ("v_parse_status", "unparsed"), ("v_completion_tokens", 0),
                                 ("v_finish_reason", "prompt_too_long")):
                        r[k].append(v)
            else:
                for j, c in enumerate(outs[i].outputs):
                    verdict, status = parse_verdict(self.prompt, c.text)
                    pos = verdict_position(c.token_ids, self.yes_id, self.no_id, self.prompt.verdict_cue,
                                           self.tokenizer.decode)
                    p_yes, source = (self._p_yes(c.logprobs[pos]), "verdict_token") if pos is not None else (None, "none")
                    if pos is None:
                        cont = ids + self.tokenizer.encode(cue_continuation(self.prompt, c.text), add_special_tokens=False)
                        if len(cont) < limit:
                            cue_jobs.append((i, j, cont))
                    for k, v in (("v_text", c.text), ("v_verdict", verdict), ("v_p_yes", p_yes),
                                 ("v_p_yes_source", source), ("v_parse_status", status),
                                 ("v_completion_tokens", len(c.token_ids)), ("v_finish_reason", c.finish_reason)):
                        r[k].append(v)
            rows.append(r)
        cue_outs = self.generate([ids for _, _, ids in cue_jobs], self.cue_params)
        for (i, j, _), o in zip(cue_jobs, cue_outs):
            rows[i]["v_p_yes"][j] = self._p_yes(o.outputs[0].logprobs[0])
            rows[i]["v_p_yes_source"][j] = "verdict_cue"
        for k, type_ in V_TYPES.items():
            batch = batch.append_column(k, pa.array([r[k] for r in rows], pa.list_(type_)))
        scalars = {
            "v_prompt_tokens": pa.array([len(p) for p in prompts], pa.int32()),
            "v_cached_prompt_tokens": pa.array([outs[i].num_cached_tokens or 0 if i in outs else 0
                                                for i in range(len(prompts))], pa.int32()),
            "v_replica_id": pa.array([self.replica_id] * len(prompts), pa.string()),
            "v_node_id": pa.array([self.node_id] * len(prompts), pa.string()),
            **self.timing_columns(len(prompts)),
            # extra prompt + generated tokens of the cue continuations (compute accounting only)
            "v_cue_tokens": pa.array([sum(len(c) + 1 for r, _, c in cue_jobs if r == i) for i in range(len(prompts))],
                                     pa.int64()),
        }
        for k, col in scalars.items():
            batch = batch.append_column(k, col)
        return batch


def verification_rows(batch: pa.Table, run_id: str, verifier: str, kind: str, model_name: str,
                      seed: int, revision: int) -> pa.Table:
    """Verified solution rows -> ``verifications`` rows (one per verification; verification_idx =
    verify_first_idx + sample index)."""
    parents, idx = list_positions(batch.column("v_text"))
    n = len(parents)
    cols = {
        "run_id": pa.array([run_id] * n, pa.string()),
        "problem_id": pc.take(batch.column("problem_id"), parents),
        "solution_idx": pc.take(batch.column("solution_idx"), parents),
        "verifier": pa.array([verifier] * n, pa.string()),
        "verification_idx": pc.cast(pc.add(pc.take(batch.column("verify_first_idx"), parents), idx), pa.int32()),
        "verifier_kind": pa.array([kind] * n, pa.string()),
    }
    for src, dst in V_COLUMNS.items():
        cols[dst] = pc.list_flatten(batch.column(src))
    for src, dst in V_SCALARS.items():
        cols[dst] = pc.take(batch.column(src), parents)
    cols["seed"] = pa.array([seed] * n, pa.int64())
    cols["model"] = pa.array([model_name] * n, pa.string())
    cols["revision"] = pa.array([revision] * n, pa.int32())
    return pa.table(cols)
