"""Look at a run problem by problem: solutions, grades, votes and verifications side by side.

    python -m analysis.inspect runs/demo                          # the first 3 problems
    python -m analysis.inspect runs/demo --problem toy-0007
    python -m analysis.inspect runs/demo --filter wrong_majority --limit 5 --html wrong.html

Filters (problem-level): ``wrong_majority`` (the majority answer is wrong), ``confident_wrong`` (some
wrong solution has mean P(Yes) ≥ ``--confidence``), ``verifier_picked_wrong`` (the top-scored solution is
wrong while a correct one exists). Votes count answer classes (the grader's equivalence).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table
from rich.text import Text

from analysis.load import read_table

_KEY = ["problem_id", "solution_idx"]


def solution_view(solutions: pl.DataFrame, verifications: pl.DataFrame) -> pl.DataFrame:
    """One row per solution: grade, size of its answer class, and per-verifier mean P(Yes) / verdicts."""
    votes = solutions.filter(pl.col("answer_class").is_not_null()).group_by("problem_id", "answer_class").agg(
        pl.len().alias("votes"))
    view = solutions.join(votes, on=["problem_id", "answer_class"], how="left").with_columns(
        pl.col("votes").fill_null(0))
    if verifications.height:
        scores = verifications.group_by(*_KEY, "verifier").agg(
            pl.col("p_yes").mean().alias("p_yes"),
            pl.col("verdict").cast(pl.Int8).sum().alias("yes"),
            pl.col("verdict").is_not_null().sum().alias("verdicts"),
        )
        wide = scores.pivot(on="verifier", index=_KEY, values=["p_yes", "yes", "verdicts"])
        view = view.join(wide, on=_KEY, how="left")
    return view.sort(_KEY)


def select_problems(view: pl.DataFrame, filter_name: str | None, confidence: float = 0.9) -> list[str]:
    """Problem ids that pass the filter, in id order."""
    ids = view["problem_id"].unique().sort()
    if filter_name is None:
        return ids.to_list()
    per = view.group_by("problem_id")
    p_cols = [c for c in view.columns if c.startswith("p_yes")]
    if filter_name == "wrong_majority":
        top = view.filter(pl.col("votes") == pl.col("votes").max().over("problem_id")).filter(pl.col("votes") > 0)
        bad = top.group_by("problem_id").agg(pl.col("is_correct").fill_null(False).any().not_().alias("bad"))
        return bad.filter("bad")["problem_id"].sort().to_list()
    if not p_cols:
        raise ValueError(f"filter {filter_name!r} needs verifications; this run has none")
    score = pl.mean_horizontal(p_cols)
    if filter_name == "confident_wrong":
        hit = per.agg(((score >= confidence) & ~pl.col("is_correct").fill_null(False)).any().alias("hit"))
    elif filter_name == "verifier_picked_wrong":
        hit = per.agg(
            (~pl.col("is_correct").fill_null(False).sort_by(score, descending=True).first()
             & pl.col("is_correct").fill_null(False).any()).alias("hit"))
    else:
        raise ValueError(f"unknown filter {filter_name!r}; use wrong_majority, confident_wrong, verifier_picked_wrong")
    return hit.filter("hit")["problem_id"].sort().to_list()


def render_problem(console: Console, problem: dict, rows: pl.DataFrame, width: int = 60) -> None:
    """Print one problem and its solutions as a table."""
    console.rule(f"[bold]{problem['problem_id']}[/bold]  reference: {problem['answer']}")
    console.print(problem["problem"])
    table = Table(show_lines=True)
    verifier_cols = [c for c in rows.columns if c.startswith(("p_yes", "yes_", "verdicts_"))]
    for col in ["#", "answer", "class", "votes", "grade", *verifier_cols]:
        table.add_column(col, no_wrap=True)
    table.add_column("solution", overflow="fold", min_width=width // 2)
    for r in rows.iter_rows(named=True):
        grade = Text(r["grade_status"], style="green" if r["is_correct"] else "red")
        extra = [f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in verifier_cols]
        text = r["text"] if len(r["text"]) <= width * 4 else r["text"][: width * 4] + " …"
        table.add_row(str(r["solution_idx"]), str(r["extracted_answer"]), str(r["answer_class"]),
                      str(r["votes"]), grade, *extra, text)
    console.print(table)


def inspect(run_dir: Path, problem_ids: list[str] | None = None, filter_name: str | None = None,
            limit: int = 3, html: Path | None = None, confidence: float = 0.9, console: Console | None = None) -> list[str]:
    """Show the selected problems; returns their ids. ``html`` also saves the output as an HTML page."""
    problems = read_table(run_dir, "problems")
    view = solution_view(read_table(run_dir, "solutions"), read_table(run_dir, "verifications"))
    ids = problem_ids or select_problems(view, filter_name, confidence)[:limit]
    unknown = set(ids) - set(problems["problem_id"].to_list())
    if unknown:
        raise KeyError(f"{run_dir}: no problem with id {sorted(unknown)}")
    console = console or Console(record=html is not None)
    for pid in ids:
        problem = problems.filter(pl.col("problem_id") == pid).row(0, named=True)
        render_problem(console, problem, view.filter(pl.col("problem_id") == pid))
    if html is not None:
        console.save_html(str(html), clear=False)
    return ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--problem", action="append", help="problem id (repeatable)")
    ap.add_argument("--filter", choices=["wrong_majority", "confident_wrong", "verifier_picked_wrong"])
    ap.add_argument("--limit", type=int, default=3)
    ap.add_argument("--confidence", type=float, default=0.9)
    ap.add_argument("--html", type=Path)
    args = ap.parse_args()
    ids = inspect(args.run_dir, args.problem, args.filter, args.limit, args.html, args.confidence)
    if not ids:
        print("no problem matches")


if __name__ == "__main__":
    main()
