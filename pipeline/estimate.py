"""Dry run: what a config will cost before it runs (``python -m pipeline.run ... dry_run.enabled=true``).

Counts the work the run would do: the problems, the solutions and verifications still missing (against
the run directory when it exists, so an extension is costed by what it adds; an incompatible config is
refused there as the run would refuse it). Prompt tokens of the solve requests are exact (the prompts are
tokenised); tokens per generation (generated per solution, verification prompt and generated tokens,
verdict-cue continuations per verification) come from ``dry_run.from_run``'s tables and manifest or from
a pilot: the same config on ``dry_run.pilot_problems`` problems (spread over the dataset) at a small
(S, V), run in a temporary directory that is deleted afterwards. Nothing is written to the run directory.

Tokens are counted as the engines process them: a request's prompt once for its n samples, plus every
generated token. FLOPs = 2 x parameters x tokens per model (parameters from the local safetensors
headers; unknown for hub ids). GPU-hours = generated tokens / ``dry_run.tokens_per_s`` (generated tokens
per second of one replica) x the replica's tensor_parallel_size GPUs.
"""
from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import ConfigError, RunConfig, SubsetConfig, WandbConfig, resolve_path
from pipeline.schema import MANIFEST_FILE


@dataclass(frozen=True)
class PerGeneration:
    """Mean tokens per generation, measured on a run directory (a pilot's or a previous run's)."""

    source: str
    solution_tokens: float  # generated per solution
    verify_prompt_tokens: float  # verification prompt, once per verified solution
    verification_tokens: float  # generated per verification
    cue_tokens: float  # verdict-cue continuation tokens (prompt + 1) per verification


@dataclass(frozen=True)
class StageEstimate:
    model: str
    requests: int
    generations: int
    prompt_tokens: float
    generated_tokens: float
    cue_tokens: float
    flops: float | None
    gpu_hours: float

    @property
    def tokens(self) -> float:
        return self.prompt_tokens + self.generated_tokens + self.cue_tokens


@dataclass(frozen=True)
class Estimate:
    problems: int  # problems with work pending
    per_generation: PerGeneration | None  # None: nothing to do
    solve: StageEstimate | None
    verify: StageEstimate | None

    @property
    def tokens(self) -> float:
        return sum(s.tokens for s in (self.solve, self.verify) if s is not None)


def measure(run_dir: Path, verifier: str | None) -> PerGeneration:
    """Tokens per generation recorded in ``run_dir`` (``verifier``'s verifications when it has any)."""
    from analysis.load import read_manifest, scan_table

    sols = scan_table(run_dir, "solutions").select(pl.col("completion_tokens").cast(pl.Float64).mean()).collect()
    if sols.item() is None:
        raise ConfigError(f"config key 'dry_run.from_run': {run_dir} records no solutions, so tokens per "
                          "generation cannot be measured there")
    vers = scan_table(run_dir, "verifications")
    if verifier is not None and vers.filter(pl.col("verifier") == verifier).select(pl.len()).collect().item():
        vers = vers.filter(pl.col("verifier") == verifier)
    v = vers.group_by("problem_id", "solution_idx").agg(
        pl.col("prompt_tokens").first().cast(pl.Float64).alias("prompt"), pl.len().alias("n"),
        pl.col("completion_tokens").cast(pl.Float64).sum().alias("generated")).select(
        pl.col("prompt").mean(), pl.col("n").sum(), pl.col("generated").sum()).collect().row(0)
    n_ver = int(v[1] or 0)
    manifest = read_manifest(run_dir)
    cue = sum(inv.get("stages", {}).get("verify", {}).get("extra_tokens", 0)
              for inv in manifest.get("invocations", []) if verifier is None or inv.get("verifier") in (None, verifier))
    return PerGeneration(source=str(run_dir), solution_tokens=float(sols.item()),
                         verify_prompt_tokens=float(v[0] or 0.0),
                         verification_tokens=float(v[2] or 0.0) / n_ver if n_ver else 0.0,
                         cue_tokens=cue / n_ver if n_ver else 0.0)


def _spread(ids: list[str], k: int) -> list[str]:
    """``k`` ids evenly spaced over ``ids`` (all when there are fewer), so a pilot sees every level."""
    if len(ids) <= k:
        return list(ids)
    return [ids[round(i * (len(ids) - 1) / (k - 1))] for i in range(k)] if k > 1 else ids[:1]


def pilot(cfg: RunConfig, problem_ids: list[str]) -> PerGeneration:
    """Run ``cfg`` on ``dry_run.pilot_problems`` of ``problem_ids`` at a small (S, V) in a temporary
    directory and measure its tokens per generation."""
    from pipeline.run import run

    d = cfg.dry_run
    budget = dataclasses.replace(cfg.budget, solutions=min(cfg.budget.solutions, d.pilot_solutions),
                                 verifications=min(cfg.budget.verifications, d.pilot_verifications))
    with tempfile.TemporaryDirectory(prefix="dry-run-pilot-") as tmp:
        pilot_cfg = dataclasses.replace(
            cfg, output_dir=tmp, run_id="pilot", budget=budget, wandb=WandbConfig(enabled=False),
            subset=SubsetConfig(problem_ids=_spread(problem_ids, d.pilot_problems)),
            dry_run=dataclasses.replace(d, enabled=False))
        result = run(pilot_cfg)
        measured = measure(result.run_dir, cfg.verification.name)
    return dataclasses.replace(measured, source=f"pilot of {len(pilot_cfg.subset.problem_ids)} problems at "
                                                f"S={budget.solutions}, V={budget.verifications}")


def _stage(model, requests: int, generations: int, prompt: float, generated: float, cue: float,
           params: dict[str, int], tokens_per_s: float) -> StageEstimate:
    n = params.get(model.name)
    return StageEstimate(model=model.name, requests=requests, generations=generations, prompt_tokens=prompt,
                         generated_tokens=generated, cue_tokens=cue,
                         flops=None if n is None else 2.0 * n * (prompt + generated + cue),
                         gpu_hours=generated / tokens_per_s / 3600 * model.tensor_parallel_size)


def estimate(cfg: RunConfig) -> Estimate:
    """The cost of running ``cfg`` (module doc); runs a pilot unless ``dry_run.from_run`` is given."""
    from pipeline.manifest import Manifest, model_params
    from pipeline.run import check_inputs, pending_solve_requests, pending_verify_inputs
    from pipeline.store import TableStore

    verify_on = cfg.budget.verifications > 0
    checked = check_inputs(cfg)
    subset = checked.subset
    requests, existing = checked.solve.requests, None
    if (cfg.run_dir / MANIFEST_FILE).is_file():  # an existing run: cost only what this config adds
        Manifest(cfg.run_dir).revision_for(cfg, subset)
        stores = {t: TableStore(cfg.run_dir, t) for t in ("solutions", "verifications")}
        problem_text = dict(zip(requests.column("problem_id").to_pylist(), requests.column("problem").to_pylist()))
        existing = pending_verify_inputs(cfg, stores, problem_text, subset) if verify_on else None
        requests = pending_solve_requests(cfg, stores, requests, subset)
    else:
        if subset is not None:
            requests = requests.filter(pc.is_in(requests.column("problem_id"), value_set=pa.array(subset)))
        requests = requests.append_column("n", pa.array([cfg.budget.solutions] * requests.num_rows, pa.int32()))
    new_solutions = int(pc.sum(requests.column("n")).as_py() or 0)
    verify_requests = new_solutions + (existing.num_rows if existing is not None else 0)
    verifications = new_solutions * cfg.budget.verifications + (
        int(pc.sum(existing.column("verify_n")).as_py() or 0) if existing is not None else 0)
    touched = set(requests.column("problem_id").to_pylist()) | (
        set(existing.column("problem_id").to_pylist()) if existing is not None else set())
    if not touched:
        return Estimate(problems=0, per_generation=None, solve=None, verify=None)
    if cfg.dry_run.from_run is not None:
        per = measure(resolve_path(cfg.dry_run.from_run), cfg.verification.name if verify_on else None)
    else:
        per = pilot(cfg, requests.column("problem_id").to_pylist() or sorted(touched))
    params = model_params([cfg.solver, cfg.verifier_model])
    tps = cfg.dry_run.tokens_per_s
    prompt = float(sum(len(ids) for ids in requests.column("prompt_token_ids").to_pylist()))
    solve = _stage(cfg.solver, len(requests), new_solutions, prompt, new_solutions * per.solution_tokens, 0.0,
                   params, tps) if new_solutions else None
    verify = _stage(cfg.verifier_model, verify_requests, verifications, verify_requests * per.verify_prompt_tokens,
                    verifications * per.verification_tokens, verifications * per.cue_tokens, params,
                    tps) if verify_on and verifications else None
    return Estimate(problems=len(touched), per_generation=per, solve=solve, verify=verify)


def format_estimate(cfg: RunConfig, est: Estimate) -> str:
    """The dry run's printout."""
    if est.per_generation is None:
        return f"dry run: {cfg.run_dir} has nothing left to do for this config"
    p = est.per_generation
    lines = [f"dry run of {cfg.run_dir} (nothing written): {est.problems} problems with work pending",
             f"tokens per generation from {p.source}: solution {p.solution_tokens:.1f} generated; verification "
             f"prompt {p.verify_prompt_tokens:.1f}, generated {p.verification_tokens:.1f}, verdict cue "
             f"{p.cue_tokens:.1f}"]
    for name, s in (("solve", est.solve), ("verify", est.verify)):
        if s is None:
            continue
        flops = "unknown (no local parameter count)" if s.flops is None else f"{s.flops:.3g}"
        lines.append(f"{name} ({s.model}): {s.requests} requests, {s.generations} generations, "
                     f"{s.prompt_tokens:,.0f} prompt + {s.generated_tokens:,.0f} generated + {s.cue_tokens:,.0f} cue "
                     f"tokens; FLOPs {flops}; {s.gpu_hours:.3g} GPU-hours at {cfg.dry_run.tokens_per_s:g} "
                     "generated tokens/s per replica")
    lines.append(f"total: {est.tokens:,.0f} tokens")
    return "\n".join(lines)

