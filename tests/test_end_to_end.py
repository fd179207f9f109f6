"""The shipped toy models end to end: pipeline → analysis → notebook → export on a small real run (the
session's shared run of the shipped solver and GenRM verifier, ``toy_fixed_run`` in conftest: 12 toy
problems of levels 3-5, S=8, V=1; this module works on a copy).

Unlike the pipeline tests (random-weight model, which never writes a verdict), the trained verifier
writes its verdicts, so this exercises the in-text verdict-token path of P(Yes).
"""
import json
from pathlib import Path

import nbformat
import polars as pl
import pytest
from nbclient import NotebookClient

from analysis.config import AnalysisConfig
from analysis.export import export
from analysis.run import run as run_analysis
from conftest import TOY_S, TOY_V, copy_run

ROOT = Path(__file__).resolve().parent.parent
S, V = TOY_S, TOY_V


@pytest.fixture(scope="module")
def real_run(toy_fixed_run, tmp_path_factory):
    return copy_run(toy_fixed_run, tmp_path_factory.mktemp("e2e"))


@pytest.mark.slow
def test_trained_verifier_writes_verdicts_read_from_the_verdict_token(real_run):
    ver = pl.read_parquet(sorted((real_run / "verifications").glob("part-*.parquet")))
    assert ver.height == 12 * S * V
    by_source = dict(ver.group_by("p_yes_source").len().iter_rows())
    assert by_source.get("verdict_token", 0) > 0.9 * ver.height
    ok = ver.filter(pl.col("p_yes_source") == "verdict_token")
    assert ok["p_yes"].is_between(0, 1).all() and ok["verdict"].is_not_null().all()
    # A "Yes" verdict is the sampled token, so its P(Yes) is high more often than not.
    assert ok.filter(pl.col("verdict"))["p_yes"].mean() > ok.filter(~pl.col("verdict"))["p_yes"].mean()


@pytest.mark.slow
def test_analysis_notebook_and_export_on_the_real_run(real_run, monkeypatch):
    result = run_analysis(AnalysisConfig(run_dir=str(real_run), bootstrap=200, draws=2, policy_orders=2))
    assert (result.out_dir / "report.md").read_text().startswith(f"# Analysis of `{real_run}`")
    assert result.curves.filter(pl.col("method") == "best_of_n").height > 0
    monkeypatch.setenv("SOLVE_VERIFY_RUN_DIR", str(real_run))
    nb = nbformat.read(ROOT / "analysis" / "notebooks" / "explore.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    # The manifest records parameter counts, so the FLOPs axis needs no extra config.
    assert json.loads((real_run / "manifest.json").read_text())["model_params"]["toy-solver"] > 5e5
    flops = run_analysis(AnalysisConfig(run_dir=str(real_run), out_dir=str(real_run / "analysis-flops"), axis="flops",
                                        bootstrap=50, draws=2, policy_orders=2, plots=False))
    assert flops.curves["compute"].min() > 1e6
    metrics = json.loads((export(real_run) / "results.json").read_text())["results"]["toy"]
    assert 0 <= metrics[f"maj@{S}"] <= metrics[f"pass@{S}"] <= 1
