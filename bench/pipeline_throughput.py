"""Pipeline generation throughput against vLLM's own ``LLM.generate`` on the same prompts.

Launch (CPU, ~10-15 min):   python -m bench.pipeline_throughput
Quick smoke run:            python -m bench.pipeline_throughput --prompts 512 --repeats 1

Both sides use the same engine settings (the ``tiny_solver`` preset on a tiny random Llama unless
``--model`` names a checkpoint), the same tokenised prompts, n=1, ``max_tokens`` generated tokens per
prompt with ``ignore_eos`` so every request generates exactly that many, and the same engine seed.

- raw: one ``vllm.LLM`` in this process (with the replica's torch thread count), every prompt queued
  in one ``generate`` call; engine start excluded (one engine, timed ``generate`` calls only).
- pipeline: ``pipeline.run.run`` solving the same problems through Ray Data (one solver replica),
  grading, and committing Parquet parts; engine start excluded: the time counts from the moment the
  replica's engine was ready (``engine_ready_at``) to the driver's last commit.

Each side runs ``--repeats`` times; the medians give the ratio pipeline / raw that is printed (and
written to ``--out`` as JSON). The raw run should last at least 60 s; a shorter one is reported.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def _overrides(model: Path, data: Path, out: Path, args, run_id: str) -> list[str]:
    return [
        f"solver.path={model}", f"verifier.path={model}", f"dataset.file={data}", f"output_dir={out}",
        f"run_id={run_id}", "wandb.enabled=false", "budget.solutions=1", "budget.verifications=0",
        f"budget.solver.max_tokens={args.max_tokens}", "budget.solver.ignore_eos=true",
        f"cluster.batch_size={args.batch_size}", "cluster.commit_interval_s=60",
        f"solver.max_num_seqs={args.max_num_seqs}",
    ]


def _raw(cfg, prompts: list[list[int]], repeats: int) -> list[tuple[int, float]]:
    from pipeline.engine import build_llm, resolve_sampling, sampling_params

    llm = build_llm(cfg.solver, cfg.budget.seed)
    params = sampling_params(resolve_sampling(cfg.solver, cfg.budget.solver), n=1)
    llm.generate([{"prompt_token_ids": p} for p in prompts[:64]], params, use_tqdm=False)  # warm-up
    results = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        outs = llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
        dt = time.perf_counter() - t0
        results.append((sum(len(c.token_ids) for o in outs for c in o.outputs), dt))
        print(f"raw: {results[-1][0]} tokens in {dt:.1f}s = {results[-1][0] / dt:.0f} tok/s", flush=True)
    del llm
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=32768)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--max-num-seqs", type=int, default=256)
    ap.add_argument("--model", type=Path, default=None, help="checkpoint dir (default: a tiny random Llama)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    # A replica actor runs with Ray's OMP_NUM_THREADS = its num_cpus (1); the raw engine gets the same
    # thread count (set before torch loads: vLLM's CPU worker binds its threads at engine start).
    os.environ["OMP_NUM_THREADS"] = "1"

    from bench.common import toy_problems_file
    from pipeline.config import compose
    from pipeline.datasets import load_problems
    from pipeline.engine import load_tokenizer
    from pipeline.run import run
    from pipeline.solve import prepare_solve
    from pipeline.testing import build_tiny_llama

    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    model = args.model or build_tiny_llama(work / "tiny-llama")
    data = toy_problems_file(args.prompts, work / "problems.jsonl", seed=123)
    cfg = compose(_overrides(model, data, work / "runs", args, "raw"))
    prompts = prepare_solve(cfg, load_problems(cfg.dataset), load_tokenizer(cfg.solver)).requests
    prompts = prompts.column("prompt_token_ids").to_pylist()
    print(f"{len(prompts)} prompts, mean {sum(map(len, prompts)) / len(prompts):.0f} prompt tokens, "
          f"{args.max_tokens} generated tokens each (ignore_eos), batch_size {args.batch_size}", flush=True)

    raw = _raw(cfg, prompts, args.repeats)
    piped = []
    for i in range(args.repeats):
        result = run(compose(_overrides(model, data, work / "runs", args, f"pipeline-{i}")))
        s = result.stages["solve"]
        piped.append((s.completion_tokens, s.generate_s))
        print(f"pipeline: {s.completion_tokens} tokens in {s.generate_s:.1f}s after engine start "
              f"(start {s.engine_start_s:.1f}s) = {s.completion_tokens / s.generate_s:.0f} tok/s", flush=True)

    raw_tps = statistics.median(t / s for t, s in raw)
    pipe_tps = statistics.median(t / s for t, s in piped)
    report = {
        "prompts": len(prompts), "max_tokens": args.max_tokens, "batch_size": args.batch_size,
        "repeats": args.repeats, "raw_tokens_per_s": raw_tps, "pipeline_tokens_per_s": pipe_tps,
        "ratio": pipe_tps / raw_tps, "raw_seconds": [s for _, s in raw], "pipeline_seconds": [s for _, s in piped],
    }
    if min(s for _, s in raw) < 60:
        print(f"note: the raw run lasted {min(s for _, s in raw):.0f}s (< 60 s); use more --prompts", flush=True)
    print(f"median raw {raw_tps:.0f} tok/s | median pipeline {pipe_tps:.0f} tok/s | ratio {pipe_tps / raw_tps:.3f}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
