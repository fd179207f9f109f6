"""The analysis CLI end to end on a synthetic run, its config validation, and the notebook run headless."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import polars as pl
import pytest
from nbclient import NotebookClient

from analysis.config import AnalysisConfig
from analysis.importers import import_jsonl
from analysis.run import run
from analysis.synthetic import SyntheticSpec, write_synthetic_run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    return write_synthetic_run(tmp_path_factory.mktemp("run"), SyntheticSpec(
        problems=30, solutions=8, verifications=4, critic_verifications=2, prm=True, seed=1))


def test_cli_end_to_end(synthetic_run, tmp_path):
    out = tmp_path / "analysis"
    proc = subprocess.run([sys.executable, "-m", "analysis.run", f"run_dir={synthetic_run}", f"out_dir={out}",
                           "bootstrap=100", "draws=4"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("curves", "frontier", "frontier_per_method", "gain", "fits"):
        assert (out / f"{name}.parquet").exists() and (out / f"{name}.csv").exists()
    for fig in ("frontier", "gain", "optimal_split", "curves_best_of_n_genrm_p_yes"):
        assert (out / f"{fig}.png").stat().st_size > 1000 and (out / f"{fig}.svg").exists()
    assert not (tmp_path / "outputs").exists()  # Hydra writes nothing into the working directory
    curves = pl.read_parquet(out / "curves.parquet")
    assert curves.equals(pl.read_csv(out / "curves.csv", schema=curves.schema))
    at = {(r["label"], r["S"], r["V"]): r for r in curves.iter_rows(named=True)}
    # Every integer S and V is evaluated (grid=all), within the recorded maxima.
    assert {s for (lab, s, v) in at if lab == "best_of_n[genrm:p_yes]"} == set(range(1, 9))
    assert {v for (lab, s, v) in at if lab == "best_of_n[genrm:p_yes]"} == set(range(1, 5))
    # Majority and oracle agree at S=1 (one sample: its own correctness); oracle bounds majority.
    assert at[("majority", 1, 0)]["success"] == pytest.approx(at[("oracle", 1, 0)]["success"], abs=1e-12)
    assert all(at[("oracle", s, 0)]["success"] >= at[("majority", s, 0)]["success"] - 1e-12 for s in range(1, 9))
    assert (curves["ci_lo"] <= curves["success"] + 1e-12).all() and (curves["success"] <= curves["ci_hi"] + 1e-12).all()
    report = (out / "report.md").read_text()
    assert "crossover budget" in report and "S_opt" in report and "λ =" in report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_problems"] == 30 and summary["lambda"]["genrm"] > 0


def test_same_seed_same_outputs(synthetic_run, tmp_path):
    def once(name):
        return run(AnalysisConfig(run_dir=str(synthetic_run), out_dir=str(tmp_path / name), bootstrap=50, draws=2,
                                  grid="pow2", plots=False)).curves
    assert once("a").equals(once("b"))


def test_partial_run_with_ragged_counts(synthetic_run, tmp_path):
    """A run still in progress: some problems have fewer solutions, some solutions no verifications."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    partial = tmp_path / "partial"
    shutil.copytree(synthetic_run, partial, ignore=shutil.ignore_patterns("analysis"))
    for table in ("solutions", "verifications"):
        for path in (partial / table).glob("*.parquet"):
            data = pq.read_table(path)
            keep = pc.invert(pc.and_(pc.equal(data["problem_id"], "p00003"), pc.greater(data["solution_idx"], 4)))
            if table == "verifications":
                keep = pc.and_(keep, pc.invert(pc.equal(data["solution_idx"], 0)))
            pq.write_table(data.filter(keep), path)
    res = run(AnalysisConfig(run_dir=str(partial), bootstrap=30, draws=2, plots=False))
    assert res.curves.filter(pl.col("S") == 8)["n_problems"].max() == 29
    assert res.curves.filter(pl.col("S") == 5)["n_problems"].min() == 30
    assert "at least S solutions" in (res.out_dir / "report.md").read_text()


def test_config_rejects_bad_values_early(synthetic_run):
    with pytest.raises(ValueError, match="axis='bogus'"):
        AnalysisConfig(run_dir=str(synthetic_run), axis="bogus")
    with pytest.raises(ValueError, match="run_dir is required"):
        AnalysisConfig()
    proc = subprocess.run([sys.executable, "-m", "analysis.run", f"run_dir={synthetic_run}", "ties=coin"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode != 0 and "ties='coin'" in proc.stderr


def test_imported_run_without_tokens_needs_lambda(tmp_path):
    src = tmp_path / "s.jsonl"
    rows = [{"problem_id": f"q{i}", "answers": ["1", "2", "1", None], "correct": [i % 2 == 0, False, i % 2 == 0, False],
             "scores": [0.9, 0.2, 0.6, 0.1]} for i in range(6)]
    src.write_text("\n".join(json.dumps(r) for r in rows))
    run_dir = import_jsonl(src, tmp_path / "run")
    with pytest.raises(ValueError, match="set lam"):
        run(AnalysisConfig(run_dir=str(run_dir), bootstrap=20, plots=False))
    res = run(AnalysisConfig(run_dir=str(run_dir), bootstrap=20, plots=False, lam=1.0))
    maj = res.curves.filter(pl.col("label") == "majority").sort("S")["success"].to_numpy()
    np.testing.assert_allclose(maj[-1], 0.5)  # three problems always right, three always wrong


def test_notebook_executes_headless(synthetic_run, monkeypatch):
    monkeypatch.setenv("SOLVE_VERIFY_RUN_DIR", str(synthetic_run))
    nb = nbformat.read(ROOT / "analysis" / "notebooks" / "explore.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
