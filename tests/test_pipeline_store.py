"""Atomic part files, recovery of killed writes, bounded parts, fault hooks (no engine)."""
from __future__ import annotations

import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.schema import SCHEMA_VERSION, SCHEMA_VERSION_KEY, schema_for
from pipeline.store import TableStore, UnitBuffer


def _solutions(problem: str, n: int) -> pa.Table:
    return pa.table({
        "run_id": ["r"] * n, "problem_id": [problem] * n, "solution_idx": pa.array(range(n), pa.int32()),
        "text": ["t"] * n, "grade_status": ["correct"] * n, "prompt_tokens": pa.array([5] * n, pa.int32()),
        "completion_tokens": pa.array([7] * n, pa.int32()), "model": ["m"] * n,
    })


def test_commit_writes_whole_conformed_parts_in_sequence(tmp_path):
    store = TableStore(tmp_path, "solutions")
    a = store.commit(_solutions("p0", 3))
    b = store.commit(_solutions("p1", 2))
    assert [p.name for p in store.parts()] == ["part-000000.parquet", "part-000001.parquet"] == [a.name, b.name]
    written = pq.read_schema(a)
    assert written.equals(schema_for("solutions"))
    assert written.metadata[SCHEMA_VERSION_KEY] == str(SCHEMA_VERSION).encode()
    assert store.done_units(["problem_id"]) == {("p0",), ("p1",)}
    assert store.num_rows() == 5 and store.sum_column("completion_tokens") == 35
    assert not list(tmp_path.glob("solutions/*.tmp"))


def test_recover_deletes_leftover_tmp_and_unreadable_parts_and_keeps_good_ones(tmp_path):
    store = TableStore(tmp_path, "solutions")
    good = store.commit(_solutions("p0", 2))
    before = good.read_bytes()
    (store.dir / "part-000001.parquet.tmp").write_bytes(b"half a file")
    (store.dir / "part-000002.parquet").write_bytes(b"PAR1 truncated garbage")
    rec = store.recover()
    assert rec.tmp_files == ("part-000001.parquet.tmp",) and rec.bad_parts == ("part-000002.parquet",)
    assert [p.name for p in store.parts()] == [good.name] and good.read_bytes() == before
    assert store.commit(_solutions("p1", 1)).name == "part-000001.parquet"


def test_unit_buffer_bounds_part_size_without_splitting_units(tmp_path):
    store = TableStore(tmp_path, "solutions")
    buf = UnitBuffer(store, max_rows=4, interval_s=3600)
    for i in range(5):
        buf.add(_solutions(f"p{i}", 3))  # a part is cut once >= 4 rows are buffered
    buf.flush()
    sizes = [pq.read_metadata(p).num_rows for p in store.parts()]
    assert sizes == [6, 6, 3] and buf.committed_rows == 15
    for p in store.parts():  # every problem's 3 rows sit in one part
        t = pq.read_table(p)
        assert all(c == 3 for c in t.group_by("problem_id").aggregate([("solution_idx", "count")])
                   .column("solution_idx_count").to_pylist())


def test_dependent_buffer_flushes_its_dependency_first(tmp_path):
    sols = UnitBuffer(TableStore(tmp_path, "solutions"), max_rows=100, interval_s=3600)
    order = []
    sols.store.commit = lambda t, f=sols.store.commit: (order.append("solutions"), f(t))[1]
    vers = UnitBuffer(TableStore(tmp_path, "verifications"), max_rows=1, interval_s=3600, depends_on=sols)
    vers.store.commit = lambda t: order.append("verifications")
    sols.add(_solutions("p0", 2))
    vers.add(pa.table({
        "run_id": ["r"], "problem_id": ["p0"], "solution_idx": pa.array([0], pa.int32()), "verifier": ["v"],
        "verification_idx": pa.array([0], pa.int32()), "verifier_kind": ["genrm"],
        "prompt_tokens": pa.array([1], pa.int32()), "completion_tokens": pa.array([1], pa.int32()), "model": ["m"],
    }))
    assert order == ["solutions", "verifications"]


@pytest.mark.parametrize("point", ["before_rename_solutions", "after_commit_solutions"])
def test_fault_hook_kills_the_process_at_the_named_commit_point(tmp_path, point):
    code = (
        "import sys, pyarrow as pa; from pipeline.store import TableStore;"
        "s = TableStore(sys.argv[1], 'solutions');"
        "[s.commit(pa.table({'run_id': ['r'], 'problem_id': [f'p{i}'], 'solution_idx': pa.array([0], pa.int32()),"
        "'text': ['t'], 'grade_status': ['correct'], 'prompt_tokens': pa.array([1], pa.int32()),"
        "'completion_tokens': pa.array([1], pa.int32()), 'model': ['m']})) for i in range(3)]"
    )
    env = dict(os.environ, SOLVE_VERIFY_FAULT=f"{point}:2")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env)
    assert proc.returncode == -9
    names = sorted(p.name for p in (tmp_path / "solutions").iterdir())
    if point == "before_rename_solutions":
        assert names == ["part-000000.parquet", "part-000001.parquet.tmp"]
    else:
        assert names == ["part-000000.parquet", "part-000001.parquet"]


def test_bad_fault_spec_is_refused(monkeypatch):
    from pipeline import faults

    monkeypatch.setenv(faults.ENV, "after_commit_solutions")
    with pytest.raises(ValueError, match="<point>:<count>"):
        faults.hit("after_commit_solutions")
