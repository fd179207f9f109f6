"""Training sets built from a run's tables: SFT, preference pairs and GenRM fine-tuning data.

Command (writes ``<out>/{sft,preference,genrm}.{parquet,jsonl}``)::

    python -m analysis.training_data runs/demo --out runs/demo/export/training

- **SFT**: every graded-correct solution, as (problem, completion).
- **Preference pairs**: per problem, correct (chosen) vs incorrect (rejected) solutions of the same
  problem, at most ``max_pairs_per_problem`` pairs drawn without replacement (seeded).
- **GenRM**: (problem, solution, critique, verdict) from verifications whose parsed verdict agrees with the
  ground truth, balanced so that Yes and No are equally frequent (the larger side is subsampled, seeded).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl

from analysis.load import read_table


def sft_rows(problems: pl.DataFrame, solutions: pl.DataFrame) -> pl.DataFrame:
    """Correct solutions with their problem text."""
    return (
        solutions.filter(pl.col("is_correct"))
        .join(problems.select("problem_id", "problem"), on="problem_id")
        .select("problem_id", "solution_idx", "problem", pl.col("text").alias("completion"))
        .sort("problem_id", "solution_idx")
    )


def preference_pairs(problems: pl.DataFrame, solutions: pl.DataFrame, max_pairs_per_problem: int = 4,
                     seed: int = 0) -> pl.DataFrame:
    """(chosen = correct, rejected = incorrect) pairs of solutions to the same problem."""
    rng = np.random.default_rng(seed)
    graded = solutions.filter(pl.col("is_correct").is_not_null()).sort("problem_id", "solution_idx")
    rows = []
    for (pid,), g in graded.group_by(["problem_id"], maintain_order=True):
        good = g.filter(pl.col("is_correct"))
        bad = g.filter(~pl.col("is_correct"))
        n_pairs = good.height * bad.height
        if n_pairs == 0:
            continue
        picks = rng.choice(n_pairs, size=min(max_pairs_per_problem, n_pairs), replace=False)
        for p in np.sort(picks):
            i, j = divmod(int(p), bad.height)
            rows.append({"problem_id": pid, "chosen_idx": good["solution_idx"][i], "chosen": good["text"][i],
                         "rejected_idx": bad["solution_idx"][j], "rejected": bad["text"][j]})
    schema = {"problem_id": pl.String, "chosen_idx": pl.Int32, "chosen": pl.String,
              "rejected_idx": pl.Int32, "rejected": pl.String}
    pairs = pl.DataFrame(rows, schema=schema)
    return pairs.join(problems.select("problem_id", "problem"), on="problem_id").select(
        "problem_id", "problem", *[c for c in schema if c != "problem_id"])


def genrm_rows(problems: pl.DataFrame, solutions: pl.DataFrame, verifications: pl.DataFrame,
               seed: int = 0) -> pl.DataFrame:
    """Critiques whose verdict agrees with the ground truth, Yes/No balanced."""
    agreed = (
        verifications.filter(pl.col("verifier_kind") == "genrm")
        .join(solutions.select("problem_id", "solution_idx", pl.col("text").alias("solution"), "is_correct"),
              on=["problem_id", "solution_idx"])
        .filter(pl.col("verdict").is_not_null() & (pl.col("verdict") == pl.col("is_correct")))
        .join(problems.select("problem_id", "problem"), on="problem_id")
        .select("problem_id", "solution_idx", "verification_idx", "verifier", "problem", "solution",
                pl.col("text").alias("critique"), "verdict")
        .sort("problem_id", "solution_idx", "verifier", "verification_idx")
    )
    yes, no = agreed.filter(pl.col("verdict")), agreed.filter(~pl.col("verdict"))
    n = min(yes.height, no.height)
    return pl.concat([yes.sample(n, seed=seed), no.sample(n, seed=seed)]).sort(
        "problem_id", "solution_idx", "verifier", "verification_idx")


def write_training_sets(run_dir: Path, out: Path, seed: int = 0) -> dict[str, int]:
    """Write the three training sets as Parquet and JSONL; returns row counts."""
    problems = read_table(run_dir, "problems")
    solutions = read_table(run_dir, "solutions")
    verifications = read_table(run_dir, "verifications")
    sets = {
        "sft": sft_rows(problems, solutions),
        "preference": preference_pairs(problems, solutions, seed=seed),
        "genrm": genrm_rows(problems, solutions, verifications, seed=seed),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, df in sets.items():
        df.write_parquet(out / f"{name}.parquet")
        df.write_ndjson(out / f"{name}.jsonl")
    return {name: df.height for name, df in sets.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--out", type=Path, help="output folder (default <run_dir>/export/training)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    counts = write_training_sets(args.run_dir, args.out or args.run_dir / "export" / "training", args.seed)
    print(", ".join(f"{k}: {v} rows" for k, v in counts.items()))


if __name__ == "__main__":
    main()
