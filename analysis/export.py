"""Export a run's headline metrics as an lm-evaluation-harness-style ``results.json`` plus a per-sample log.

    python -m analysis.export runs/demo            # writes runs/demo/export/results.json, samples_<dataset>.jsonl

Metric names: ``pass@k`` (unbiased), ``maj@k`` (majority over answer classes, ties split evenly),
``bon@k_vV`` (best-of-k by the mean P(Yes) of V random verifications), ``wmaj@k_vV`` (weighted majority)
— with a ``[verifier]`` suffix when the run has several verifiers — each beside ``<name>_stderr``, the
standard error over problems (std / sqrt(P), as lm-eval reports it). k and V run over powers of two up to
the recorded maximum (plus the maximum itself). The per-sample log has one line per problem in lm-eval's
``--log_samples`` shape (``doc_id``, ``doc``, ``target``, ``resps``, ``filtered_resps``) plus
``is_correct`` and ``verifier_scores`` per sample, so ``analysis.adapters`` can read it back.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import polars as pl

from analysis import curves
from analysis.load import load_run, read_table

_PREFIX = {"oracle": "pass", "majority": "maj", "best_of_n": "bon", "weighted_majority": "wmaj"}


def powers_up_to(n: int) -> list[int]:
    """1, 2, 4, ... below n, and n itself."""
    return sorted({2**i for i in range(n.bit_length()) if 2**i <= n} | {n})


def metric_name(method: str, s: int, v: int, verifier: str | None, several: bool) -> str:
    """lm-eval-style name of one curve point, e.g. ``maj@8`` or ``bon@8_v4``."""
    name = f"{_PREFIX[method]}@{s}" + (f"_v{v}" if v else "")
    return f"{name}[{verifier}]" if verifier and several else name


def results(run_dir: Path, seed: int = 0, draws: int = 8) -> dict:
    """The ``results.json`` content of a run."""
    run = load_run(run_dir)
    s_values = powers_up_to(run.max_solutions)
    max_v = max((v.max_verifications for v in run.verifiers.values()), default=0)
    c = curves.evaluate(run, s_values, powers_up_to(max_v) if max_v else [], seed=seed, draws=draws,
                        methods=("oracle", "majority", "best_of_n", "weighted_majority"))
    keep = c.points.with_row_index("col").filter(pl.col("score").is_null() | (pl.col("score") == "p_yes"))
    several = len(run.verifiers) > 1
    metrics: dict[str, float] = {}
    for r in keep.iter_rows(named=True):
        vals = c.values[:, r["col"]]
        vals = vals[~np.isnan(vals)]
        name = metric_name(r["method"], r["S"], r["V"], r["verifier"], several)
        metrics[name] = float(vals.mean())
        metrics[f"{name}_stderr"] = float(vals.std(ddof=1) / np.sqrt(vals.size)) if vals.size > 1 else float("nan")
    problems = read_table(run_dir, "problems")
    dataset = problems["dataset"][0] if problems.height else "unknown"
    return {
        "results": {dataset: metrics},
        "n-samples": {dataset: {"problems": int(len(run.problem_ids)), "max_solutions": run.max_solutions,
                                "max_verifications": max_v}},
        "config": {"run_id": run.manifest.get("run_id", Path(run_dir).name), "seed": seed, "draws": draws,
                   "solver": run.solve_tokens.model,
                   "verifiers": {n: v.tokens.model for n, v in sorted(run.verifiers.items())}},
    }


def sample_log(run_dir: Path) -> pl.DataFrame:
    """One row per problem in lm-eval's ``--log_samples`` shape, with per-sample grades and scores."""
    problems = read_table(run_dir, "problems")
    scores = read_table(run_dir, "verifications").group_by("problem_id", "solution_idx").agg(
        pl.col("p_yes").mean().alias("score"))
    per_problem = (
        read_table(run_dir, "solutions").join(scores, on=["problem_id", "solution_idx"], how="left")
        .sort("problem_id", "solution_idx")
        .group_by("problem_id", maintain_order=True)
        .agg(pl.col("text").alias("resps"), pl.col("extracted_answer").alias("filtered_resps"),
             pl.col("is_correct"), pl.col("score").alias("verifier_scores"))
    )
    return problems.join(per_problem, on="problem_id").select(
        pl.col("problem_id").alias("doc_id"),
        pl.struct("problem", "answer", "level", "subject").alias("doc"),
        pl.col("answer").alias("target"),
        # lm-eval nests responses per request; a problem is one request of n samples.
        pl.col("resps").map_elements(lambda r: [list(r)], return_dtype=pl.List(pl.List(pl.String))),
        "filtered_resps", "is_correct", "verifier_scores",
    ).sort("doc_id")


def export(run_dir: Path, out: Path | None = None, seed: int = 0) -> Path:
    """Write ``results.json`` and ``samples_<dataset>.jsonl`` into ``out`` (default <run_dir>/export)."""
    out = out or Path(run_dir) / "export"
    out.mkdir(parents=True, exist_ok=True)
    res = results(run_dir, seed=seed)
    (out / "results.json").write_text(json.dumps(res, indent=2, allow_nan=True))
    dataset = next(iter(res["results"]))
    sample_log(run_dir).write_ndjson(out / f"samples_{dataset}.jsonl")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(export(args.run_dir, args.out, args.seed))


if __name__ == "__main__":
    main()
