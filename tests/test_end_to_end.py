"""The shipped toy models end to end: pipeline → analysis → notebook → export on a small real run.

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
from pipeline.config import compose
from pipeline.run import run as run_pipeline

ROOT = Path(__file__).resolve().parent.parent
S, V = 6, 3


@pytest.fixture(scope="module")
def real_run(ray_local, tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e")
    cfg = compose([f"output_dir={out}", "run_id=e2e", "dataset.file=data/toy/toy_demo.jsonl", "dataset.limit=12",
                   f"budget.solutions={S}", f"budget.verifications={V}", "wandb.enabled=false"])
    return run_pipeline(cfg).run_dir


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
