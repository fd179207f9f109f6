"""Verdict, critic and P(Yes) parsing, and locating the verdict token in a generation."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.parse import last_boxed, p_yes_from_logprobs, parse_critic, parse_verdict, verdict_position
from pipeline.prompts import get_prompt
from pipeline.schema import PARSE_STATUSES
from toyworld.tokenizer import build_tokenizer


@pytest.mark.parametrize("text, expected", [
    ("x \\boxed{3} y \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("\\boxed{a{b}c}", "a{b}c"),
    ("\\boxed {7}", "7"),
    ("\\fbox{2}", "2"),
    ("\\boxed{1} then \\boxed{2", "1"),  # the last box is cut off: fall back to the complete one
    ("no box", None),
])
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Paragraph 2 is wrong.\n\\boxed{2}", (2, "ok")),
    ("All good: \\boxed{-1}", (-1, "ok")),
    ("first \\boxed{1}, on reflection \\boxed{ 0 }", (0, "ok")),
    ("\\boxed{$3$}", (3, "ok")),
    ("\\boxed{-2}", (None, "unparsed")),
    ("\\boxed{2.5}", (None, "unparsed")),
    ("\\boxed{paragraph 3}", (None, "unparsed")),
    ("\\boxed{}", (None, "unparsed")),
    ("The earliest error is in paragraph 3.", (None, "unparsed")),  # never guessed from prose
    ("\\boxed{3", (None, "unparsed")),
])
def test_parse_critic(text, expected):
    assert parse_critic(text) == expected


@given(st.text())
def test_parse_critic_fuzz_never_raises(text):
    k, status = parse_critic(text)
    assert status in PARSE_STATUSES
    assert (status == "ok") == (k is not None)
    assert k is None or k >= -1


@given(st.text(alphabet=st.characters(blacklist_characters="\\{}")), st.integers(-50, 10**6))
def test_parse_critic_fuzz_reads_the_boxed_index(prefix, k):
    expected = (k, "ok") if k >= -1 else (None, "unparsed")
    assert parse_critic(f"{prefix}\\boxed{{{k}}}") == expected


@pytest.mark.parametrize("name", ["genrm_ft_v1", "genrm_base_v1", "toy_genrm_v1"])
def test_parse_verdict(name):
    p = get_prompt(name)
    cue = p.verdict_cue.strip()
    assert parse_verdict(p, f"Step 1 ok.\n{cue} Yes") == (True, "ok")
    assert parse_verdict(p, f"Step 1 ok.\n{cue} **No**.") == (False, "ok")
    assert parse_verdict(p, f"{cue} Yes\nOn second thought:\n{cue} No") == (False, "ok")  # the last verdict
    assert parse_verdict(p, f"{cue} Maybe") == (None, "no_verdict")
    assert parse_verdict(p, f"{cue} Yesterday") == (None, "no_verdict")
    assert parse_verdict(p, "The solution looks right. Yes.") == (None, "no_verdict")  # no cue: no guess


def test_parse_verdict_needs_a_verdict_prompt():
    with pytest.raises(ValueError, match="minerva_math_v1"):
        parse_verdict(get_prompt("minerva_math_v1"), "Yes")


@pytest.mark.parametrize("lp_yes, lp_no, expected", [
    (math.log(0.3), math.log(0.1), 0.75),
    (0.0, 0.0, 0.5),
    (-1000.0, -1001.0, 1 / (1 + math.exp(-1))),  # exp underflows: must still normalise
    (-1e6, -1.0, 0.0),
    (-math.inf, -2.0, 0.0),
    (-2.0, -math.inf, 1.0),
])
def test_p_yes_from_logprobs(lp_yes, lp_no, expected):
    assert p_yes_from_logprobs(lp_yes, lp_no) == pytest.approx(expected, abs=1e-12)


@given(st.floats(-1e4, 0.0), st.floats(-1e4, 0.0))
def test_p_yes_fuzz_is_a_probability_and_symmetric(a, b):
    p = p_yes_from_logprobs(a, b)
    assert 0.0 <= p <= 1.0
    assert p + p_yes_from_logprobs(b, a) == pytest.approx(1.0, abs=1e-12)


def test_p_yes_rejects_no_distribution():
    with pytest.raises(ValueError):
        p_yes_from_logprobs(-math.inf, -math.inf)
    with pytest.raises(ValueError):
        p_yes_from_logprobs(math.nan, -1.0)


def test_verdict_position_with_the_toy_tokenizer():
    tok = build_tokenizer()
    prompt = get_prompt("toy_genrm_v1")
    yes, no = (tok.convert_tokens_to_ids(t) for t in (prompt.yes_text, prompt.no_text))
    text = "[0] 37+48=85 ok\n" + prompt.verdict_cue + "No"
    ids = tok.encode(text, add_special_tokens=False)
    pos = verdict_position(ids, yes, no, prompt.verdict_cue, tok.decode)
    assert pos == len(ids) - 1 and ids[pos] == no
    # a verdict token not after the cue is not the verdict; a trailing token after it is skipped
    ids2 = tok.encode("Yes\n" + prompt.verdict_cue + "Yes", add_special_tokens=False) + tok.encode("\n", add_special_tokens=False)
    assert verdict_position(ids2, yes, no, prompt.verdict_cue, tok.decode) == len(ids2) - 2
    assert verdict_position(tok.encode("Yes No", add_special_tokens=False), yes, no, prompt.verdict_cue, tok.decode) is None
