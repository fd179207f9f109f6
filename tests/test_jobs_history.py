"""History dataset, regression rule and report on synthetic nights (no pipeline needed)."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from jobs import history as hist
from jobs.regression import RegressionRule, evaluate, judge
from jobs.report import FailedRun, write_report
from jobs.storage import resolve


def _night(date: str, values: dict[str, float | None], model: str = "meta/llama 8B", budget: str = "s8v4"):
    return [hist.MetricRecord(date=date, model=model, dataset="toy", budget=budget, metric=m, value=v,
                              run_id=f"r-{date}") for m, v in values.items()]


def _dates(n: int) -> list[str]:
    start = dt.date(2026, 1, 1)
    return [(start + dt.timedelta(days=i)).isoformat() for i in range(n)]


def test_append_partitions_and_replaces_a_rerun_night(tmp_path):
    loc = resolve(str(tmp_path / "history"))
    d1, d2 = _dates(2)
    hist.append(loc, _night(d1, {"pass@1": 0.5, "maj@8": 0.6}))
    hist.append(loc, _night(d2, {"pass@1": 0.55, "maj@8": 0.65}))
    hist.append(loc, _night(d2, {"pass@1": 0.56, "maj@8": 0.66}))  # the same night re-run: replaced, not doubled
    parts = sorted(p.relative_to(tmp_path / "history").parent.as_posix()
                   for p in (tmp_path / "history").rglob("*.parquet"))
    assert parts == [f"date={d1}/model=meta%2Fllama%208B/dataset=toy", f"date={d2}/model=meta%2Fllama%208B/dataset=toy"]
    table = hist.read(loc)
    assert table.height == 4
    assert table.filter(pl.col("date") == d2).sort("metric")["value"].to_list() == [0.66, 0.56]
    assert table["model"].unique().to_list() == ["meta/llama 8B"]


def test_read_of_missing_history_is_empty(tmp_path):
    table = hist.read(resolve(str(tmp_path / "none")))
    assert table.height == 0 and "value" in table.columns


@pytest.mark.parametrize("bad", [{"date": "2026-13-01"}, {"metric": ""}, {"value": float("nan")}])
def test_bad_records_are_refused_with_the_key(bad):
    fields = dict(date="2026-01-01", model="m", dataset="d", budget="b", metric="pass@1", value=0.5) | bad
    with pytest.raises(ValueError, match="date|metric|finite"):
        hist.MetricRecord(**fields)


def test_judge_rule():
    rule = RegressionRule(min_history=3, window=5, k=3.0, min_delta=0.02)
    past = [0.50, 0.52, 0.51, 0.49, 0.50]
    # baseline = median 0.50, MAD = 0.01 -> spread 0.014826, tolerance = 3 * 0.014826 = 0.0445
    status, baseline, spread, tol = judge(0.44, past, rule, lower_is_better=False)
    assert (status, baseline) == ("regression", 0.50)
    assert spread == pytest.approx(0.014826) and tol == pytest.approx(0.044478)
    assert judge(0.46, past, rule, False)[0] == "ok"
    assert judge(0.56, past, rule, False)[0] == "improvement"
    assert judge(0.56, past, rule, True)[0] == "regression"  # e.g. seconds per problem
    assert judge(0.10, past[:2], rule, False)[0] == "insufficient_history"
    # zero spread: the floor min_delta decides
    assert judge(0.49, [0.5] * 4, rule, False)[0] == "ok"
    assert judge(0.47, [0.5] * 4, rule, False)[0] == "regression"
    # only the last `window` nights count: an old level does not mask a new one
    assert judge(0.50, [0.9] * 10 + [0.5] * 5, rule, False)[0] == "ok"


def test_one_bad_past_night_does_not_hide_the_next():
    rule = RegressionRule(min_history=3, window=14, k=3.0, min_delta=0.02)
    past = [0.60, 0.61, 0.60, 0.59, 0.20, 0.60]  # one broken night in the history
    assert judge(0.45, past, rule, False)[0] == "regression"


def _simulate(tmp_path, nights: list[dict[str, float | None]]):
    loc = resolve(str(tmp_path / "history"))
    dates = _dates(len(nights))
    for date, values in zip(dates, nights):
        hist.append(loc, _night(date, values))
    return hist.read(loc), dates


def test_evaluate_flags_injected_regression_only(tmp_path):
    base = {"pass@1": 0.50, "maj@8": 0.62, "bon@8_v4": 0.70}
    nights = [base, {**base, "pass@1": 0.51}, {**base, "maj@8": 0.61}, dict(base),
              {**base, "bon@8_v4": 0.55}]
    table, dates = _simulate(tmp_path, nights)
    rule = RegressionRule(min_history=3)
    unchanged = evaluate(table, dates[3], rule)
    assert {f.status for f in unchanged} == {"ok"}
    regressed = evaluate(table, dates[4], rule)
    assert [(f.metric, f.status) for f in regressed if f.failing] == [("bon@8_v4", "regression")]
    assert regressed[0].change == pytest.approx(-0.15)
    early = evaluate(table, dates[1], rule)
    assert {f.status for f in early} == {"insufficient_history"}


def test_a_metric_missing_tonight_fails(tmp_path):
    base = {"pass@1": 0.5, "maj@8": 0.6}
    table, dates = _simulate(tmp_path, [base] * 3 + [{"pass@1": 0.5}])
    findings = evaluate(table, dates[-1], RegressionRule(min_history=3))
    assert [(f.metric, f.status) for f in findings] == [("maj@8", "missing"), ("pass@1", "ok")]
    with pytest.raises(ValueError, match="no rows for 2030-01-01"):
        evaluate(table, "2030-01-01", RegressionRule())


def test_rule_validation():
    with pytest.raises(ValueError, match="min_history"):
        RegressionRule(min_history=1)
    with pytest.raises(ValueError, match="window"):
        RegressionRule(min_history=5, window=3)


def test_report_lists_flagged_changes_and_plots(tmp_path):
    base = {"pass@1": 0.50, "maj@k": 0.62}
    table, dates = _simulate(tmp_path, [base] * 4 + [{**base, "maj@k": 0.40}])
    rule = RegressionRule(min_history=3)
    findings = evaluate(table, dates[-1], rule)
    out = resolve(str(tmp_path / "reports" / dates[-1]))
    report = write_report(out, table, findings, dates[-1], rule,
                          [FailedRun("m", "toy", "big", "exit 1: out of memory")])
    text = (tmp_path / "reports" / dates[-1] / "report.md").read_text()
    assert report.display.endswith("report.md")
    assert text.startswith(f"# Nightly benchmark report — {dates[-1]}\n\n**REGRESSION**: 2 series, 1 regressions")
    flagged = text.split("## Flagged changes")[1].split("## Metrics over time")[0]
    assert "**regression**" in flagged and "`maj@k`" in flagged and "`pass@1`" not in flagged
    assert "| m | toy | big | exit 1: out of memory |" in text
    for metric in ("maj_k", "pass_1"):
        png = tmp_path / "reports" / dates[-1] / "plots" / f"{metric}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(plots/{metric}.png)" in text
    csv = (tmp_path / "reports" / dates[-1] / "findings.csv").read_text().splitlines()
    assert csv[1].startswith("regression,meta/llama 8B,toy,s8v4,maj@k,0.4,0.62")


def test_ci_floor_on_tolerance():
    rule = RegressionRule(min_history=3, k=3.0, min_delta=0.02, ci_factor=1.0)
    past = [0.50, 0.50, 0.51]  # tiny spread from few nights
    assert judge(0.45, past, rule, False)[0] == "regression"
    # tonight's CI half-width 0.06 says a 0.05 drop is within sampling noise
    status, _, _, tol = judge(0.45, past, rule, False, ci_half_width=0.06)
    assert (status, tol) == ("ok", 0.06)
    assert judge(0.40, past, rule, False, ci_half_width=0.06)[0] == "regression"
