"""Run every benchmark and print one table of their ratios (what `make bench` runs).

    python -m bench.run            # full sizes (~40 min on 2 cores)
    python -m bench.run --quick    # small sizes, to check the benches run (ratios are noisier)

Each bench measures its baseline in the same run and prints a line containing "ratio"; that line is
what the table shows, beside the exact command, so any row can be rerun alone.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

BENCHES = {
    "pipeline vs raw vLLM (tokens/s)": (["bench.pipeline_throughput"], ["--prompts", "2048", "--repeats", "1"]),
    "verification prefix cache on vs off": (["bench.prefix_sharing"], ["--problems", "10", "--verifications", "4"]),
    "analysis full grid vs per-problem loop": (["bench.analysis_grid"],
                                               ["--problems", "100", "--solutions", "32", "--verifications", "32"]),
    "pipeline overhead per row, stand-in engine, up to 1M rows": (["bench.pipeline_overhead"],
                                                                  ["--rows", "1000", "10000"]),
    "solve throughput 2 vs 1 solver replicas": (["bench.replica_scaling"], ["--problems", "128", "--max-tokens", "16",
                                                                                "--batch-size", "8"]),
    "adaptive early stopping vs fixed S (tokens, replica-s)": (["bench.adaptive_saving"],
                                                               ["--limit", "16", "--solutions", "8"]),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rows = []
    for name, (module, quick) in BENCHES.items():
        cmd = [sys.executable, "-m", *module, *(quick if args.quick else [])]
        t0 = time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True)
        lines = [ln for ln in out.stdout.splitlines() if "ratio" in ln]
        result = lines[-1].strip() if out.returncode == 0 and lines else f"FAILED (exit {out.returncode})"
        rows.append((name, " ".join(["python", "-m", *module, *(quick if args.quick else [])]), result,
                     time.monotonic() - t0))
        if out.returncode != 0:
            print(out.stdout[-2000:], out.stderr[-3000:], sep="\n", file=sys.stderr)
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}")
    print("| bench | command | result | wall s |\n|---|---|---|---|")
    for name, cmd, result, wall in rows:
        print(f"| {name} | `{cmd}` | {result} | {wall:.0f} |")
    sys.exit(0 if all(not r[2].startswith("FAILED") for r in rows) else 1)


if __name__ == "__main__":
    main()
