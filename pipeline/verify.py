"""Verify stage: V verifications per solution by a generative verifier (GenRM or critic), or one
pass of a discriminative process reward model; their verdicts, P(Yes), earliest wrong step, step scores.

The unit is one *solution* row (problem text, solution text and its ``steps`` in, and ``verify_n`` /
``verify_first_idx``: how many verifications it wants and the verification_idx of the first, >0 when a
run is extended to a larger V); the stage adds ``v_``-prefixed list columns with its verifications
(``n`` in one request, prefix caching on, so the critiques share the prompt). ``verification_rows``
turns such rows into ``verifications`` table rows.

Kinds (the verifier prompt's ``kind``, equal to ``verification.kind``):
- ``genrm`` (:class:`VerifyStage`): the critique ends in a Yes/No verdict.
- ``critic`` (:class:`VerifyStage`, ProcessBench style; Self-PRM when the solver's engine runs it): the
  prompt shows the solution's ``steps`` and the critique ends in ``\\boxed{k}``, k the earliest wrong
  step (0-based) or -1. ``predicted_error_step`` = k and ``verdict`` = (k == -1) with ``parse_status``
  ``ok``; no box, a non-integer, k < -1 or k past the last step give nulls and ``unparsed`` (never a
  guess; ProcessBench counts it wrong). p_yes only where the prompt has verdict tokens (no shipped
  critic prompt has: p_yes is null, ``p_yes_source = "none"``).
- ``prm`` (:class:`PrmStage`): a token-classification pooling engine reads the prompt with the prompt's
  ``step_separator`` after every step; ``step_scores`` holds P(step correct) (class 1) at each separator,
  one verification row per solution (``text``, ``verdict``, ``p_yes`` null; no completion tokens).

P(Yes) is read from the engine's *raw* logprobs (before temperature / top-p) of the prompt's yes and
no tokens, requested with ``logprob_token_ids=[yes_id, no_id]``, and normalised over the two:
- at the verdict position of the critique (the last yes/no token right after the verdict cue):
  ``p_yes_source = "verdict_token"``;
- when a GenRM critique has no verdict: the critique (cut before any half-written verdict) is followed
  by the verdict cue on its own line, and P(Yes) comes from a one-token continuation:
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
from pipeline.parse import p_yes_from_logprobs, parse_critic, parse_verdict, verdict_position
from pipeline.prompts import Prompt, get_prompt, strip_thinking
from pipeline.solve import list_positions

# PRM heads have two classes, 0 = step wrong, 1 = step correct (the toy PRM and Qwen2.5-Math-PRM alike).
PRM_CORRECT_CLASS = 1

# Per-verification list columns the stages add (name in the stage output -> table column).
V_COLUMNS = {
    "v_text": "text", "v_verdict": "verdict", "v_p_yes": "p_yes", "v_p_yes_source": "p_yes_source",
    "v_parse_status": "parse_status", "v_predicted_error_step": "predicted_error_step",
    "v_step_scores": "step_scores", "v_completion_tokens": "completion_tokens", "v_finish_reason": "finish_reason",
}
V_TYPES = {
    "v_text": pa.string(), "v_verdict": pa.bool_(), "v_p_yes": pa.float64(), "v_p_yes_source": pa.string(),
    "v_parse_status": pa.string(), "v_predicted_error_step": pa.int32(), "v_step_scores": pa.list_(pa.float64()),
    "v_completion_tokens": pa.int32(), "v_finish_reason": pa.string(),
}
# Per-solution scalar columns the stages add.
V_SCALARS = {"v_prompt_tokens": "prompt_tokens", "v_cached_prompt_tokens": "cached_prompt_tokens",
             "v_replica_id": "replica_id", "v_node_id": "node_id"}
# One verification whose prompt is longer than the verifier's context: recorded, not generated.
_TOO_LONG = {"v_text": None, "v_verdict": None, "v_p_yes": None, "v_p_yes_source": "none",
             "v_parse_status": "unparsed", "v_predicted_error_step": None, "v_step_scores": None,
             "v_completion_tokens": 0, "v_finish_reason": "prompt_too_long"}


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


def separator_token_id(tokenizer, prompt: Prompt) -> int:
    """Id of a PRM prompt's step separator in this tokenizer; it must be exactly one token."""
    enc = tokenizer.encode(prompt.step_separator, add_special_tokens=False)
    if len(enc) != 1:
        raise ValueError(f"prompt {prompt.name!r}: step_separator {prompt.step_separator!r} is {len(enc)} tokens "
                         f"{enc} in this tokenizer; step scores are read at a single separator token")
    return enc[0]


def check_verifier_prompt(tokenizer, prompt: Prompt) -> None:
    """Fail before any engine starts when the verifier's tokenizer cannot serve ``prompt``'s kind."""
    if prompt.kind == "prm":
        separator_token_id(tokenizer, prompt)
    elif prompt.yes_text and prompt.no_text:
        verdict_token_ids(tokenizer, prompt)


def prm_step_scores(output, token_ids: list[int], separator: int) -> list[float]:
    """P(step correct) at each separator token of a PRM input, from a token-classification output."""
    correct = output.outputs.data[:, PRM_CORRECT_CLASS].tolist()  # (tokens, classes) probabilities
    return [correct[t] for t, tok in enumerate(token_ids) if tok == separator]


def critic_reading(text: str, n_steps: int) -> tuple[int | None, bool | None, str]:
    """A critic's (predicted_error_step, verdict, parse_status): see the module doc."""
    k, status = parse_critic(text)
    if k is None or k >= n_steps:
        return None, None, "unparsed"
    return k, k == -1, status


def _append_columns(batch: pa.Table, rows: list[dict[str, list]], prompts: list[list[int]], cached: list[int],
                    replica: Replica, cue_tokens: list[int]) -> pa.Table:
    for k, type_ in V_TYPES.items():
        batch = batch.append_column(k, pa.array([r[k] for r in rows], pa.list_(type_)))
    scalars = {
        "v_prompt_tokens": pa.array([len(p) for p in prompts], pa.int32()),
        "v_cached_prompt_tokens": pa.array(cached, pa.int32()),
        "v_replica_id": pa.array([replica.replica_id] * len(prompts), pa.string()),
        "v_node_id": pa.array([replica.node_id] * len(prompts), pa.string()),
        **replica.timing_columns(len(prompts)),
        # extra prompt + generated tokens of the cue continuations (compute accounting only)
        "v_cue_tokens": pa.array(cue_tokens, pa.int64()),
    }
    for k, col in scalars.items():
        batch = batch.append_column(k, col)
    return batch


class VerifyStage(Replica):
    """Ray Data stage: one generative verifier replica (genrm or critic prompt); solution rows in, the same
    rows with their verifications out."""

    def __init__(self, model: ModelConfig, seed: int, prompt_name: str, sampling: SamplingUsed,
                 engine_timeout_s: float | None = None):
        super().__init__(model, seed, role="verifier", engine_timeout_s=engine_timeout_s)
        self.prompt = get_prompt(prompt_name)
        self.critic = self.prompt.kind == "critic"
        self.verdict_ids = (verdict_token_ids(self.tokenizer, self.prompt)
                            if self.prompt.yes_text and self.prompt.no_text else None)
        extra = {"logprob_token_ids": list(self.verdict_ids)} if self.verdict_ids else {}
        self.sampling, self.extra = sampling, extra
        self._params: dict[int, object] = {}  # SamplingParams by n
        self.cue_params = sampling_params(replace(sampling, max_tokens=1), n=1, **extra) if extra else None

    def _p_yes(self, logprobs_at) -> float:
        yes_id, no_id = self.verdict_ids
        return p_yes_from_logprobs(logprobs_at[yes_id].logprob, logprobs_at[no_id].logprob)

    def _render(self, problem: str, text: str, steps: list[str] | None) -> list[int]:
        if self.critic:
            return render_ids(self.tokenizer, self.prompt, problem=problem, steps=steps or [])
        return render_ids(self.tokenizer, self.prompt, problem=problem, solution=strip_thinking(text))

    def _read(self, text: str, token_ids, logprobs, n_steps: int) -> tuple[dict, bool]:
        """One completion's columns, and whether it needs a verdict-cue continuation for its P(Yes)."""
        if self.critic:
            step, verdict, status = critic_reading(text, n_steps)
        else:
            step, (verdict, status) = None, parse_verdict(self.prompt, text)
        pos = None if self.verdict_ids is None else verdict_position(
            token_ids, *self.verdict_ids, self.prompt.verdict_cue, self.tokenizer.decode)
        p_yes, source = (self._p_yes(logprobs[pos]), "verdict_token") if pos is not None else (None, "none")
        cols = {"v_text": text, "v_verdict": verdict, "v_p_yes": p_yes, "v_p_yes_source": source,
                "v_parse_status": status, "v_predicted_error_step": step, "v_step_scores": None,
                "v_completion_tokens": len(token_ids)}
        return cols, pos is None and not self.critic  # a critic's verdict is its index: no cue, no guess

    def __call__(self, batch: pa.Table) -> pa.Table:
        limit = self.model.max_model_len
        steps = batch.column("steps").to_pylist()
        prompts = [self._render(p, s, st) for p, s, st in
                   zip(batch.column("problem").to_pylist(), batch.column("text").to_pylist(), steps)]
        wanted = batch.column("verify_n").to_pylist()
        fits = [i for i, ids in enumerate(prompts) if len(ids) < limit]
        params = [self._params.setdefault(wanted[i], sampling_params(self.sampling, n=wanted[i], **self.extra))
                  for i in fits]
        outs = dict(zip(fits, self.generate([prompts[i] for i in fits], params)))
        faults.hit("replica_verify")
        rows: list[dict[str, list]] = []
        cue_jobs: list[tuple[int, int, list[int]]] = []  # (row, verification, continuation ids)
        for i, ids in enumerate(prompts):
            r: dict[str, list] = {k: [] for k in V_TYPES}
            if i not in outs:
                for _ in range(wanted[i]):
                    for k, v in _TOO_LONG.items():
                        r[k].append(v)
            else:
                for j, c in enumerate(outs[i].outputs):
                    cols, needs_cue = self._read(c.text, c.token_ids, c.logprobs, len(steps[i] or []))
                    if needs_cue:
                        cont = ids + self.tokenizer.encode(cue_continuation(self.prompt, c.text), add_special_tokens=False)
                        if len(cont) < limit:
                            cue_jobs.append((i, j, cont))
                    for k, v in {**cols, "v_finish_reason": c.finish_reason}.items():
                        r[k].append(v)
            rows.append(r)
        cue_outs = self.generate([ids for _, _, ids in cue_jobs], self.cue_params) if cue_jobs else []
        for (i, j, _), o in zip(cue_jobs, cue_outs):
            rows[i]["v_p_yes"][j] = self._p_yes(o.outputs[0].logprobs[0])
            rows[i]["v_p_yes_source"][j] = "verdict_cue"
        cached = [outs[i].num_cached_tokens or 0 if i in outs else 0 for i in range(len(prompts))]
        cue_tokens = [sum(len(c) + 1 for r, _, c in cue_jobs if r == i) for i in range(len(prompts))]
        return _append_columns(batch, rows, prompts, cached, self, cue_tokens)


class PrmStage(Replica):
    """Ray Data stage: one process-reward-model replica (a vLLM token-classification pooling engine);
    solution rows in, the same rows with one verification each (``step_scores``) out."""

    def __init__(self, model: ModelConfig, seed: int, prompt_name: str, engine_timeout_s: float | None = None):
        from vllm import PoolingParams

        super().__init__(model, seed, role="verifier", engine_timeout_s=engine_timeout_s, pooling=True)
        self.prompt = get_prompt(prompt_name)
        self.separator = separator_token_id(self.tokenizer, self.prompt)
        self.params = PoolingParams(task="token_classify")

    def __call__(self, batch: pa.Table) -> pa.Table:
        limit = self.model.max_model_len
        prompts = [render_ids(self.tokenizer, self.prompt, problem=p, steps=st or [])
                   for p, st in zip(batch.column("problem").to_pylist(), batch.column("steps").to_pylist())]
        fits = [i for i, ids in enumerate(prompts) if len(ids) <= limit]
        outs = dict(zip(fits, self.generate([prompts[i] for i in fits], self.params)))
        faults.hit("replica_verify")
        rows = []
        for i, ids in enumerate(prompts):
            if i not in outs:
                rows.append({k: [v] for k, v in _TOO_LONG.items()})
                continue
            scores = prm_step_scores(outs[i], ids, self.separator)
            rows.append({"v_text": [None], "v_verdict": [None], "v_p_yes": [None], "v_p_yes_source": ["none"],
                         "v_parse_status": [None], "v_predicted_error_step": [None], "v_step_scores": [scores],
                         "v_completion_tokens": [0], "v_finish_reason": ["stop"]})
        cached = [getattr(outs.get(i), "num_cached_tokens", 0) or 0 for i in range(len(prompts))]
        return _append_columns(batch, rows, prompts, cached, self, [0] * len(prompts))


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
