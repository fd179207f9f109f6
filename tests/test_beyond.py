"""Slices, verifier-quality and adaptive-policy outputs of the analysis run."""
import numpy as np
import polars as pl
import pytest

from analysis.config import AnalysisConfig
from analysis.load import load_run, read_table
from analysis.run import run
from analysis.slices import slice_labels
from analysis.synthetic import SyntheticSpec, write_synthetic_run


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    run_dir = write_synthetic_run(tmp_path_factory.mktemp("beyond") / "run",
                                  SyntheticSpec(problems=60, solutions=8, verifications=4, seed=3))
    result = run(AnalysisConfig(run_dir=str(run_dir), bootstrap=100, draws=2, policy_orders=4, plots=False))
    return run_dir, result


def test_slice_curves_average_back_to_the_whole(analysed):
    run_dir, result = analysed
    sc = pl.read_parquet(result.out_dir / "slice_curves.parquet").filter(pl.col("slice_by") == "level")
    weighted = (sc.group_by("label", "S", "V")
                .agg(((pl.col("success") * pl.col("n_problems")).sum() / pl.col("n_problems").sum()).alias("w")))
    whole = result.curves.join(weighted, on=["label", "S", "V"])
    assert whole.height == result.curves.height
    assert np.allclose(whole["w"], whole["success"], atol=1e-12)
    levels = read_table(run_dir, "problems")["level"].cast(pl.String).unique().sort().to_list()
    assert sorted(sc["slice"].unique().to_list()) == levels
    front = pl.read_parquet(result.out_dir / "slice_frontier.parquet")
    assert set(front["family"].unique()) == {"self_consistency", "verification", "best"}


def test_slice_columns_with_one_value_are_skipped(analysed):
    run_dir, _ = analysed
    assert slice_labels(load_run(run_dir), "dataset") is None
    with pytest.raises(ValueError, match="no column 'nope'"):
        slice_labels(load_run(run_dir), "nope")


def test_policies_are_matched_to_cheaper_fixed_points(analysed):
    _, result = analysed
    pol = pl.read_parquet(result.out_dir / "policies.parquet")
    assert pol.height >= 5
    assert (pol["fixed_compute"] <= pol["compute"] * (1 + 1e-9)).all()
    assert np.allclose(pol["gain"], pol["success"] - pol["fixed_success"], atol=1e-9)
    assert ((pol["ci_lo"] <= pol["success"]) & (pol["success"] <= pol["ci_hi"])).all()
    # A policy that verifies whenever the vote is not unanimous spends at least as much as one that
    # verifies only below half agreement.
    split = pol.filter(pl.col("policy").str.starts_with("verify_when_split")).sort("compute")
    assert split["verifications"].is_sorted()


def test_verifier_quality_tables_and_report(analysed):
    _, result = analysed
    q = pl.read_parquet(result.out_dir / "verifier_quality.parquet")
    assert q["verifier"].to_list() == ["genrm"] and 0.5 < q["auroc"][0] <= 1.0
    by_v = pl.read_parquet(result.out_dir / "verifier_quality_vs_v.parquet")
    assert by_v["V"].to_list() == [1, 2, 4]
    text = (result.out_dir / "report.md").read_text()
    for heading in ("## Verifier quality", "## Slices", "## Adaptive allocation"):
        assert heading in text


def test_gain_plot_skips_budgets_without_a_finite_relative_gain(tmp_path):
    from analysis.plots import gain_plot

    gain = pl.DataFrame({"budget": [1.0, 2.0], "rel_gain": [float("inf"), float("nan")],
                         "rel_lo": [float("inf"), 0.0], "rel_hi": [float("inf"), 1.0]})
    assert gain_plot(gain, "C", tmp_path, ["png"]) == []
    ok = gain.with_columns(rel_gain=pl.Series([0.1, 0.2]), rel_lo=pl.Series([0.0, 0.1]), rel_hi=pl.Series([0.2, 0.3]))
    assert [p.name for p in gain_plot(ok, "C", tmp_path, ["png"])] == ["gain.png"]


def test_replica_seconds_come_from_the_pipeline_manifest_invocations():
    from analysis.compute import replica_seconds

    manifest = {"config": {"verification": {"name": "g"}}, "invocations": [
        {"stages": {"solve": {"replica_seconds": 10.0}}},  # killed before verifying
        {"stages": {"solve": {"replica_seconds": 2.5}, "verify": {"replica_seconds": 30.0}}}]}
    assert replica_seconds(manifest) == {"solve": 12.5, "verify": {"g": 30.0}}
    # a run extended with a second verifier: each invocation names its own
    manifest["invocations"].append({"verifier": "h", "stages": {"verify": {"replica_seconds": 4.0}}})
    assert replica_seconds(manifest) == {"solve": 12.5, "verify": {"g": 30.0, "h": 4.0}}
    assert replica_seconds({"replica_seconds": {"solve": 1.0}}) == {"solve": 1.0}
    assert replica_seconds({}) is None
