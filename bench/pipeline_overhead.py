"""Pipeline overhead per row with the stand-in engine, and memory as the row count grows.

    python -m bench.pipeline_overhead                          # 1e3, 1e4, 1e5, 1e6 solutions (S=100)
    python -m bench.pipeline_overhead --rows 1000 10000        # a quick look

For each size, ``rows / S`` toy problems are solved with ``model@solver=standin`` (``pipeline.standin``:
canned completions returned at once) and ``budget.verifications=0``, so everything measured is the
pipeline's own work: Ray Data batches, the replica's engine loop, grading (the toy grader, inline),
step splitting, building table rows and committing zstd Parquet parts. Each run is ``python -m
pipeline.run`` in a subprocess with its own local Ray; a sampler thread reads the resident memory (RSS)
of the driver and of every process under it (Ray's workers: the replica and grading actors and Ray
Data's tasks; Ray's own daemons) every 0.2 s, and their private part (RSS less shared pages). The
driver's RSS also counts the object-store pages it has mapped while reading result blocks; those
are bounded by ``cluster.object_store_memory``, not by rows, which is why the private part is shown.

rows/s counts from the moment the replica's engine was ready to the last commit (the manifest's
``generate_s``: Ray start and the replica's start excluded). Baseline, measured in the same run: the
same rows (read back from the run's parts, untimed) written with ``pyarrow.parquet`` directly, part by
part with the same compression. Overhead per row = 1/pipeline rate - 1/baseline rate.

Writes ``overhead.csv`` and ``overhead.png`` (rows/s and peak RSS against rows) to ``--out-dir``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import pyarrow.parquet as pq

from bench.common import toy_problems_file
from pipeline.config import PROJECT_ROOT

MiB = 2**20


@dataclass
class Peaks:
    """Peak memory (MiB) seen while a run's process tree lived. "private" is RSS less shared pages
    (``psutil``'s ``shared``: mapped files and the object store's shared memory), so the sum over many
    processes does not count a shared library or an object-store page more than once per process."""

    driver_rss: float = 0.0
    driver_private: float = 0.0
    workers_private: float = 0.0  # sum over Ray worker processes ("ray::..."), at the worst sample
    worker_max_rss: float = 0.0  # the largest single worker
    ray_daemons_rss: float = 0.0  # gcs, raylet, agents: sum at the worst sample


def _sample(root: psutil.Process, peaks: Peaks) -> None:
    procs = [root]
    try:
        procs += root.children(recursive=True)
    except psutil.Error:
        return
    workers, daemons = [], []
    for p in procs:
        try:
            mem = p.memory_info()
            rss, private = mem.rss / MiB, (mem.rss - mem.shared) / MiB
            if p is root:
                peaks.driver_rss, peaks.driver_private = max(peaks.driver_rss, rss), max(peaks.driver_private, private)
            elif p.name().startswith("ray::") or " ".join(p.cmdline()[:1]).startswith("ray::"):
                workers.append((rss, private))
            else:
                daemons.append(rss)
        except psutil.Error:  # exited between listing and reading
            continue
    peaks.workers_private = max(peaks.workers_private, sum(w[1] for w in workers))
    peaks.worker_max_rss = max(peaks.worker_max_rss, max((w[0] for w in workers), default=0.0))
    peaks.ray_daemons_rss = max(peaks.ray_daemons_rss, sum(daemons))


def run_measured(args: list[str], log: Path, timeout_s: float) -> tuple[int, float, Peaks]:
    """Run ``python -m pipeline.run args`` in its own session, sampling its tree's memory;
    returns (exit code, wall seconds, peaks). Whatever it leaves behind is killed with its group."""
    peaks = Peaks()
    t0 = time.monotonic()
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.run", *args], cwd=PROJECT_ROOT, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
        root = psutil.Process(proc.pid)
        done = threading.Event()

        def sampler() -> None:
            while not done.wait(0.2):
                _sample(root, peaks)

        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            rc = -1
        finally:
            done.set()
            thread.join()
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
    return rc, time.monotonic() - t0, peaks


def pyarrow_baseline(parts: list[Path], out: Path) -> float:
    """Seconds to write the tables of ``parts`` again with pyarrow directly (reads untimed)."""
    out.mkdir(parents=True, exist_ok=True)
    spent = 0.0
    for i, part in enumerate(parts):
        table = pq.read_table(part)
        t0 = time.perf_counter()
        with open(out / f"part-{i:06d}.parquet", "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        spent += time.perf_counter() - t0
    return spent


def measure(rows: int, solutions: int, work: Path, batch_size: int, timeout_s: float) -> dict:
    """One size: the pipeline run, its memory, and the pyarrow baseline on its rows."""
    problems = max(1, rows // solutions)
    data = toy_problems_file(problems, work / f"problems-{rows}.jsonl", seed=11)
    run_id = f"rows-{rows}"
    args = ["model@solver=standin", f"dataset.file={data}", f"output_dir={work}", f"run_id={run_id}",
            "wandb.enabled=false", f"budget.solutions={solutions}", "budget.verifications=0",
            f"cluster.batch_size={batch_size}"]
    rc, wall, peaks = run_measured(args, work / f"{run_id}.log", timeout_s)
    if rc != 0:
        tail = (work / f"{run_id}.log").read_text()[-3000:]
        raise RuntimeError(f"pipeline run of {rows} rows failed (exit {rc}):\n{tail}")
    run_dir = work / run_id
    solve = json.loads((run_dir / "manifest.json").read_text())["invocations"][-1]["stages"]["solve"]
    parts = sorted((run_dir / "solutions").glob("part-*.parquet"))
    written = sum(pq.read_metadata(p).num_rows for p in parts)
    base_s = pyarrow_baseline(parts, work / f"baseline-{rows}")
    pipe_rate, base_rate = written / solve["generate_s"], written / base_s
    return {"rows": written, "problems": problems, "solutions_per_problem": solutions, "wall_s": round(wall, 1),
            "pipeline_s": round(solve["generate_s"], 2), "pipeline_rows_per_s": round(pipe_rate),
            "pyarrow_s": round(base_s, 3), "pyarrow_rows_per_s": round(base_rate),
            "ratio": float(f"{pipe_rate / base_rate:.4g}"),
            "overhead_us_per_row": round(1e6 * (1 / pipe_rate - 1 / base_rate), 1),
            **{f"peak_{k}_mib": round(v) for k, v in asdict(peaks).items()}}


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r["rows"] for r in results]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(rows, [r["pipeline_rows_per_s"] for r in results], "o-", label="pipeline (stand-in engine)")
    a.plot(rows, [r["pyarrow_rows_per_s"] for r in results], "s--", label="pyarrow write only")
    a.set(xscale="log", yscale="log", xlabel="solutions (rows)", ylabel="rows / s", title="throughput")
    a.legend()
    for key, label in (("driver_rss", "driver RSS"), ("driver_private", "driver private"),
                       ("workers_private", "Ray workers private (sum)"), ("worker_max_rss", "largest worker RSS")):
        b.plot(rows, [r[f"peak_{key}_mib"] for r in results], "o-", label=label)
    b.set(xscale="log", xlabel="solutions (rows)", ylabel="peak memory (MiB)", title="memory", ylim=(0, None))
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    ap.add_argument("--solutions", type=int, default=100, help="S: solutions per problem")
    ap.add_argument("--batch-size", type=int, default=64, help="cluster.batch_size (problems per engine call)")
    ap.add_argument("--timeout-s", type=float, default=3600, help="per size; a size that takes longer fails")
    ap.add_argument("--out-dir", type=Path, default=PROJECT_ROOT / "runs" / "bench" / "pipeline_overhead")
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        for n in sorted(args.rows):
            r = measure(n, args.solutions, Path(tmp), args.batch_size, args.timeout_s)
            results.append(r)
            print(f"{r['rows']:>9} rows: pipeline {r['pipeline_rows_per_s']:>7} rows/s ({r['pipeline_s']}s, wall "
                  f"{r['wall_s']}s) | pyarrow {r['pyarrow_rows_per_s']:>8} rows/s | overhead "
                  f"{r['overhead_us_per_row']} us/row | peak MiB: driver RSS {r['peak_driver_rss_mib']} (private "
                  f"{r['peak_driver_private_mib']}), workers private {r['peak_workers_private_mib']} (largest RSS "
                  f"{r['peak_worker_max_rss_mib']}), ray daemons RSS {r['peak_ray_daemons_rss_mib']}", flush=True)
            with (args.out_dir / "overhead.csv").open("w", newline="") as fh:  # rewritten per size: a kill keeps the rest
                w = csv.DictWriter(fh, fieldnames=list(results[0]))
                w.writeheader()
                w.writerows(results)
    plot(results, args.out_dir / "overhead.png")
    first, last = results[0], results[-1]
    print(f"wrote {args.out_dir / 'overhead.csv'} and overhead.png")
    print(f"ratio pipeline/pyarrow rows/s at {last['rows']} rows: {last['ratio']:.3f} "
          f"({last['overhead_us_per_row']} us/row overhead); peak MiB {first['rows']} -> {last['rows']} rows: "
          f"driver RSS {first['peak_driver_rss_mib']} -> {last['peak_driver_rss_mib']} (private "
          f"{first['peak_driver_private_mib']} -> {last['peak_driver_private_mib']}), workers private "
          f"{first['peak_workers_private_mib']} -> {last['peak_workers_private_mib']}")


if __name__ == "__main__":
    main()
