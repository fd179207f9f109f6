"""Each external-format adapter on a small sample file written here in that tool's format."""
import json

import polars as pl
import pytest
import yaml

from analysis.adapters import import_external
from analysis.load import read_table


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _by_key(df, *cols):
    return df.sort("problem_id", "solution_idx").select(*cols).rows()


def test_lm_eval_log_samples(tmp_path):
    src = _jsonl(tmp_path / "samples_math.jsonl", [
        {"doc_id": 0, "doc": {"problem": "What is 1/2 + 0?", "level": 2, "type": "Algebra"},
         "target": "\\frac{1}{2}", "arguments": [["...", {}]], "filter": "none", "metrics": ["exact_match"],
         "resps": [["So it is \\boxed{0.5}.", "I get \\boxed{\\frac12}", "It is \\boxed{3}.", "no idea"]],
         "filtered_resps": ["0.5"], "exact_match": 1.0},
        {"doc_id": 1, "doc": {"problem": "2+2?"}, "target": "4",
         "resps": [["\\boxed{4}", "\\boxed{5}"]], "filtered_resps": ["4"], "exact_match": 1.0},
    ])
    run = import_external("lm-eval", src, tmp_path / "run", grader="math")
    sol = read_table(run, "solutions")
    assert _by_key(sol, "problem_id", "solution_idx", "is_correct") == [
        ("0", 0, True), ("0", 1, True), ("0", 2, False), ("0", 3, False), ("1", 0, True), ("1", 1, False)]
    p0 = sol.filter(pl.col("problem_id") == "0").sort("solution_idx")
    # 0.5 and \frac12 are one answer class (the grader's equivalence); no answer has no class.
    assert p0["answer_class"][0] == p0["answer_class"][1] != p0["answer_class"][2]
    assert p0["answer_class"][3] is None and p0["grade_status"][3] == "no_answer"
    assert read_table(run, "problems").sort("problem_id")["subject"].to_list() == ["Algebra", None]


def test_qwen_math_output_with_rewards(tmp_path):
    src = _jsonl(tmp_path / "qwen.jsonl", [
        {"idx": 7, "question": "q7", "gt": "12", "code": ["a", "b", "c"], "pred": ["12", "13", ""],
         "score": [True, False, False], "rm_score": [2.0, -1.0, 0.0]},
    ])
    run = import_external("qwen-math", src, tmp_path / "run")
    sol = read_table(run, "solutions").sort("solution_idx")
    assert sol["extracted_answer"].to_list() == ["12", "13", None]
    assert sol["is_correct"].to_list() == [True, False, False]
    ver = read_table(run, "verifications").sort("solution_idx")
    assert ver["p_yes"].to_list() == pytest.approx([0.8807970779778823, 0.2689414213699951, 0.5])


def test_search_and_learn_prm_scores(tmp_path):
    src = _jsonl(tmp_path / "sal.jsonl", [
        {"unique_id": "test/algebra/1.json", "problem": "x?", "answer": "3", "level": 1, "subject": "Algebra",
         "completions": ["step\n\nso \\boxed{3}", "\\boxed{4}"], "scores": [[0.9, 0.8], [0.4]],
         "completion_tokens": [20, 5], "pred": "\\boxed{3}"},
    ])
    run = import_external("search-and-learn", src, tmp_path / "run", grader="math")
    sol = read_table(run, "solutions").sort("solution_idx")
    assert sol["is_correct"].to_list() == [True, False] and sol["completion_tokens"].to_list() == [20, 5]
    ver = read_table(run, "verifications").sort("solution_idx")
    assert ver["verifier_kind"].to_list() == ["prm", "prm"]
    assert ver["step_scores"].to_list() == [[0.9, 0.8], [0.4]]


def test_seeds_yaml_layout(tmp_path):
    samples, verifs = tmp_path / "samples", tmp_path / "verifications"
    samples.mkdir()
    (samples / "3.yaml").write_text(yaml.safe_dump({
        "prompt": "...", "question": "Compute 6*7.", "gt_answer": "6*7 is \\boxed{42}.",
        "samples": ["Final Answer: The final answer is $42$. I hope it is correct.",
                    "Final Answer: The final answer is $41$. I hope it is correct."]}))
    (verifs / "problem_3").mkdir(parents=True)
    (verifs / "problem_3" / "solution_0.yaml").write_text(yaml.safe_dump({"prompt": "...", "verifications": [
        {"verification": "... Yes", "p(yes)": 0.6, "p(no)": 0.2},
        {"verification": "...", "p(yes)": -1, "p(no)": -1}]}))
    (verifs / "problem_3" / "solution_1.yaml").write_text(yaml.safe_dump({"prompt": "...", "verifications": [
        {"verification": "... No", "p(yes)": 0.0, "p(no)": 0.9}]}))
    run = import_external("seeds-yaml", samples, tmp_path / "run", grader="math", verifications=verifs)
    sol = read_table(run, "solutions").sort("solution_idx")
    assert sol["extracted_answer"].to_list() == ["42", "41"] and sol["is_correct"].to_list() == [True, False]
    ver = read_table(run, "verifications").sort("solution_idx", "verification_idx")
    # A p(yes) of 0.0 is a real probability, not "missing"; a verification with neither found is dropped.
    assert ver["p_yes"].to_list() == pytest.approx([0.75, 0.0])


def test_bad_input_names_the_line(tmp_path):
    src = _jsonl(tmp_path / "bad.jsonl", [{"idx": 1, "pred": ["1"]}])
    with pytest.raises(ValueError, match=r"bad.jsonl:1: missing \['score'\]"):
        import_external("qwen-math", src, tmp_path / "run")
    with pytest.raises(ValueError, match="unknown format"):
        import_external("helm", src, tmp_path / "run2")
