"""A stand-in engine: canned completions, returned at once, so a run measures the pipeline's own cost.

Selected by a model preset's ``engine: standin`` (``conf/model/standin.yaml``); used by
``bench/pipeline_overhead.py`` and its test, never by a real run. It has the surface of ``vllm.LLM``
that ``pipeline.engine`` drives — ``get_tokenizer()`` and ``llm_engine`` with ``add_request``,
``has_unfinished_requests`` and ``step`` — and each ``step`` finishes every queued request: an
infinitely fast engine. The preset's ``path`` only supplies the tokenizer.

Completions are in the toy world's formats (``toyworld.formats``), so grading, step splitting and
verdict parsing do their real work: sample ``j`` of a request gets canned solution
``(len(prompt) + j) mod 4`` (a right-looking one, a different answer, a one-liner, no answer). Requests
that ask for the logprobs of verdict tokens (``logprob_token_ids``, i.e. verifications) get a canned
critique ending in the verdict cue and ``Yes`` / ``No``, with those logprobs at every position.
``max_tokens`` truncates a completion (``finish_reason`` ``length``); no prefix cache (0 cached tokens).
"""
from __future__ import annotations

from dataclasses import dataclass

from toyworld import formats

SOLUTIONS = (
    "37+48=85\n85*3=255\n255-15=240\nAnswer: 240",
    "37+48=85\n85*3=225\n225-15=210\nAnswer: 210",
    "Answer: 240",
    "37+48=85\n85*3=255",
)
_OWN = ["37+48=85", "85*3=255", "255-15=240", "Answer: 240"]
CRITIQUES = (formats.genrm_target("240", _OWN), formats.genrm_target("210", _OWN))


@dataclass(frozen=True)
class Logprob:
    logprob: float


@dataclass(frozen=True)
class Completion:
    text: str
    token_ids: list[int]
    finish_reason: str
    logprobs: list[dict[int, Logprob]] | None = None


@dataclass(frozen=True)
class RequestOutput:
    request_id: str
    outputs: list[Completion]
    finished: bool = True
    num_cached_tokens: int = 0


class StandinLLM:
    """The ``vllm.LLM`` stand-in (it is its own ``llm_engine``)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._queue: list[tuple[str, int, object]] = []
        self._encoded: dict[tuple[str, int], tuple[str, list[int], str]] = {}  # (text, max_tokens) -> output

    @property
    def llm_engine(self) -> StandinLLM:
        return self

    def get_tokenizer(self):
        return self.tokenizer

    def add_request(self, request_id: str, prompt: dict, params) -> None:
        self._queue.append((request_id, len(prompt["prompt_token_ids"]), params))

    def has_unfinished_requests(self) -> bool:
        return bool(self._queue)

    def step(self) -> list[RequestOutput]:
        queue, self._queue = self._queue, []
        return [RequestOutput(rid, [self._completion(plen + j, params) for j in range(params.n)])
                for rid, plen, params in queue]

    def _completion(self, pick: int, params) -> Completion:
        verdict_ids = tuple(params.logprob_token_ids or ())
        texts = CRITIQUES if verdict_ids else SOLUTIONS
        text, ids, reason = self._encode(texts[pick % len(texts)], params.max_tokens)
        logprobs = None
        if verdict_ids:  # a different P(Yes) per canned critique, the same at every position
            at = {t: Logprob(-0.2 - 0.7 * ((pick + k) % 2)) for k, t in enumerate(verdict_ids)}
            logprobs = [at] * len(ids)
        return Completion(text, ids, reason, logprobs)

    def _encode(self, text: str, max_tokens: int) -> tuple[str, list[int], str]:
        key = (text, max_tokens)
        if key not in self._encoded:
            ids = self.tokenizer.encode(text, add_special_tokens=False)
            self._encoded[key] = ((text, ids, "stop") if len(ids) <= max_tokens else
                                  (self.tokenizer.decode(ids[:max_tokens]), ids[:max_tokens], "length"))
        return self._encoded[key]
