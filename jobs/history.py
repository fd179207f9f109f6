"""The nightly history: one row per (night, model, dataset, budget, metric), as a partitioned Parquet dataset.

Layout: ``<history>/date=YYYY-MM-DD/model=<m>/dataset=<d>/part-<uuid>-<i>.parquet`` (hive partitioning,
values percent-encoded so model names such as ``meta-llama/Llama-3.1-8B`` are safe). Appending a night
replaces the partitions it writes (same date, model, dataset), so re-running a night is idempotent
instead of doubling its rows. The location may be a local path or an object-store URI
(:mod:`jobs.storage`).
"""
from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import asdict, dataclass
from typing import Sequence

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

from jobs.storage import Location

PARTITION_SCHEMA = pa.schema([("date", pa.string()), ("model", pa.string()), ("dataset", pa.string())])

HISTORY_SCHEMA = pa.schema(
    [
        ("date", pa.string()),
        ("model", pa.string()),
        ("dataset", pa.string()),
        ("budget", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("ci_low", pa.float64()),
        ("ci_high", pa.float64()),
        ("run_id", pa.string()),
        ("git_commit", pa.string()),
    ]
)
SERIES_KEY = ("model", "dataset", "budget", "metric")


@dataclass(frozen=True)
class MetricRecord:
    """One metric of one nightly run. ``value`` is None when the analysis could not compute it."""

    date: str
    model: str
    dataset: str
    budget: str
    metric: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    run_id: str | None = None
    git_commit: str | None = None

    def __post_init__(self) -> None:
        try:
            dt.date.fromisoformat(self.date)
        except (TypeError, ValueError) as err:
            raise ValueError(f"history record {self.model}/{self.dataset}/{self.metric}: date {self.date!r} "
                             "is not YYYY-MM-DD") from err
        for key in SERIES_KEY:
            if not getattr(self, key):
                raise ValueError(f"history record for {self.date}: empty {key!r}")
        if self.value is not None and not math.isfinite(self.value):
            # NaN would silently poison medians; an uncomputable metric is recorded as null instead.
            raise ValueError(f"history record {self.date} {self.model}/{self.dataset}/{self.budget}/{self.metric}: "
                             f"value {self.value!r} is not finite (use None for 'not computed')")


def _partitioning() -> ds.Partitioning:
    return ds.partitioning(PARTITION_SCHEMA, flavor="hive")


def append(history: Location, records: Sequence[MetricRecord]) -> int:
    """Write ``records`` into the history, replacing the (date, model, dataset) partitions they touch.

    Returns the number of rows written. All records of one (date, model, dataset) must be passed in
    one call: a later call for the same partition replaces it.
    """
    if not records:
        return 0
    table = pa.Table.from_pylist([asdict(r) for r in records], schema=HISTORY_SCHEMA)
    history.makedirs()
    ds.write_dataset(
        table,
        history.path,
        filesystem=history.fs,
        format="parquet",
        partitioning=_partitioning(),
        basename_template=f"part-{uuid.uuid4().hex}-{{i}}.parquet",
        existing_data_behavior="delete_matching",
    )
    return table.num_rows


def read(history: Location) -> pl.DataFrame:
    """All history rows (empty frame with the history schema when nothing was written yet)."""
    if not history.exists():
        return pl.from_arrow(HISTORY_SCHEMA.empty_table())
    dataset = ds.dataset(history.path, filesystem=history.fs, format="parquet", partitioning=_partitioning())
    table = dataset.to_table()
    if table.num_rows == 0:
        return pl.from_arrow(HISTORY_SCHEMA.empty_table())
    return pl.from_arrow(table.select(HISTORY_SCHEMA.names)).sort(["date", *SERIES_KEY])
