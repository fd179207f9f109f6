"""The toy PRM: per-step scores from a token-classification Llama (2 classes: 0 = wrong, 1 = correct).

Serving in vLLM (verified with vLLM 0.32 CPU)::

    from vllm import LLM
    from vllm.config import PoolerConfig
    llm = LLM(path, runner="pooling", convert="classify",
              pooler_config=PoolerConfig(task="token_classify"))
    outs = llm.encode([formats.prm_input(problem, steps)], pooling_task="token_classify")
    scores = step_scores_from_vllm(outs[0], tokenizer)   # one P(step correct) per step

The checkpoint's config names ``LlamaForCausalLM`` (what vLLM's classify adapter wraps) with
``num_labels=2``; the head weight is ``score.weight``, so ``transformers.AutoModelForTokenClassification``
loads the same files (see :func:`hf_step_scores`).
"""

from __future__ import annotations

from toyworld import formats
from toyworld.tokenizer import step_token_id

CORRECT_CLASS = 1


def separator_positions(token_ids, tokenizer) -> list[int]:
    sep = step_token_id(tokenizer)
    return [i for i, t in enumerate(list(token_ids)) if int(t) == sep]


def step_scores(token_ids, probs, tokenizer) -> list[float]:
    """P(step correct) at each separator; ``probs`` is (tokens x 2) class probabilities."""
    pos = separator_positions(token_ids, tokenizer)
    if len(probs) != len(token_ids):
        raise ValueError(f"{len(probs)} rows of probabilities for {len(token_ids)} tokens")
    return [float(probs[i][CORRECT_CLASS]) for i in pos]


def step_scores_from_vllm(output, tokenizer) -> list[float]:
    """Per-step scores from one ``llm.encode(..., pooling_task="token_classify")`` result."""
    data = output.outputs.data
    return step_scores(output.prompt_token_ids, data.tolist() if hasattr(data, "tolist") else data, tokenizer)


def hf_step_scores(model, tokenizer, problem: str, steps: list[str]) -> list[float]:
    """Per-step scores with a transformers ``AutoModelForTokenClassification`` model."""
    import torch

    enc = tokenizer(formats.prm_input(problem, steps), return_tensors="pt")
    with torch.no_grad():
        probs = model(**enc).logits.float().softmax(-1)[0]
    return step_scores(enc["input_ids"][0].tolist(), probs.tolist(), tokenizer)


def first_error(scores: list[float], threshold: float) -> int:
    """ProcessBench prediction: the first step whose score falls below ``threshold``, or -1."""
    for i, s in enumerate(scores):
        if s < threshold:
            return i
    return -1


def solution_score(scores: list[float], how: str = "min") -> float:
    """Aggregate step scores into one solution score (``min``, ``last`` or ``prod``)."""
    if not scores:
        return 0.0
    if how == "min":
        return min(scores)
    if how == "last":
        return scores[-1]
    if how == "prod":
        out = 1.0
        for s in scores:
            out *= s
        return out
    raise ValueError(how)
