"""Toy tokenizer and formats."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toyworld import formats
from toyworld.tokenizer import (
    CHARACTERS,
    STEP_TOKEN,
    UnsupportedCharactersError,
    build_tokenizer,
    check_text,
    save_tokenizer,
    step_token_id,
    unsupported_chars,
    verdict_token_ids,
)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def test_verdict_and_separator_are_single_tokens(tok):
    y, n = verdict_token_ids(tok)
    assert y != n
    assert tok.encode("Yes", add_special_tokens=False) == [y]
    assert tok.encode("No", add_special_tokens=False) == [n]
    assert tok.encode(formats.VERDICT_CUE + "Yes", add_special_tokens=False)[-1] == y
    assert tok.encode(STEP_TOKEN, add_special_tokens=False) == [step_token_id(tok)]
    assert tok.bos_token_id is not None and tok.eos_token_id is not None and tok.pad_token_id is not None
    assert len({tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, y, n}) == 5


def test_bos_is_added(tok):
    assert tok("ab")["input_ids"][0] == tok.bos_token_id


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(CHARACTERS), max_size=80))
def test_round_trip(text):
    tok = build_tokenizer()
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.unk_token_id not in ids
    assert tok.decode(ids) == text


def test_unsupported_chars():
    assert unsupported_chars("Start with 3. Add 4.\n") == set()
    assert unsupported_chars("x = π·r²") == {"π", "·", "²"}
    check_text("fine <step> text")
    with pytest.raises(UnsupportedCharactersError, match="π"):
        check_text("area πr^2", what="problem 7")


def test_save_and_load(tmp_path):
    from transformers import AutoTokenizer

    save_tokenizer(tmp_path)
    t2 = AutoTokenizer.from_pretrained(str(tmp_path))
    t1 = build_tokenizer()
    s = formats.prm_input("Start with 3. Add 4.", ["3+4=7", "Answer: 7"]) + "\nCorrect? Yes"
    assert t2(s)["input_ids"] == t1(s)["input_ids"]
    assert verdict_token_ids(t2) == verdict_token_ids(t1)


def test_formats(tok):
    p = "Start with 3. Add 4."
    sol = formats.format_solution(["3+4=7"], 7)
    assert formats.split_steps(sol) == ["3+4=7", "Answer: 7"]
    assert formats.extract_answer(sol) == "7"
    assert formats.solver_prompt(p) == formats.SOLVER_PROMPT.format(problem=p)
    g = formats.genrm_prompt(p, sol) + formats.genrm_target("7", ["3+4=7", "Answer: 7"])
    assert g.endswith("Check:\nClaimed: 7\n3+4=7\nAnswer: 7\nClaimed: 7\nMatch: 77=\nCorrect? Yes")
    assert formats.parse_verdict(g) is True
    assert formats.genrm_target("17", ["3+4=7", "Answer: 7"]).endswith("Match: _1x 77=\nCorrect? No")
    assert formats.genrm_target(None, ["3+4=7", "Answer: 7"]).startswith("Claimed: none\n")
    assert formats.genrm_target(None, ["3+4=7", "Answer: 7"]).endswith("Match: -\nCorrect? No")
    assert formats.genrm_target("7", ["3+4=7"]).endswith("Match: -\nCorrect? No")  # no answer of its own
    assert formats.parse_verdict("[0] 3+4=8 wrong\nCorrect? No") is False
    assert formats.parse_verdict("[0] 3+4=7 ok") is None
    assert formats.with_verdict_cue("[0] 3+4=7 ok\n") == "[0] 3+4=7 ok\nCorrect? "
    assert formats.with_verdict_cue("[0] 3+4=7 ok\nCorrect? No") == "[0] 3+4=7 ok\nCorrect? "
    c = formats.critic_prompt(p, ["3+4=7", "Answer: 7"])
    assert "[0] 3+4=7\n[1] Answer: 7" in c
    assert formats.parse_critic(formats.critic_target(["[0] 3+4=7 wrong"], 0)) == 0
    assert formats.parse_critic("\\boxed{-1}") == -1 and formats.parse_critic("none") is None
    x = formats.prm_input(p, ["3+4=7", "Answer: 7"])
    assert tok(x)["input_ids"].count(step_token_id(tok)) == 2
