"""Compute accounting: what (S solutions, V verifications per solution) costs per problem, on a chosen axis.

Axes (``AXES``):
- ``normalized``: the seeds' C(S, V) = S (1 + lambda V), in units of one solution. lambda is measured,
  not set by hand: lambda = (N_v c_v) / (N_s c_s), the FLOPs of one verification over one solution, with
  N the parameter counts and c the tokens processed per sample (generated tokens plus the uncached
  prompt prefill of its group, shared by the samples of that group). With equal model sizes it is the
  token ratio. Parameter counts come from ``AnalysisConfig.model_params`` or the manifest's
  ``model_params`` {model: count}; when a count is unknown the sizes are taken as equal (and a note says so).
- ``flops``: 2 N_s (prefill_s + S g_s) + [V > 0] 2 N_v S (prefill_v + V g_v) per problem, where a
  problem's solving prompt is counted once for all its S samples and a solution's verification prompt
  once for its V samples (the engine's prefix cache serves the rest; recorded cached tokens are used).
- ``replica_seconds``: measured replica-seconds from the manifest (summed over the pipeline's invocations,
  or ``replica_seconds.solve`` / ``replica_seconds.verify.<verifier>``; wall time x replicas per stage,
  verify time per invocation's verifier) spread evenly over the samples
  each stage produced: S r_s + S V r_v per problem.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.load import RunArrays, TokenUse

AXES = ("normalized", "flops", "replica_seconds")
AXIS_LABELS = {"normalized": "compute C(S,V) = S(1 + λV) [solutions]", "flops": "FLOPs per problem",
               "replica_seconds": "replica-seconds per problem"}


@dataclass(frozen=True)
class ComputeModel:
    """Cost of (S, V) per problem on ``axis`` for one verifier (or none: V must be 0)."""

    axis: str
    lam: float
    solver_params: float
    verifier_params: float
    solve: TokenUse
    verify: TokenUse | None
    seconds_per_solution: float | None = None
    seconds_per_verification: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def cost(self, s, v) -> np.ndarray:
        """Cost per problem of S solutions with V verifications each (broadcast over arrays)."""
        s, v = np.asarray(s, dtype=float), np.asarray(v, dtype=float)
        if self.verify is None and np.any(v > 0):
            raise ValueError("this compute model has no verifier: V must be 0")
        if self.axis == "normalized":
            return s * (1.0 + self.lam * v)
        if self.axis == "flops":
            solve = 2 * self.solver_params * (self.solve.prefill_per_group + s * self.solve.generated_per_sample)
            if self.verify is None:
                return solve + 0 * v
            per_solution = self.verify.prefill_per_group + v * self.verify.generated_per_sample
            return solve + np.where(v > 0, 2 * self.verifier_params * s * per_solution, 0.0)
        return s * self.seconds_per_solution + s * v * (self.seconds_per_verification or 0.0)


def replica_seconds(manifest: dict) -> dict | None:
    """``{"solve": s, "verify": {verifier: s}}``: the manifest's ``replica_seconds`` when given (imported
    runs), else summed over the pipeline's invocations (each stage's wall time × replicas; an invocation
    killed mid-stage counts up to its last checkpoint)."""
    if "replica_seconds" in manifest:
        return manifest["replica_seconds"]
    invocations = manifest.get("invocations") or []
    if not invocations:
        return None
    # each invocation names its verifier (runs extended with a second verifier); older manifests only
    # name the configured one
    configured = manifest.get("config", {}).get("verification", {}).get("name")
    verify = {configured: 0.0} if configured else {}
    for inv in invocations:
        name = inv.get("verifier", configured)
        if name:
            verify[name] = verify.get(name, 0.0) + inv.get("stages", {}).get("verify", {}).get("replica_seconds", 0.0)
    solve = sum(inv.get("stages", {}).get("solve", {}).get("replica_seconds", 0.0) for inv in invocations)
    return {"solve": solve, "verify": verify}


def _tokens_per_sample(t: TokenUse) -> float:
    return t.generated_per_sample + t.prefill_per_group / max(t.samples_per_group, 1.0)


def _params(model: str, overrides: dict[str, float], manifest: dict) -> float | None:
    known = {**manifest.get("model_params", {}), **overrides}
    return float(known[model]) if model in known else None


def build_compute(run: RunArrays, verifier: str | None, axis: str, model_params: dict[str, float] | None = None,
                  lam: float | None = None) -> ComputeModel:
    """The compute model of ``run`` for ``verifier`` (None: solving only) on ``axis``; ``lam`` overrides
    the measured lambda of the normalized axis."""
    if axis not in AXES:
        raise ValueError(f"compute axis must be one of {AXES}, got {axis!r}")
    overrides = model_params or {}
    notes = []
    verify = run.verifiers[verifier].tokens if verifier is not None else None
    ps = _params(run.solve_tokens.model, overrides, run.manifest)
    pv = _params(verify.model, overrides, run.manifest) if verify else ps
    if ps is None or pv is None:
        missing = [m for m, p in ((run.solve_tokens.model, ps), (verify.model if verify else None, pv)) if p is None]
        if axis == "flops":
            raise ValueError(f"axis=flops needs parameter counts for {missing}: set model_params in the analysis "
                             "config or model_params in the manifest")
        notes.append(f"parameter counts unknown for {missing}: solver and verifier taken as equal in size")
        ps = pv = 1.0
    if lam is not None:
        measured = float(lam)
        notes.append(f"lambda set by config to {measured}")
    elif verify is None:
        measured = 0.0
    else:
        c_s = _tokens_per_sample(run.solve_tokens)
        if c_s <= 0:
            raise ValueError(f"{run.run_dir}: solutions record no tokens, so lambda cannot be measured; set lam")
        measured = pv * _tokens_per_sample(verify) / (ps * c_s)
    rs_s = rs_v = None
    if axis == "replica_seconds":
        rs = replica_seconds(run.manifest)
        if not rs or "solve" not in rs or (verifier is not None and verifier not in rs.get("verify", {})):
            raise ValueError(f"{run.run_dir}/manifest.json: axis=replica_seconds needs replica_seconds.solve"
                             + (f" and replica_seconds.verify.{verifier}" if verifier else ""))
        rs_s = float(rs["solve"]) / int(run.valid.sum())
        if verifier is not None:
            n_ver = int(next(iter(run.verifiers[verifier].scores.values()))[1].sum())
            rs_v = float(rs["verify"][verifier]) / max(n_ver, 1)
    return ComputeModel(axis=axis, lam=measured, solver_params=ps, verifier_params=pv, solve=run.solve_tokens,
                        verify=verify, seconds_per_solution=rs_s, seconds_per_verification=rs_v, notes=tuple(notes))
