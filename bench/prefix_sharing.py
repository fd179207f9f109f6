"""Verification with the engine's prefix cache on vs off: prompt tokens computed per verification.

    python -m bench.prefix_sharing                      # 40 toy problems, S=4, V=8, shipped toy models
    python -m bench.prefix_sharing --problems 10 --verifications 4

The same run (same problems, solutions, seed and engine settings) is made twice, differing only in
``verifier.enable_prefix_caching``; the V verifications of a solution share its prompt. Reported from the
engine's own counters (``cached_prompt_tokens``): prompt tokens computed per verification
(prompt − cached) and the verify stage's generated tokens/s after engine start, with their ratios.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import polars as pl


def _one(work: Path, data: Path, args, caching: bool) -> dict:
    from pipeline.config import compose
    from pipeline.run import run

    run_id = f"prefix-{'on' if caching else 'off'}"
    cfg = compose([f"dataset.file={data}", f"output_dir={work}", f"run_id={run_id}", "wandb.enabled=false",
                   f"budget.solutions={args.solutions}", f"budget.verifications={args.verifications}",
                   f"verifier.enable_prefix_caching={str(caching).lower()}"])
    result = run(cfg)
    ver = pl.read_parquet(sorted((result.run_dir / "verifications").glob("part-*.parquet")))
    stage = result.stages["verify"]
    computed = (ver["prompt_tokens"] - ver["cached_prompt_tokens"].fill_null(0)).mean()
    return {"caching": caching, "verifications": ver.height, "prompt_tokens_per_verification": ver["prompt_tokens"].mean(),
            "computed_prompt_tokens_per_verification": computed,
            "verify_tokens_per_s": stage.completion_tokens / stage.generate_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=40)
    ap.add_argument("--solutions", type=int, default=4)
    ap.add_argument("--verifications", type=int, default=8)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    from bench.common import toy_problems_file

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = toy_problems_file(args.problems, work / "problems.jsonl", seed=321)
        off, on = _one(work, data, args, False), _one(work, data, args, True)
    report = {"off": off, "on": on,
              "computed_prompt_ratio": on["computed_prompt_tokens_per_verification"]
              / off["computed_prompt_tokens_per_verification"],
              "throughput_ratio": on["verify_tokens_per_s"] / off["verify_tokens_per_s"]}
    for r in (off, on):
        print(f"prefix cache {'on ' if r['caching'] else 'off'}: {r['verifications']} verifications, "
              f"{r['prompt_tokens_per_verification']:.0f} prompt tokens each, "
              f"{r['computed_prompt_tokens_per_verification']:.1f} computed, {r['verify_tokens_per_s']:.0f} tok/s")
    print(f"ratio on/off: computed prompt tokens {report['computed_prompt_ratio']:.3f}, "
          f"verify throughput {report['throughput_ratio']:.2f}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
