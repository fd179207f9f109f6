"""Step-level verification in the analysis: Self-PRM reranking vs majority vote, PRM vs GenRM best-of-N.

Called by ``analysis.run.run`` when the run has critic or PRM verifications; writes its tables next to
the curves and returns Markdown lines for the report. Nothing is re-estimated: both read the curve
points that ``analysis.curves`` evaluated (per-problem expected success).

- ``self_prm`` table (critic verifiers, i.e. Self-PRM when the solver critiques itself): per dataset of
  the run and k in ``SELF_PRM_KS`` (those recorded; else the largest S), majority@k, Self-PRM@k (keep the
  solutions the critiques judge correct, then majority: ``estimators.self_prm_majority``) and reranking
  by mean verdict (best-of-k by the fraction of critiques finding no wrong step), all at the critic's
  largest recorded V, with bootstrap intervals over that dataset's problems and the paired gain of
  Self-PRM over majority -- the layout of the seed's table.
- ``prm_vs_genrm`` table and plot (PRM verifiers): best-of-N of every PRM aggregation (min / last / prod)
  beside every GenRM's best-of-N by mean P(Yes), each at its largest recorded V, over S on the run's
  compute axis, with majority vote for scale.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from analysis import bootstrap, plots
from analysis.curves import label_of
from analysis.load import RunArrays, read_table
from analysis.outputs import markdown_table, write_table

SELF_PRM_KS = (8, 16, 32, 64)
PRM_SCORES = ("prm_min", "prm_last", "prm_prod")


def _datasets(run: RunArrays) -> np.ndarray:
    problems = read_table(run.run_dir, "problems").select("problem_id", "dataset")
    return pl.DataFrame({"problem_id": run.problem_ids}).join(problems, on="problem_id", how="left")[
        "dataset"].fill_null("(none)").to_numpy()


def _column(points: pl.DataFrame, label: str, s: int, v: int) -> int | None:
    row = points.filter((pl.col("label") == label) & (pl.col("S") == s) & (pl.col("V") == v))
    return int(row["col"][0]) if row.height else None


def self_prm_table(run: RunArrays, points: pl.DataFrame, values: np.ndarray, n_boot: int, seed: int,
                   level: float) -> pl.DataFrame:
    """Majority vs Self-PRM vs verdict reranking per critic, dataset and k (module doc); empty without critics."""
    points = points.with_row_index("col")
    datasets = _datasets(run)
    groups = sorted(set(datasets)) + (["all"] if len(set(datasets)) > 1 else [])
    rows = []
    for name, ver in sorted(run.verifiers.items()):
        self_label = label_of("self_prm", name, "verdict")
        recorded = points.filter(pl.col("label") == self_label)
        if ver.kind != "critic" or recorded.height == 0:
            continue
        v = int(recorded["V"].max())
        ks = [k for k in SELF_PRM_KS if k in set(recorded["S"].to_list())] or [int(recorded["S"].max())]
        for group in groups:
            mask = np.ones(len(datasets), bool) if group == "all" else datasets == group
            counts = bootstrap.resample_counts(int(mask.sum()), n_boot, seed)
            for k in ks:
                cols = {"majority": _column(points, "majority", k, 0), "self_prm": _column(points, self_label, k, v),
                        "rerank": _column(points, label_of("best_of_n", name, "verdict"), k, v)}
                if cols["majority"] is None:
                    continue
                row = {"verifier": name, "dataset": group, "k": k, "V": v, "n_problems": int(mask.sum())}
                for method, col in cols.items():
                    if col is not None:
                        ci = bootstrap.interval(values[mask][:, col:col + 1], counts, level)
                        row |= {method: float(ci.mean[0]), f"{method}_lo": float(ci.lo[0]), f"{method}_hi": float(ci.hi[0])}
                gain = bootstrap.paired_difference(values[mask][:, cols["self_prm"]:cols["self_prm"] + 1],
                                                   values[mask][:, cols["majority"]:cols["majority"] + 1], counts, level)
                rows.append(row | {"gain": float(gain.mean[0]), "gain_lo": float(gain.lo[0]), "gain_hi": float(gain.hi[0])})
    return pl.DataFrame(rows)


def prm_vs_genrm_table(run: RunArrays, curve_table: pl.DataFrame) -> pl.DataFrame:
    """Best-of-N points of every PRM aggregation and every GenRM's P(Yes), each at its largest recorded V,
    plus majority vote, over S with compute and intervals; empty when the run has no PRM."""
    if not any(v.kind == "prm" for v in run.verifiers.values()):
        return pl.DataFrame()
    labels = ["majority"]
    for name, ver in sorted(run.verifiers.items()):
        scores = PRM_SCORES if ver.kind == "prm" else ("p_yes",) if ver.kind == "genrm" else ()
        labels += [label_of("best_of_n", name, s) for s in scores if s in ver.scores]
    rows = curve_table.filter(pl.col("label").is_in(labels))
    top_v = rows.group_by("label").agg(pl.col("V").max().alias("top_v"))
    return (rows.join(top_v, on="label").filter(pl.col("V") == pl.col("top_v"))
            .select("label", "verifier", "score", "S", "V", "compute", "success", "ci_lo", "ci_hi").sort("label", "S"))


def _pct(row: dict, key: str) -> str:
    if row.get(key) is None:
        return "n/a"
    return f"{100 * row[key]:.1f} [{100 * row[f'{key}_lo']:.1f}, {100 * row[f'{key}_hi']:.1f}]"


def run_step_level(run: RunArrays, points: pl.DataFrame, values: np.ndarray, curve_table: pl.DataFrame,
                   n_boot: int, seed: int, level: float, out: Path, xlabel: str, plot: bool,
                   formats) -> tuple[list[Path], list[str]]:
    """Both step-level analyses (module doc): written files and report lines (none without critic/PRM)."""
    files: list[Path] = []
    lines: list[str] = []
    table = self_prm_table(run, points, values, n_boot, seed, level)
    if table.height:
        files += write_table(table, out, "self_prm")
        shown = pl.DataFrame([{"verifier": r["verifier"], "dataset": r["dataset"], "k": r["k"], "V": r["V"],
                               "majority@k": _pct(r, "majority"), "Self-PRM@k": _pct(r, "self_prm"),
                               "rerank by verdict@k": _pct(r, "rerank"), "Self-PRM − majority": _pct(r, "gain")}
                              for r in table.iter_rows(named=True)])
        lines += ["## Self-PRM (critic) vs majority vote", "",
                  "Success in % with bootstrap intervals over the dataset's problems. Self-PRM keeps the solutions "
                  "whose critiques (mean over a random V-subset) find no wrong step, then takes the majority; "
                  "reranking picks the solution with the highest fraction of such critiques; the gain is paired.",
                  "", *markdown_table(shown)]
    compare = prm_vs_genrm_table(run, curve_table)
    if compare.height:
        files += write_table(compare, out, "prm_vs_genrm")
        if plot:
            files += plots.compare_plot(compare, xlabel, out, formats, "prm_vs_genrm")
        top = compare.filter(pl.col("S") == pl.col("S").max().over("label"))
        lines += (["", ""] if lines else []) + [
            "## PRM vs GenRM best-of-N", "",
            "Best-of-N on the same compute axis, each verifier at its largest recorded V (a PRM scores once); "
            "every S is in `prm_vs_genrm`. At the largest S:", "",
            *markdown_table(top.select("label", "S", "V", "compute", "success", "ci_lo", "ci_hi"))]
    return files, lines
