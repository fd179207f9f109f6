"""Step-level verification: critic and PRM verifiers through the pipeline on the shipped toy models, the
Self-PRM / PRM sections of the analysis, the ProcessBench harness CLI, and their configs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from analysis.config import AnalysisConfig
from analysis.processbench import evaluate_prm_split
from analysis.run import run as run_analysis
from conftest import TOY_S, copy_run, toy_run_overrides
from pipeline.config import ConfigError, compose
from pipeline.prompts import get_prompt
from pipeline.run import run as run_pipeline
from pipeline.verify import critic_reading

ROOT = Path(__file__).resolve().parent.parent
S, V = TOY_S, 2  # S = 8 (the shared run's): the Self-PRM table's first k
PROBLEMS = 12  # the shared run's


@pytest.mark.parametrize("text, n_steps, expected", [
    ("[0] 1+1=2 | 1+1=2 ok\n\\boxed{-1}", 3, (-1, True, "ok")),
    ("[0] 1+1=3 | 1+1=2 wrong\n\\boxed{0}", 3, (0, False, "ok")),
    ("\\boxed{2}", 3, (2, False, "ok")),
    ("\\boxed{3}", 3, (None, None, "unparsed")),  # past the last step: not a step, not guessed
    ("\\boxed{-2}", 3, (None, None, "unparsed")),
    ("\\boxed{one}", 3, (None, None, "unparsed")),
    ("the first wrong step is 1", 3, (None, None, "unparsed")),
    ("\\boxed{-1}", 0, (-1, True, "ok")),  # an empty solution can still be judged error-free
])
def test_critic_reading(text, n_steps, expected):
    assert critic_reading(text, n_steps) == expected


@pytest.mark.parametrize("overrides, key", [
    (["verification=toy_critic", "prompt.verifier=toy_genrm_v1"], "prompt.verifier"),
    (["verification=toy_genrm", "prompt.verifier=toy_critic_v1"], "prompt.verifier"),
    (["verification=toy_prm", "budget.verifications=4"], "budget.verifications"),
    (["verification=toy_prm", "verifier.engine=standin"], "verifier.engine"),
    (["verification=toy_prm", "verifier.convert=embed"], "verifier.convert"),
])
def test_step_level_config_errors_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        compose(overrides)


@pytest.mark.parametrize("option, kind, model, prompt", [
    ("toy_critic", "critic", "toy-verifier", "toy_critic_v1"),
    ("toy_self_prm", "critic", "toy-verifier", "toy_critic_v1"),
    ("toy_prm", "prm", "toy-prm", "toy_prm_v1"),
    ("self_prm", "critic", "QwQ-32B", "processbench_critic_v1"),
    ("qwen_math_prm", "prm", "Qwen2.5-Math-PRM-7B", "qwen_math_prm_v1"),
])
def test_step_level_verification_configs_compose_and_render_for_a_real_problem(option, kind, model, prompt):
    extra = ["model@solver=qwq_32b"] if option == "self_prm" else []
    cfg = compose([f"verification={option}", "dataset=math500", *extra])
    assert (cfg.verification.kind, cfg.verifier_model.name, cfg.prompt.verifier) == (kind, model, prompt)
    assert kind != "prm" or cfg.budget.verifications == 1
    from pipeline.datasets import load_problems
    from pipeline.steps import split_steps

    problem = load_problems(compose(["dataset=math500", "dataset.limit=1"]).dataset)[0]
    steps = split_steps("We expand.\n\nThen we simplify.\n\nSo the answer is 4.", cfg.verification.step_rule)
    rendered = get_prompt(cfg.prompt.verifier).render(problem=problem.problem, steps=steps)
    text = rendered if isinstance(rendered, str) else "".join(m["content"] for m in rendered)
    assert problem.problem in text and all(s in text for s in steps)


def test_prm_threshold_comes_from_the_tune_split_only():
    tune = pl.DataFrame({"subset": ["a"] * 4, "label": [-1, -1, 0, 1],
                         "step_scores": [[0.9, 0.8], [0.7, 0.9], [0.2, 0.9], [0.9, 0.3]]})
    test = pl.DataFrame({"subset": ["a"] * 2, "label": [-1, 0], "step_scores": [[0.5, 0.5], [0.1, 0.1]]})
    first = evaluate_prm_split(tune, test)
    flipped = evaluate_prm_split(tune, test.with_columns(label=pl.Series([0, -1])))
    assert first.threshold == flipped.threshold and 0.3 < first.threshold <= 0.7
    assert (first.n_tune, first.n_test) == (4, 2)
    assert first.test.mean_f1 == 1.0 and flipped.test.mean_f1 == 0.0


@pytest.fixture(scope="module")
def step_run(toy_fixed_run, toy_mixed_problems, tmp_path_factory):
    """A real run of the shipped toy models: a copy of the session's shared run (conftest: 12 problems,
    S solutions each, one GenRM verification), extended in place with V Self-PRM critiques per solution,
    then with the toy PRM as a third verifier. The solver engine is not started again."""
    run_dir = copy_run(toy_fixed_run, tmp_path_factory.mktemp("step"))
    base = [o for o in toy_run_overrides(toy_mixed_problems, run_dir.parent) if not o.startswith("budget.verifications=")]
    critic = run_pipeline(compose(base + ["verification=toy_self_prm", f"budget.verifications={V}"]))
    assert set(critic.stages) == {"verify"}  # an extension: no solving
    return run_pipeline(compose(base + ["verification=toy_prm"])).run_dir


@pytest.mark.slow
def test_critic_rows_record_the_earliest_wrong_step(step_run):
    sol = pl.read_parquet(step_run / "solutions").select("problem_id", "solution_idx", "steps")
    ver = pl.read_parquet(step_run / "verifications").filter(pl.col("verifier") == "toy-self-prm").join(
        sol, on=["problem_id", "solution_idx"])
    assert ver.height == PROBLEMS * S * V and set(ver["verifier_kind"]) == {"critic"}
    ok, unparsed = ver.filter(pl.col("parse_status") == "ok"), ver.filter(pl.col("parse_status") == "unparsed")
    assert ok.height + unparsed.height == ver.height and ok.height > 0
    assert (ok["predicted_error_step"] >= -1).all()
    assert (ok["predicted_error_step"] < ok["steps"].list.len()).all()
    assert (ok["verdict"] == (ok["predicted_error_step"] == -1)).all()
    assert unparsed["predicted_error_step"].is_null().all() and unparsed["verdict"].is_null().all()
    # the toy critic prompt has no verdict token: no P(Yes), and none guessed
    assert ver["p_yes"].is_null().all() and set(ver["p_yes_source"]) == {"none"}
    assert ver["text"].str.contains(r"\\boxed\{").sum() >= ok.height


@pytest.mark.slow
def test_prm_rows_hold_one_score_per_step(step_run):
    sol = pl.read_parquet(step_run / "solutions").select("problem_id", "solution_idx", "steps")
    ver = pl.read_parquet(step_run / "verifications").filter(pl.col("verifier") == "toy-prm").join(
        sol, on=["problem_id", "solution_idx"])
    assert ver.height == PROBLEMS * S and set(ver["verifier_kind"]) == {"prm"} and (ver["verification_idx"] == 0).all()
    assert (ver["step_scores"].list.len() == ver["steps"].list.len()).all()
    scores = ver["step_scores"].explode()
    assert scores.is_between(0, 1).all() and scores.n_unique() > 1
    assert ver["text"].is_null().all() and (ver["completion_tokens"] == 0).all() and (ver["prompt_tokens"] > 0).all()
    manifest = json.loads((step_run / "manifest.json").read_text())
    assert [inv["verifier"] for inv in manifest["invocations"]] == ["toy-genrm", "toy-self-prm", "toy-prm"]
    assert [r["revision"] for r in manifest["revisions"]] == [0, 1, 2]


@pytest.mark.slow
def test_analysis_reports_self_prm_and_prm_beside_majority(step_run):
    result = run_analysis(AnalysisConfig(run_dir=str(step_run), bootstrap=100, draws=2, policy_orders=2,
                                         plot_formats=["png"]))
    table = pl.read_parquet(result.out_dir / "self_prm.parquet")
    assert table.select("verifier", "dataset", "k", "V").rows() == [("toy-self-prm", "toy", S, V)]
    row = table.row(0, named=True)
    for m in ("majority", "self_prm", "rerank"):
        assert row[f"{m}_lo"] <= row[m] <= row[f"{m}_hi"]
    assert row["gain"] == pytest.approx(row["self_prm"] - row["majority"])
    compare = pl.read_parquet(result.out_dir / "prm_vs_genrm.parquet")
    assert set(compare["label"]) == {"majority", "best_of_n[toy-genrm:p_yes]"} | {
        f"best_of_n[toy-prm:{s}]" for s in ("prm_min", "prm_last", "prm_prod")}
    assert (compare.filter(pl.col("label") != "majority")["V"] == 1).all()
    assert (result.out_dir / "prm_vs_genrm.png").exists()
    report = (result.out_dir / "report.md").read_text()
    assert "## Self-PRM (critic) vs majority vote" in report and "## PRM vs GenRM best-of-N" in report


def _head(src: Path, n: int, dst: Path) -> Path:
    dst.write_text("".join(src.read_text().splitlines(keepends=True)[:n]))
    return dst


@pytest.mark.slow
def test_processbench_harness_cli_on_the_toy_splits(tmp_path):
    test = _head(ROOT / "data/toy/toy_processbench_test.jsonl", 40, tmp_path / "test.jsonl")
    tune = _head(ROOT / "data/toy/toy_processbench_tune.jsonl", 60, tmp_path / "tune.jsonl")
    labels = pl.read_ndjson(test)["label"]
    cli = [sys.executable, "-m", "analysis.processbench_run", "--data", str(test)]
    for out, extra in ((tmp_path / "prm", ["--tune", str(tune), "verification=toy_prm"]),
                       (tmp_path / "critic", ["verification=toy_critic", "budget.verifications=1",
                                              "budget.verifier.temperature=0"])):
        done = subprocess.run(cli + ["--out", str(out), *extra], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "mean F1" in done.stdout
        preds = pl.read_parquet(out / "predictions.parquet")
        assert preds.height == 40 and preds["label"].to_list() == labels.to_list()
        scores = pl.read_csv(out / "scores.csv")
        assert scores["subset"].to_list() == ["toy_test", "mean"]
        sub = scores.row(0, named=True)
        err = preds.filter(pl.col("label") >= 0)
        assert sub["acc_erroneous"] == pytest.approx((err["prediction"] == err["label"]).fill_null(False).mean())
        assert sub["n_erroneous"] + sub["n_correct"] == 40
        assert "| toy_test |" in (out / "processbench.md").read_text()
    thresholds = pl.read_csv(tmp_path / "prm" / "thresholds.csv")
    summary = (tmp_path / "prm" / "processbench.md").read_text()
    assert thresholds.height == 99 and "chosen on" in summary and str(tune) in summary
