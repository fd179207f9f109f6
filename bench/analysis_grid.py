"""Bench: the full analysis grid on a synthetic run of 500 problems x 128 solutions x 128 verifications.

    python -m bench.analysis_grid                      # the issue's size (8M verification rows)
    python -m bench.analysis_grid --problems 50 --baseline-problems 2   # a quick look

Writes the run with ``analysis.synthetic`` in a subprocess (so its memory is not counted), then times in
this process: loading the tables, every method at S, V in {1, 2, 4, ..., 128} (and V = 0), 1,000
bootstrap resamples over problems for every point, frontiers with paired bootstrap gains and fits
(``analysis.run.run`` without plots). Peak RSS is this process's. The baseline
(``bench.analysis_baseline``: plain per-problem Python loops, same semantics) runs on a subset of
problems and is scaled to all of them; its bootstrap runs on the full value matrix.
"""
from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from analysis.config import AnalysisConfig
from analysis import estimators as est
from analysis.load import RunArrays, load_run
from analysis.run import grid_values, run
from bench import analysis_baseline as baseline


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _baseline(arrays: RunArrays, n_problems: int, draws: int, seed: int) -> tuple[float, dict]:
    ver = arrays.verifiers["genrm"]
    p_yes, verdict = ver.scores["p_yes"][0], ver.scores["verdict"][0]
    ks = grid_values("pow2", arrays.max_solutions, 1)
    vs = grid_values("pow2", ver.max_verifications, 1)
    rng = random.Random(seed)
    start = time.perf_counter()
    results = {}
    for i in range(n_problems):
        n = int(arrays.valid[i].sum())
        results[i] = baseline.problem_grid(arrays.classes["equivalence"][i, :n].tolist(),
                                           arrays.correct[i, :n].tolist(), p_yes[i, :n].tolist(),
                                           verdict[i, :n].tolist(), ks, vs, draws, rng)
    return time.perf_counter() - start, results


def _exact_agreement(arrays: RunArrays, base: dict) -> float:
    """Largest difference between the baseline's and the vectorised exact methods (oracle, majority)."""
    n = len(base)
    ks = np.array(grid_values("pow2", arrays.max_solutions, 1))
    sub = (arrays.classes["equivalence"][:n], arrays.correct[:n], arrays.valid[:n])
    maj = est.majority_vote(*sub, ks).value
    orc = est.pass_at_k(sub[2].sum(1), (sub[1] & sub[2]).sum(1), ks).value
    return max(max(abs(maj[i, j] - base[i][("majority", k, 0)]), abs(orc[i, j] - base[i][("oracle", k, 0)]))
               for i in range(n) for j, k in enumerate(ks))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=500)
    ap.add_argument("--solutions", type=int, default=128)
    ap.add_argument("--verifications", type=int, default=128)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=8)
    ap.add_argument("--baseline-problems", type=int, default=4)
    ap.add_argument("--run-dir", type=Path, help="reuse or create the synthetic run here")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory() if args.run_dir is None else None
    run_dir = args.run_dir or Path(tmp.name) / "run"
    if not (run_dir / "manifest.json").exists():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "analysis.synthetic", str(run_dir), "--problems", str(args.problems),
                        "--solutions", str(args.solutions), "--verifications", str(args.verifications),
                        "--prm", "true", "--problems-per-file", "50"], check=True, stdout=subprocess.DEVNULL)
        print(f"generated {args.problems} x {args.solutions} x {args.verifications} run in "
              f"{time.perf_counter() - t0:.1f} s")
    cfg = AnalysisConfig(run_dir=str(run_dir), out_dir=str(run_dir / "analysis"), grid="pow2",
                         bootstrap=args.bootstrap, draws=args.draws, plots=False)
    t0 = time.perf_counter()
    result = run(cfg)
    elapsed = time.perf_counter() - t0
    points = result.curves.height
    print(f"vectorised: {elapsed:.1f} s for {points} grid points x {args.problems} problems, "
          f"{args.bootstrap} bootstrap resamples, {args.draws} Monte-Carlo draws; peak RSS {_peak_rss_gib():.2f} GiB")

    arrays = load_run(run_dir)
    base_s, base = _baseline(arrays, args.baseline_problems, args.draws, seed=0)
    base_points = len(base[0])
    values = np.random.default_rng(0).random((args.problems, points))  # the bootstrap costs the same on any values
    t0 = time.perf_counter()
    baseline.bootstrap_intervals(values, args.bootstrap, seed=0)
    base_boot = time.perf_counter() - t0
    per_problem = base_s / args.baseline_problems
    scaled = per_problem * args.problems + base_boot
    print(f"baseline: {base_s:.1f} s for {base_points} points (genrm methods) on {args.baseline_problems} problems, "
          f"scaled to {args.problems}: {per_problem * args.problems:.0f} s, plus bootstrap {base_boot:.1f} s "
          f"= {scaled:.0f} s")
    print(f"ratio baseline / vectorised: {scaled / elapsed:.1f}x (the baseline covers {base_points} of the "
          f"{points} points: no PRM methods)")
    print(f"exact methods, baseline vs vectorised on {len(base)} problems: max |difference| "
          f"{_exact_agreement(arrays, base):.1e}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
