"""Every registered prompt renders for real problems, and its verdict conventions parse back."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.parse import parse_critic, parse_verdict
from pipeline.prompts import FIELDS, PROMPTS, get_prompt, strip_thinking, tag_paragraphs
from pipeline.steps import split_steps
from toyworld import formats
from toyworld.tokenizer import build_tokenizer

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = {"toy_solver_v1", "toy_genrm_v1", "toy_critic_v1", "toy_prm_v1", "minerva_math_v1", "genrm_ft_v1",
            "genrm_base_v1", "processbench_critic_v1", "qwen_math_prm_v1"}


def _math_problem() -> tuple[str, str, list[str]]:
    rec = json.loads((ROOT / "data/math500.jsonl").read_text().splitlines()[0])
    return rec["problem"], rec["solution"], split_steps(rec["solution"], "paragraphs")


def _toy_problem() -> tuple[str, str, list[str]]:
    files = sorted((ROOT / "data/toy").glob("*.jsonl")) if (ROOT / "data/toy").is_dir() else []
    if files:
        rec = json.loads(files[0].read_text().splitlines()[0])
        solution = rec.get("solution") or formats.format_solution(rec["steps"][:-1], rec["answer"])
        return rec["problem"], solution, formats.split_steps(solution)
    # no generated toy set in this checkout: the worked example of toyworld/formats.py
    solution = "37+48=85\n85*3=255\n255-15=240\nAnswer: 240"
    return "Start with 37. Add 48. Multiply by 3. Subtract 15.", solution, formats.split_steps(solution)


def _fields(kind: str, **available: object) -> dict:
    return {k: available[k] for k in FIELDS[kind]}


def test_registry_has_the_interface_prompts():
    assert EXPECTED <= set(PROMPTS)
    with pytest.raises(KeyError, match="known prompts: .*genrm_ft_v1"):
        get_prompt("genrm_v0")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_prompt_renders_a_real_problem(name):
    prompt = get_prompt(name)
    problem, solution, steps = (_toy_problem if name.startswith("toy_") else _math_problem)()
    assert len(steps) >= 2
    rendered = prompt.render(**_fields(prompt.kind, problem=problem, solution=solution, steps=steps))
    if isinstance(rendered, str):
        text = rendered
    else:
        assert all(set(m) == {"role", "content"} and isinstance(m["content"], str) for m in rendered)
        assert rendered[-1]["role"] == ("assistant" if not prompt.add_generation_prompt else "user")
        text = "\n".join(m["content"] for m in rendered)
    assert problem in text
    if prompt.kind == "genrm":
        assert solution.strip() in text
    if prompt.kind in ("critic", "prm"):
        assert all(s in text for s in steps)
    if prompt.kind == "prm":
        assert text.count(prompt.step_separator) == len(steps)


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if PROMPTS[n].kind == "genrm"))
def test_genrm_verdict_cue_parses_back(name):
    prompt = get_prompt(name)
    critique = "Step 1 checks out."
    assert parse_verdict(prompt, critique) == (None, "no_verdict")
    assert parse_verdict(prompt, critique + prompt.verdict_cue + prompt.yes_text) == (True, "ok")
    assert parse_verdict(prompt, critique + prompt.verdict_cue + prompt.no_text) == (False, "ok")


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if PROMPTS[n].kind == "critic"))
def test_critic_cue_completes_to_a_parsable_index(name):
    prompt = get_prompt(name)
    assert parse_critic("I checked every step." + prompt.verdict_cue + "2}") == (2, "ok")
    assert parse_critic("I checked every step." + prompt.verdict_cue + "-1}") == (-1, "ok")


def test_toy_verdict_and_separator_are_single_tokens_of_the_toy_tokenizer():
    tok = build_tokenizer()
    for text in (PROMPTS["toy_genrm_v1"].yes_text, PROMPTS["toy_genrm_v1"].no_text, PROMPTS["toy_prm_v1"].step_separator):
        assert len(tok.encode(text, add_special_tokens=False)) == 1, text


def test_minerva_prompt_is_four_shot_and_ends_at_the_new_solution():
    text = get_prompt("minerva_math_v1").render(problem="What is $1+1$?")
    assert text.count("Final Answer: The final answer is $") == 4
    assert text.count("I hope it is correct.") == 4
    assert text.endswith("Problem:\nWhat is $1+1$?\n\nSolution:\n")


def test_genrm_ft_is_the_released_user_message():
    msgs = get_prompt("genrm_ft_v1").render(problem="P?", solution="S.")
    assert msgs == [{"role": "user", "content": "Problem:\nP?\n\nSolution:\nS.\n\nVerification:"}]


def test_processbench_paragraph_tags_index_from_zero():
    assert tag_paragraphs(["a", "b"]) == "<paragraph_0>\na\n</paragraph_0>\n\n<paragraph_1>\nb\n</paragraph_1>"
    content = get_prompt("processbench_critic_v1").render(problem="P", steps=["a", "b", "c"])[0]["content"]
    assert "<paragraph_2>" in content and "<paragraph_3>" not in content and "\\boxed{}" in content


def test_qwen_prm_input_format():
    msgs = get_prompt("qwen_math_prm_v1").render(problem="P", steps=["s1", "s2"])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
    assert msgs[2]["content"] == "s1<extra_0>s2<extra_0>"
    assert not get_prompt("qwen_math_prm_v1").add_generation_prompt


def test_render_rejects_wrong_fields():
    with pytest.raises(TypeError, match="genrm_ft_v1"):
        get_prompt("genrm_ft_v1").render(problem="P")
    with pytest.raises(TypeError, match="steps must be a list"):
        get_prompt("processbench_critic_v1").render(problem="P", steps="one string")


@pytest.mark.parametrize("text, expected", [
    ("<think>\nlet me see... 3?\n</think>\n\nThe answer is $\\boxed{4}$.", "The answer is $\\boxed{4}$."),
    ("<think>a</think>b</think> final", "final"),
    ("<think>\nstill thinking when the budget ran out", ""),
    ("No thinking block. \\boxed{1}", "No thinking block. \\boxed{1}"),
])
def test_strip_thinking(text, expected):
    assert strip_thinking(text) == expected
