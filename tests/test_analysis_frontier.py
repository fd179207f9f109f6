"""Compute accounting, bootstrap, iso-compute frontier and power-law fits on hand-made inputs."""
from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from analysis import bootstrap
from analysis.compute import build_compute
from analysis.fits import MIN_DISTINCT_OPTIMA, fit_power_law
from analysis.frontier import build_frontier, iso_compute_points
from analysis.load import load_run
from analysis.synthetic import SyntheticSpec, write_synthetic_run


@pytest.fixture(scope="module")
def arrays(tmp_path_factory):
    run = write_synthetic_run(tmp_path_factory.mktemp("run"), SyntheticSpec(problems=10, solutions=4,
                                                                           verifications=3, prm=True))
    return load_run(run)


def test_lambda_is_a_flops_ratio(arrays):
    genrm = build_compute(arrays, "genrm", "normalized")
    s, v = arrays.solve_tokens, arrays.verifiers["genrm"].tokens
    per_solution = s.generated_per_sample + s.prefill_per_group / s.samples_per_group
    per_verification = v.generated_per_sample + v.prefill_per_group / v.samples_per_group
    assert genrm.lam == pytest.approx(per_verification / per_solution)
    # The synthetic PRM has half the solver's parameters: lambda halves relative to equal sizes.
    prm = build_compute(arrays, "prm", "normalized")
    equal = build_compute(arrays, "prm", "normalized", model_params={"synthetic-prm-0.5b": 1e9})
    assert prm.lam == pytest.approx(equal.lam / 2)
    assert genrm.cost(4, 2) == pytest.approx(4 * (1 + 2 * genrm.lam))
    flops = build_compute(arrays, "genrm", "flops")
    want = 2e9 * (s.prefill_per_group + 4 * s.generated_per_sample) + 2e9 * 4 * (
        v.prefill_per_group + 2 * v.generated_per_sample)
    assert flops.cost(4, 2) == pytest.approx(want)
    assert flops.cost(4, 0) == pytest.approx(2e9 * (s.prefill_per_group + 4 * s.generated_per_sample))
    rs = build_compute(arrays, "genrm", "replica_seconds")
    assert rs.cost(2, 3) == pytest.approx(2 * rs.seconds_per_solution + 6 * rs.seconds_per_verification)
    without_params = dataclasses.replace(arrays, manifest={})
    with pytest.raises(ValueError, match="needs parameter counts"):
        build_compute(without_params, "genrm", "flops")
    assert "taken as equal" in build_compute(without_params, "genrm", "normalized").notes[0]


def test_bootstrap_seeded_paired_and_nan_aware():
    rng = np.random.default_rng(0)
    base = rng.random((200, 1))
    a, b = base + 0.05 + 0.01 * rng.random((200, 1)), base
    counts = bootstrap.resample_counts(200, 500, seed=1)
    np.testing.assert_array_equal(counts, bootstrap.resample_counts(200, 500, seed=1))
    paired = bootstrap.paired_difference(a, b, counts)
    unpaired_width = (bootstrap.interval(a, counts).hi - bootstrap.interval(a, counts).lo)[0]
    assert paired.lo[0] > 0.05 and paired.hi[0] < 0.06  # the shared problem effect cancels
    assert paired.hi[0] - paired.lo[0] < unpaired_width / 5
    with_nan = np.vstack([a, [[np.nan]]])
    ci = bootstrap.interval(with_nan, bootstrap.resample_counts(201, 300, seed=0))
    assert ci.mean[0] == pytest.approx(a.mean()) and ci.lo[0] < ci.mean[0] < ci.hi[0]


def _points(lam: float, max_s: int, max_v: int) -> pl.DataFrame:
    rows = [{"method": "majority", "verifier": None, "score": None, "label": "majority", "S": s, "V": 0}
            for s in range(1, max_s + 1)]
    rows += [{"method": "best_of_n", "verifier": "g", "score": "p_yes", "label": "best_of_n[g:p_yes]", "S": s,
              "V": v} for v in range(1, max_v + 1) for s in range(1, max_s + 1)]
    df = pl.DataFrame(rows)
    return df.with_columns(compute=(pl.col("S") * (1 + lam * pl.col("V"))).cast(pl.Float64))


def test_iso_compute_uses_every_integer_point():
    points = _points(1.0, 12, 5).with_row_index("col").with_columns(pl.col("col").cast(pl.Int64))
    chosen = iso_compute_points(points, np.array([12.0])).filter(pl.col("method") == "best_of_n").sort("V")
    # Largest S with S(1+V) <= 12 for each V: 6, 4, 3, 2, 2 (not just powers of two).
    assert chosen["S"].to_list() == [6, 4, 3, 2, 2]


def test_frontier_crossover_and_gain():
    points = _points(1.0, 16, 4)
    s, v = points["S"].to_numpy(), points["V"].to_numpy()
    # Majority saturates early; verification keeps improving with S and V: a crossover must appear.
    mean = np.where(v == 0, 0.5 + 0.1 * np.minimum(np.log2(s), 1), 0.3 + 0.06 * np.log2(s) + 0.05 * v)
    rng = np.random.default_rng(0)
    values = (rng.random((300, 1)) < mean[None, :]).astype(float)
    counts = bootstrap.resample_counts(300, 200, seed=0)
    f = build_frontier(points, values, counts, np.geomspace(1, 80, 15))
    assert f.crossover is not None and 1 < f.crossover <= 80
    last = f.gain.row(f.gain.height - 1, named=True)
    assert last["gain"] > 0 and last["gain_lo"] < last["gain"] < last["gain_hi"]
    sc = f.table.filter(pl.col("family") == "self_consistency")
    assert (sc["compute"] <= sc["budget"] * (1 + 1e-12)).all()


def test_fit_recovers_known_exponent():
    c = np.geomspace(10, 1e5, 25)
    rng = np.random.default_rng(0)
    s_opt = np.round(3.0 * c ** 0.57 * np.exp(rng.normal(0, 0.05, c.size)))
    fit = fit_power_law(c, s_opt, "S_opt")
    assert fit.fitted and fit.exponent_lo < 0.57 < fit.exponent_hi
    assert fit.exponent == pytest.approx(0.57, abs=0.03)


def test_fit_refuses_fewer_than_five_distinct_optima():
    c = np.geomspace(10, 1e4, 20)
    staircase = np.repeat([1, 2, 4, 8], 5)  # 4 distinct values
    fit = fit_power_law(c, staircase, "V_opt")
    assert not fit.fitted and np.isnan(fit.exponent)
    assert f"at least {MIN_DISTINCT_OPTIMA}" in fit.describe() and "only 4 distinct" in fit.describe()
    assert fit_power_law(c, np.repeat([1, 2, 4, 8, 16], 4), "V_opt").fitted
