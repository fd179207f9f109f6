"""Training sets exported from a run: SFT, preference pairs, balanced GenRM data."""
import polars as pl

from analysis.load import read_table
from analysis.synthetic import SyntheticSpec, write_synthetic_run
from analysis.training_data import write_training_sets


def test_training_sets_from_a_run(tmp_path):
    run = write_synthetic_run(tmp_path / "run", SyntheticSpec(problems=12, solutions=6, verifications=3, seed=4))
    counts = write_training_sets(run, tmp_path / "out", seed=1)
    solutions = read_table(run, "solutions")

    sft = pl.read_parquet(tmp_path / "out" / "sft.parquet")
    assert sft.height == counts["sft"] == solutions["is_correct"].sum()
    assert pl.read_ndjson(tmp_path / "out" / "sft.jsonl").equals(sft)

    pairs = pl.read_parquet(tmp_path / "out" / "preference.parquet")
    assert pairs.height > 0
    labelled = solutions.select("problem_id", "solution_idx", "is_correct")
    chosen = pairs.join(labelled, left_on=["problem_id", "chosen_idx"], right_on=["problem_id", "solution_idx"])
    rejected = pairs.join(labelled, left_on=["problem_id", "rejected_idx"], right_on=["problem_id", "solution_idx"])
    assert chosen["is_correct"].all() and not rejected["is_correct"].any()
    assert pairs.group_by("problem_id").len()["len"].max() <= 4
    assert pairs.select("problem_id", "chosen_idx", "rejected_idx").is_unique().all()

    genrm = pl.read_parquet(tmp_path / "out" / "genrm.parquet")
    assert genrm.height > 0 and genrm["verdict"].sum() * 2 == genrm.height  # Yes/No balanced
    truth = genrm.join(labelled, on=["problem_id", "solution_idx"])
    assert (truth["verdict"] == truth["is_correct"]).all()  # verdicts agree with the ground truth

    again = write_training_sets(run, tmp_path / "out2", seed=1)
    assert again == counts
    assert pl.read_parquet(tmp_path / "out2" / "genrm.parquet").equals(genrm)
