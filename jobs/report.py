"""The nightly regression report: Markdown with a table of flagged changes and one plot per metric.

Written under ``<report_dir>/<date>/``: ``report.md``, ``findings.csv`` and ``plots/<metric>.png``
(each metric over time, one line per model/dataset/budget with its confidence band, tonight's
regressions marked with a red x).
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # headless: nightly jobs have no display
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from jobs.regression import Finding, RegressionRule  # noqa: E402
from jobs.storage import Location  # noqa: E402


@dataclass(frozen=True)
class FailedRun:
    """A nightly run (one model × dataset × budget) that did not produce results, and why."""

    model: str
    dataset: str
    budget: str
    reason: str


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.4f}"


def _slug(metric: str) -> str:
    """A file name for a metric such as ``bon@8_v4`` or ``maj@k``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", metric).strip("_") or "metric"


def _findings_table(findings: list[Finding]) -> list[str]:
    lines = ["| status | model | dataset | budget | metric | tonight | baseline (median) | change | tolerance | nights |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for f in findings:
        lines.append(f"| **{f.status}** | {f.model} | {f.dataset} | {f.budget} | `{f.metric}` | {_fmt(f.value)} | "
                     f"{_fmt(f.baseline)} | {_fmt(f.change)} | {_fmt(f.tolerance)} | {f.n_history} |")
    return lines


def plot_metric(history: pl.DataFrame, metric: str, flagged: list[Finding], date: str) -> bytes:
    """PNG bytes of ``metric`` over time, one line per (model, dataset, budget)."""
    fig, ax = plt.subplots(figsize=(8, 4))
    rows = history.filter(pl.col("metric") == metric).sort("date")
    for (model, dataset, budget), series in rows.group_by(["model", "dataset", "budget"], maintain_order=True):
        (line,) = ax.plot(series["date"].to_list(), series["value"].to_list(), marker="o",
                          label=f"{model} / {dataset} / {budget}")
        with_ci = series.filter(pl.col("ci_low").is_not_null() & pl.col("ci_high").is_not_null())
        if with_ci.height:
            ax.fill_between(with_ci["date"].to_list(), with_ci["ci_low"].to_list(), with_ci["ci_high"].to_list(),
                            color=line.get_color(), alpha=0.15, linewidth=0)
    for f in flagged:
        if f.metric == metric and f.status == "regression":
            ax.plot([date], [f.value], marker="x", color="red", markersize=14, mew=3, linestyle="none")
    ax.set_title(metric)
    ax.set_xlabel("night")
    ax.set_ylabel(metric)
    ax.tick_params(axis="x", rotation=45)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def write_report(out: Location, history: pl.DataFrame, findings: list[Finding], date: str,
                 rule: RegressionRule, failed_runs: list[FailedRun]) -> Location:
    """Write report.md, findings.csv and plots under ``out``; return the report.md location."""
    failing = [f for f in findings if f.failing]
    changes = [f for f in findings if f.status in ("regression", "missing", "improvement")]
    verdict = "REGRESSION" if failing or failed_runs else "OK"
    lines = [
        f"# Nightly benchmark report — {date}",
        "",
        f"**{verdict}**: {len(findings)} series, {sum(f.status == 'regression' for f in findings)} regressions, "
        f"{sum(f.status == 'missing' for f in findings)} missing, "
        f"{sum(f.status == 'improvement' for f in findings)} improvements, {len(failed_runs)} failed runs.",
        "",
        f"Rule: a series is flagged when tonight's value is more than max({rule.k:g} · 1.4826 · MAD, "
        f"{rule.min_delta:g}, {rule.ci_factor:g} · half-width of tonight's CI) worse than the median of its last "
        f"{rule.window} nights, given at least "
        f"{rule.min_history} of them (see jobs/regression.py). Lower is better for: "
        f"{', '.join(rule.lower_is_better) or 'none'}.",
        "",
    ]
    if failed_runs:
        lines += ["## Failed runs", "", "| model | dataset | budget | reason |", "|---|---|---|---|"]
        lines += [f"| {r.model} | {r.dataset} | {r.budget} | {r.reason} |" for r in failed_runs]
        lines.append("")
    lines += ["## Flagged changes", ""]
    lines += _findings_table(changes) if changes else ["No change beyond the tolerance."]
    lines += ["", "## Metrics over time", ""]
    for metric in sorted(history["metric"].unique()):
        name = f"plots/{_slug(metric)}.png"
        out.join(name).write_bytes(plot_metric(history, metric, findings, date))
        lines += [f"### `{metric}`", "", f"![{metric}]({name})", ""]
    lines += ["## All series", ""] + _findings_table(findings) + [""]

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["status", "model", "dataset", "budget", "metric", "value", "baseline", "spread", "tolerance",
                     "n_history"])
    for f in findings:
        writer.writerow([f.status, f.model, f.dataset, f.budget, f.metric, f.value, f.baseline, f.spread,
                         f.tolerance, f.n_history])
    out.join("findings.csv").write_text(buf.getvalue())
    report = out.join("report.md")
    report.write_text("\n".join(lines))
    return report
