"""Parquet tables of a run directory, committed in whole units, exactly once across kills.

Layout: ``<run_dir>/<table>/part-<seq>.parquet``. The driver is the only writer. A commit writes one
new part file holding one or more *whole units* (all S solutions of a problem; all V verifications
of a (solution, verifier)): write ``part-<seq>.parquet.tmp``, fsync, rename, fsync the directory.
A unit is therefore either entirely in one readable part or absent, so on restart the keys present
decide what is left to do, and parts already written are never touched again (byte-identical).

Recovery (``TableStore.recover``): a leftover ``.tmp`` (writer killed before the rename) or a part
whose Parquet footer cannot be read (a file damaged after the fact) is deleted, never read as data;
its units are then simply pending again.

Resume bookkeeping reads only the key columns of each part, one part at a time, and keeps the set of
*unit* keys done (problem ids for solutions; (problem id, solution idx) for verifications). Its memory
grows with the number of units, about 100 bytes per unit: fine for millions of units, not billions.
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import faults
from pipeline.schema import conform

_PART = re.compile(r"^part-(\d{6,})\.parquet$")


class StoreError(OSError):
    """The run directory cannot be written (disk full, read-only, not a directory); the message names
    the path and says that parts already committed are intact."""


def ensure_dir(path: Path, what: str) -> None:
    """Create ``path`` (and parents) or raise StoreError naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(f"{what} {path} cannot be created: {e.strerror or e}") from None


@dataclass(frozen=True)
class Recovered:
    """What ``recover`` removed: leftover temporary files and unreadable parts."""

    tmp_files: tuple[str, ...]
    bad_parts: tuple[str, ...]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TableStore:
    """One table of a run directory: a folder of Parquet parts written atomically."""

    def __init__(self, run_dir: Path, table: str):
        self.table = table
        self.dir = Path(run_dir) / table
        ensure_dir(self.dir, f"table folder of {table!r}")

    def parts(self) -> list[Path]:
        """The committed part files, in commit order."""
        return sorted(p for p in self.dir.iterdir() if _PART.match(p.name))

    def recover(self) -> Recovered:
        """Delete leftover ``.tmp`` files and unreadable parts (see module doc)."""
        tmps = sorted(p for p in self.dir.iterdir() if p.name.endswith(".tmp"))
        for p in tmps:
            p.unlink()
        bad = []
        for p in self.parts():
            try:
                pq.read_metadata(p)
            except (OSError, pa.ArrowException):
                bad.append(p)
                p.unlink()
        if tmps or bad:
            _fsync_dir(self.dir)
        return Recovered(tuple(p.name for p in tmps), tuple(p.name for p in bad))

    def iter_columns(self, columns: Sequence[str]) -> Iterator[pa.Table]:
        """The given columns of each part in turn (never the whole table at once)."""
        for p in self.parts():
            yield pq.read_table(p, columns=list(columns))

    def done_units(self, unit_columns: Sequence[str]) -> set[tuple]:
        """The distinct unit keys present (tuples of ``unit_columns`` values)."""
        done: set[tuple] = set()
        for t in self.iter_columns(unit_columns):
            done.update(zip(*(t.column(c).to_pylist() for c in unit_columns)))
        return done

    def num_rows(self) -> int:
        return sum(pq.read_metadata(p).num_rows for p in self.parts())

    def sum_column(self, column: str) -> int:
        """Sum of an integer column over all parts (reads that column only)."""
        import pyarrow.compute as pc

        return sum(int(pc.sum(t.column(column)).as_py() or 0) for t in self.iter_columns([column]))

    def commit(self, data: pa.Table) -> Path:
        """Write ``data`` (whole units, conformed to the schema) as a new part, atomically."""
        existing = self.parts()
        seq = int(_PART.match(existing[-1].name).group(1)) + 1 if existing else 0
        final = self.dir / f"part-{seq:06d}.parquet"
        faults.hit(f"before_commit_{self.table}")
        self._write(final, data, len(existing))
        faults.hit(f"after_commit_{self.table}")
        return final

    def rewrite(self, part: Path, data: pa.Table) -> None:
        """Replace an existing part with ``data`` (the same units), atomically: readers see the old part
        or the new one, never a mix. Only re-scoring does this (``pipeline.rescore``); runs never do."""
        self._write(part, data, len(self.parts()))

    def _write(self, final: Path, data: pa.Table, existing: int) -> None:
        data = conform(self.table, data)
        tmp = final.with_name(final.name + ".tmp")
        try:
            with open(tmp, "wb") as fh:
                pq.write_table(data, fh, compression="zstd")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise StoreError(
                f"cannot write {final} ({data.num_rows} rows): {e.strerror or e}. The {existing} parts "
                f"already in {self.dir} are intact; free space or fix permissions and rerun to resume"
            ) from None
        faults.hit(f"before_rename_{self.table}")
        os.replace(tmp, final)
        _fsync_dir(self.dir)


class UnitBuffer:
    """Collects whole units for one table and commits them in parts of bounded size.

    ``add`` takes a table holding complete units; a part is committed once ``max_rows`` rows are
    buffered or ``interval_s`` has passed since the last commit, and ``flush`` commits the rest.
    A single unit larger than ``max_rows`` still goes into one part (units are never split).
    ``depends_on``: a buffer whose rows must be on disk before this one's (solutions before their
    verifications); it is flushed first.
    """

    def __init__(self, store: TableStore, max_rows: int, interval_s: float, depends_on: UnitBuffer | None = None):
        self.store = store
        self.depends_on = depends_on
        self.max_rows = max_rows
        self.interval_s = interval_s
        self._pending: list[pa.Table] = []
        self._rows = 0
        self._last = time.monotonic()
        self.committed_rows = 0

    def add(self, units: pa.Table) -> None:
        if units.num_rows:
            self._pending.append(conform(self.store.table, units))
            self._rows += units.num_rows
        if self._rows >= self.max_rows or (self._rows and time.monotonic() - self._last >= self.interval_s):
            self.flush()

    def flush(self) -> None:
        if self.depends_on is not None:
            self.depends_on.flush()
        if self._rows:
            self.store.commit(pa.concat_tables(self._pending))
            self.committed_rows += self._rows
        self._pending, self._rows, self._last = [], 0, time.monotonic()
