"""How the analysis writes its tables: Parquet + CSV files, and Markdown tables for the report."""
from __future__ import annotations

from pathlib import Path

import polars as pl


def write_table(df: pl.DataFrame, out: Path, name: str) -> list[Path]:
    """``<out>/<name>.parquet`` and ``.csv``; returns both paths."""
    df.write_parquet(out / f"{name}.parquet")
    df.write_csv(out / f"{name}.csv")
    return [out / f"{name}.parquet", out / f"{name}.csv"]


def markdown_table(df: pl.DataFrame) -> list[str]:
    """The rows of ``df`` as Markdown table lines (floats to 4 significant digits)."""
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    for row in df.iter_rows():
        lines.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row) + " |")
    return lines
