"""Solve throughput with 1 vs 2 solver replicas on the same work (real vLLM, the shipped toy solver).

    python -m bench.replica_scaling                                                 # 512 toy problems, S=4, 64 tokens
    python -m bench.replica_scaling --problems 128 --max-tokens 16 --batch-size 8   # a quick look

Both runs solve the same problems with the same S, ``max_tokens`` (``ignore_eos``, so every sample
generates exactly that many tokens), engine settings and seed, differing only in ``solver.replicas``;
each is ``pipeline.run.run`` with its own local Ray. Throughput is generated tokens per second from
the first replica's engine being ready to the last commit (engine start excluded, as in
``bench.pipeline_throughput``; with two replicas the second may start later and join the work then,
which is how a run behaves). ``--batch-size`` must leave many more batches than replicas, or one
replica can take all the work before the other is up. Printed beside the ratio: placement (rows per ``replica_id`` and the
``node_id`` they ran on, from the tables) and correctness (both runs hold the same keys, each once).
On a single node with 2 cores the replicas share those cores with each other, the grader and the
driver, so a second replica cannot be expected to add throughput there; the ratio is reported as is.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import polars as pl


def _one(work: Path, data: Path, args, replicas: int) -> dict:
    from pipeline.config import compose
    from pipeline.run import run

    cfg = compose([f"dataset.file={data}", f"output_dir={work}", f"run_id=replicas-{replicas}", "wandb.enabled=false",
                   f"solver.replicas={replicas}", f"budget.solutions={args.solutions}", "budget.verifications=0",
                   f"budget.solver.max_tokens={args.max_tokens}", "budget.solver.ignore_eos=true",
                   f"cluster.batch_size={args.batch_size}"])
    result = run(cfg)
    solve = result.stages["solve"]
    sols = pl.read_parquet(sorted((result.run_dir / "solutions").glob("part-*.parquet")))
    per_replica = sols.group_by("replica_id", "node_id").len().sort("replica_id")
    return {"replicas": replicas, "rows": sols.height, "tokens": solve.completion_tokens,
            "generate_s": solve.generate_s, "tokens_per_s": solve.completion_tokens / solve.generate_s,
            "engine_start_s": solve.engine_start_s,
            "rows_per_replica": {r["replica_id"]: r["len"] for r in per_replica.iter_rows(named=True)},
            "nodes": per_replica["node_id"].unique().to_list(),
            "keys": set(sols.select("problem_id", "solution_idx").iter_rows()),
            "duplicate_keys": int(sols.select("problem_id", "solution_idx").is_duplicated().sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=512)
    ap.add_argument("--solutions", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16, help="problems per engine call")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from bench.common import toy_problems_file

    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        work = Path(tmp)
        data = toy_problems_file(args.problems, work / "problems.jsonl", seed=99)
        one, two = _one(work, data, args, 1), _one(work, data, args, 2)
    same_keys = one["keys"] == two["keys"] and not one["duplicate_keys"] and not two["duplicate_keys"]
    for r in (one, two):
        print(f"{r['replicas']} replica(s): {r['rows']} rows, {r['tokens']} tokens in {r['generate_s']:.1f}s after "
              f"engine start = {r['tokens_per_s']:.0f} tok/s (slowest engine start {r['engine_start_s']:.0f}s); rows "
              f"per replica {r['rows_per_replica']} on {len(r['nodes'])} node(s)", flush=True)
    print(f"correctness: same {len(one['keys'])} keys in both runs, each once: {same_keys}")
    ratio = two["tokens_per_s"] / one["tokens_per_s"]
    print(f"ratio 2/1 replicas tokens/s: {ratio:.2f} (rows per replica {sorted(two['rows_per_replica'].values())}, "
          f"same keys: {same_keys})")
    if args.out:
        report = {k: {kk: vv for kk, vv in r.items() if kk != "keys"} for k, r in (("one", one), ("two", two))}
        args.out.write_text(json.dumps({**report, "ratio": ratio, "same_keys": same_keys}, indent=2))
    if not same_keys or len(two["rows_per_replica"]) != 2:
        raise SystemExit("2-replica run: keys differ from the 1-replica run, or only one replica wrote rows "
                         "(give more --problems or a smaller --batch-size)")


if __name__ == "__main__":
    main()
