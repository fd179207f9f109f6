"""The inspect command: filters pick the right problems and the output shows them."""
import io

import polars as pl
from rich.console import Console

from analysis.inspect import inspect, select_problems, solution_view
from analysis.load import read_table
from analysis.synthetic import SyntheticSpec, write_synthetic_run


def _run(tmp_path):
    return write_synthetic_run(tmp_path / "run", SyntheticSpec(problems=15, solutions=6, verifications=3, seed=2))


def test_filters_match_their_definitions(tmp_path):
    run = _run(tmp_path)
    sol, ver = read_table(run, "solutions"), read_table(run, "verifications")
    view = solution_view(sol, ver)
    assert view.height == sol.height
    for pid in select_problems(view, "wrong_majority"):
        g = sol.filter((pl.col("problem_id") == pid) & pl.col("answer_class").is_not_null())
        counts = g.group_by("answer_class").agg(pl.len(), pl.col("is_correct").any())
        top = counts.filter(pl.col("len") == counts["len"].max())
        assert not top["is_correct"].any()
    mean_p = ver.group_by("problem_id", "solution_idx").agg(pl.col("p_yes").mean())
    expected = (mean_p.join(sol, on=["problem_id", "solution_idx"])
                .filter((pl.col("p_yes") >= 0.8) & ~pl.col("is_correct"))["problem_id"].unique().sort().to_list())
    assert select_problems(view, "confident_wrong", confidence=0.8) == expected
    for pid in select_problems(view, "verifier_picked_wrong"):
        g = mean_p.join(sol, on=["problem_id", "solution_idx"]).filter(pl.col("problem_id") == pid)
        assert not g.sort("p_yes", descending=True)["is_correct"][0] and g["is_correct"].any()


def test_inspect_prints_and_saves_html(tmp_path):
    run = _run(tmp_path)
    console = Console(file=io.StringIO(), width=200, record=True)
    ids = inspect(run, filter_name="wrong_majority", limit=2, html=tmp_path / "out.html", console=console)
    out = console.export_text()
    assert ids and all(pid in out for pid in ids)
    assert (tmp_path / "out.html").read_text().count("<") > 10
