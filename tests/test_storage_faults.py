"""A full disk or an unwritable output location: a clear error naming the path, earlier parts intact."""
import os
import subprocess

import pyarrow as pa
import pytest

from conftest import pipeline_overrides
from pipeline.config import compose
from pipeline.run import run
from pipeline.store import StoreError, TableStore


def _solutions(pid: str, n: int, text_bytes: int) -> pa.Table:
    texts = [os.urandom(text_bytes).hex() for _ in range(n)]  # incompressible
    return pa.table({"run_id": ["r"] * n, "problem_id": [pid] * n, "solution_idx": pa.array(range(n), pa.int32()),
                     "text": texts, "grade_status": ["correct"] * n, "prompt_tokens": pa.array([1] * n, pa.int32()),
                     "completion_tokens": pa.array([1] * n, pa.int32()), "model": ["m"] * n})


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_disk_full_during_a_commit(small_disk):
    store = TableStore(small_disk / "run", "solutions")
    first = store.commit(_solutions("p0", 4, 100))
    before = first.read_bytes()
    with pytest.raises(StoreError) as err:
        store.commit(_solutions("p1", 64, 4000))  # ~500 KB of text: more than the disk holds
    message = str(err.value)
    assert "part-000001.parquet" in message and "1 parts already" in message and "rerun to resume" in message
    assert first.read_bytes() == before
    assert [p.name for p in small_disk.joinpath("run", "solutions").iterdir()] == [first.name]  # no .tmp left
    assert store.recover().tmp_files == ()
    store.commit(_solutions("p1", 2, 100))  # once there is room again, the run goes on
    assert store.num_rows() == 6


def test_output_dir_that_cannot_be_created_fails_before_any_engine(tiny_model, toy_problems, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the output directory should go")
    cfg = compose(pipeline_overrides(tiny_model, toy_problems, blocker, "run_id=r"))
    with pytest.raises(StoreError, match=r"run directory .*not-a-dir/r cannot be created: Not a directory"):
        run(cfg)
