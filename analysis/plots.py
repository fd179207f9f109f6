"""Figures for a paper: frontiers with CI bands, per-method curves over V, optimal split, gain (matplotlib, Agg)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from analysis.fits import PowerLawFit  # noqa: E402

STYLE = {"figure.figsize": (5.5, 3.8), "figure.dpi": 150, "font.size": 9, "axes.grid": True,
         "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False}
FAMILY_COLORS = {"self_consistency": "tab:blue", "verification": "tab:red"}


def _save(fig, out: Path, name: str, formats) -> list[Path]:
    paths = []
    for fmt in formats:
        path = out / f"{name}.{fmt}"
        fig.savefig(path, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def frontier_plot(frontier: pl.DataFrame, oracle: pl.DataFrame, xlabel: str, out: Path, formats,
                  policies: pl.DataFrame | None = None) -> list[Path]:
    """Success rate of the best point per budget for each family, with CI bands; oracle dashed; adaptive
    policies (if given) as points with their CIs."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
        # "best" is the upper envelope of the two families drawn here, so it is not drawn again.
        for fam, color in FAMILY_COLORS.items():
            rows = frontier.filter(pl.col("family") == fam).sort("budget")
            ax.step(rows["budget"], rows["success"], where="post", color=color, label=fam.replace("_", "-"), lw=1.6)
            ax.fill_between(rows["budget"], rows["ci_lo"], rows["ci_hi"], step="post", color=color, alpha=0.15)
        if oracle.height:
            ax.plot(oracle["compute"], oracle["success"], color="grey", ls="--", lw=1, label="oracle (pass@S)")
        if policies is not None and policies.height:
            for family, marker in (("stop_when_agree", "o"), ("verify_when_split", "s"), ("by_difficulty", "^")):
                rows = policies.filter(pl.col("policy").str.starts_with(family))
                if rows.height:
                    ax.errorbar(rows["compute"], rows["success"],
                                yerr=[rows["success"] - rows["ci_lo"], rows["ci_hi"] - rows["success"]],
                                fmt=marker, ms=3.5, lw=0.8, capsize=2, color="black", alpha=0.7,
                                label=family.replace("_", " "))
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("success rate")
        ax.legend(fontsize=7)
        return _save(fig, out, "frontier", formats)


def reliability_plot(bins: pl.DataFrame, out: Path, formats) -> list[Path]:
    """Observed accuracy vs mean P(Yes) per probability bin, one line per verifier; diagonal = calibrated."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=0.8)
        for (name,), rows in bins.filter(pl.col("count") > 0).group_by(["verifier"], maintain_order=True):
            ax.plot(rows["mean_p"], rows["accuracy"], marker="o", ms=3, lw=1.2, label=name)
        ax.set_xlabel("mean P(Yes) in bin")
        ax.set_ylabel("fraction correct")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
        return _save(fig, out, "reliability", formats)


def method_curves_plot(curves: pl.DataFrame, label: str, xlabel: str, out: Path, formats) -> list[Path]:
    """Success vs compute of one verifier method, one line per V (powers of two) over S; majority for scale."""
    rows = curves.filter(pl.col("label") == label)
    vs = sorted(v for v in rows["V"].unique().to_list() if v & (v - 1) == 0 or v == rows["V"].max())
    cmap = plt.get_cmap("viridis", max(len(vs), 2))
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
        maj = curves.filter(pl.col("method") == "majority").sort("compute")
        if maj.height:
            ax.plot(maj["compute"], maj["success"], color="tab:blue", lw=1.6, label="self-consistency")
            ax.fill_between(maj["compute"], maj["ci_lo"], maj["ci_hi"], color="tab:blue", alpha=0.12)
        for i, v in enumerate(vs):
            line = rows.filter(pl.col("V") == v).sort("compute")
            ax.plot(line["compute"], line["success"], color=cmap(i), lw=1.1, label=f"V={v}")
            ax.fill_between(line["compute"], line["ci_lo"], line["ci_hi"], color=cmap(i), alpha=0.08)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("success rate")
        ax.set_title(label, fontsize=9)
        ax.legend(ncol=2, fontsize=7)
        safe = "".join(ch if ch.isalnum() else "_" for ch in label).strip("_")
        return _save(fig, out, f"curves_{safe}", formats)


def optimal_split_plot(optima: pl.DataFrame, fits: list[PowerLawFit], xlabel: str, out: Path, formats) -> list[Path]:
    """S_opt and V_opt per budget (log-log) with the fitted power laws where a fit was made."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
        for (col, marker, color), fit in zip((("S", "o", "tab:green"), ("V", "s", "tab:purple")), fits):
            ax.plot(optima["budget"], optima[col], marker, color=color, ms=3.5, label=f"{col}_opt")
            if fit.fitted:
                c = np.geomspace(optima["budget"].min(), optima["budget"].max(), 50)
                ax.plot(c, fit.prefactor * c ** fit.exponent, color=color, lw=1,
                        label=f"{col}_opt ∝ C^{fit.exponent:.2f}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("optimal count")
        ax.legend()
        return _save(fig, out, "optimal_split", formats)


def gain_plot(gain: pl.DataFrame, xlabel: str, out: Path, formats) -> list[Path]:
    """Relative gain of the verification frontier over self-consistency at matched compute, paired CI.
    Budgets where self-consistency scores 0 have no finite relative gain and are left out."""
    gain = gain.filter(pl.col("rel_gain").is_finite() & pl.col("rel_lo").is_finite() & pl.col("rel_hi").is_finite())
    if gain.height == 0:
        return []
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
        ax.axhline(0, color="grey", lw=0.8)
        ax.plot(gain["budget"], 100 * gain["rel_gain"], color="tab:red", lw=1.4)
        ax.fill_between(gain["budget"], 100 * gain["rel_lo"], 100 * gain["rel_hi"], color="tab:red", alpha=0.15)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("verification vs self-consistency (%)")
        return _save(fig, out, "gain", formats)


def compare_plot(points: pl.DataFrame, xlabel: str, out: Path, formats, name: str) -> list[Path]:
    """Success vs compute, one line (with CI band) per ``label`` of ``points`` (label, compute, success,
    ci_lo, ci_hi)."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots()
        for (label,), line in points.sort("compute").group_by(["label"], maintain_order=True):
            (drawn,) = ax.plot(line["compute"], line["success"], lw=1.3, marker="o", ms=2.5, label=label)
            ax.fill_between(line["compute"], line["ci_lo"], line["ci_hi"], color=drawn.get_color(), alpha=0.1)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("success rate")
        ax.legend(fontsize=7)
        return _save(fig, out, name, formats)
