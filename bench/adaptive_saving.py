"""Adaptive early stopping in the pipeline vs the fixed budget: success and compute actually spent.

    python -m bench.adaptive_saving                         # the demo's 80 toy problems, S=32, k=3
    python -m bench.adaptive_saving --limit 16 --solutions 8

Two runs of the shipped toy solver on the same problems, same seed: a fixed budget (S solutions each)
and ``adaptive=stop_when_agree`` (rounds of ``--round-size`` after the first k, stop once k answers
agree, at most S). Success is the majority vote over each run's own solutions (ties split evenly), with
a 95% bootstrap interval over problems; compute is what the manifests measured: generated tokens and
replica-seconds of the solve stage (engine start included, as a run pays it). Ratios are adaptive/fixed.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import polars as pl

from analysis import adaptive


def per_problem(run_dir: Path) -> np.ndarray:
    """(success of the majority vote, solutions) per problem of a run, from its solutions table."""
    sol = pl.read_parquet(sorted((run_dir / "solutions").glob("part-*.parquet")))
    rows = []
    for _, g in sol.sort("solution_idx").group_by("problem_id", maintain_order=True):
        classes = g["answer_class"].fill_null(-1).to_numpy()
        rows.append((adaptive.vote(classes, g["is_correct"].fill_null(False).to_numpy()), g.height, 0))
    return np.array(rows, float)


def measure(run_dir: Path, name: str) -> dict:
    """Success (with CI) and the measured compute of a finished run: generated tokens and replica-seconds of
    the solve stage, and the verify stage's generated tokens."""
    (inv,) = [i for i in json.loads((run_dir / "manifest.json").read_text())["invocations"] if "solve" in i["stages"]]
    solve, verify = inv["stages"]["solve"], inv["stages"].get("verify", {})
    return adaptive.summarize(name, per_problem(run_dir), lam=0.0) | {
        "generated_tokens": solve["completion_tokens"], "replica_seconds": solve["replica_seconds"],
        "generate_s": solve["generate_s"], "verify_tokens": verify.get("completion_tokens", 0)}


def compare(out: Path, data: str, limit: int | None, solutions: int, k: int, round_size: int,
            verifications: int = 0, policy: str = "stop_when_agree") -> dict:
    """Run both (or resume them in ``out``) and return their measurements and the ratios. ``policy``: the
    ``adaptive`` config group of the adaptive run (with ``verifications`` > 0, ``stop_and_verify_split``
    also skips verifying unanimous problems; the success stays the majority vote)."""
    from pipeline.config import compose
    from pipeline.run import run

    base = [f"dataset.file={data}", f"output_dir={out}", f"budget.solutions={solutions}",
            f"budget.verifications={verifications}", "wandb.enabled=false"] + ([f"dataset.limit={limit}"] if limit else [])
    fixed = run(compose([*base, "run_id=fixed"])).run_dir
    stop = run(compose([*base, f"run_id={policy}", f"adaptive={policy}", f"adaptive.k={k}",
                        f"adaptive.round_size={round_size}"])).run_dir
    f, a = measure(fixed, f"fixed S={solutions}"), measure(stop, f"{policy}(k={k}, step={round_size})")
    return {"fixed": f, "adaptive": a, "tokens_ratio": a["generated_tokens"] / f["generated_tokens"],
            "replica_seconds_ratio": a["replica_seconds"] / f["replica_seconds"],
            "success_difference": a["success"] - f["success"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/toy/toy_demo.jsonl")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--solutions", type=int, default=32)
    ap.add_argument("-k", type=int, default=3)
    ap.add_argument("--round-size", type=int, default=1)
    ap.add_argument("--out-dir", type=Path, default=Path("runs/bench/adaptive_saving"))
    args = ap.parse_args()
    r = compare(args.out_dir, args.data, args.limit, args.solutions, args.k, args.round_size)
    for run in (r["fixed"], r["adaptive"]):
        print(f"{run['policy']}: success {run['success']:.3f} [{run['success_lo']:.3f}, {run['success_hi']:.3f}], "
              f"{run['solutions']:.2f} solutions/problem, {run['generated_tokens']} generated tokens, "
              f"{run['replica_seconds']:.1f} replica-s ({run['generate_s']:.1f} s after engine start)")
    print(f"ratio adaptive/fixed: generated tokens {r['tokens_ratio']:.3f}, replica-seconds "
          f"{r['replica_seconds_ratio']:.2f}; success difference {r['success_difference']:+.3f}")
    (args.out_dir / "adaptive_saving.json").write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
