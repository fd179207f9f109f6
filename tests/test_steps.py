"""Step splitting rules."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.steps import solution_steps, split_steps
from toyworld import formats


def test_lines_matches_the_toy_format():
    text = "37+48=85\n\n85*3=255  \n  Answer: 255\n"
    assert split_steps(text) == ["37+48=85", "85*3=255", "Answer: 255"]
    assert split_steps(text) == formats.split_steps(text)


def test_paragraphs_keep_single_newlines():
    text = "First we note\nthat x = 2.\n\n  \nThen y = 3.\r\n\r\nSo the answer is 5.\n\n"
    assert split_steps(text, "paragraphs") == ["First we note\nthat x = 2.", "Then y = 3.", "So the answer is 5."]


def test_regex_rule_drops_the_separator_and_capture_groups():
    text = "Step 1: a\nStep 2: b\nStep 3: c"
    assert split_steps(text, r"regex:\n(?=Step \d+:)") == ["Step 1: a", "Step 2: b", "Step 3: c"]
    assert split_steps("a <s> b <s> <s> c", "regex:(<s>)") == ["a", "b", "c"]


def test_solution_steps_are_those_after_the_thinking_block():
    text = "<think>\nWait.\n\nLet me check.\n</think>\nFirst step.\n\nSo \\boxed{2}."
    assert solution_steps(text, "paragraphs") == ["First step.", "So \\boxed{2}."]
    assert solution_steps("<think>\ncut off inside the reasoning", "lines") == []
    assert solution_steps("1+1=2\nAnswer: 2", "lines") == ["1+1=2", "Answer: 2"]


def test_empty_and_bad_rules():
    assert split_steps("  \n\n ", "paragraphs") == []
    with pytest.raises(ValueError, match="unknown step rule 'sentences'"):
        split_steps("a", "sentences")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        split_steps("a", "regex:(")


def _visible(s: str) -> str:
    return "".join(c for c in s if not c.isspace())


@given(st.text(), st.sampled_from(["lines", "paragraphs"]))
def test_fuzz_steps_are_stripped_non_empty_and_lose_only_whitespace(text, rule):
    steps = split_steps(text, rule)
    assert all(s and s == s.strip() for s in steps)
    assert _visible("".join(steps)) == _visible(text)


@given(st.lists(st.text(alphabet="ab \n\t", max_size=6), max_size=6))
def test_fuzz_regex_rule_splits_at_every_separator(pieces):
    text = ";".join(pieces)
    assert split_steps(text, "regex:;") == [p.strip() for p in pieces if p.strip()]
