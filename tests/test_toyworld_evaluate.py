"""The evaluation's pure parts: critique diagnostics on hand-made critiques."""

from toyworld import formats
from toyworld.evaluate import critique_diagnostics

STEPS = ["12+5=17", "17*3=51", "Answer: 51"]


def test_critique_diagnostics_counts_each_failure_separately():
    right = formats.genrm_target("41", STEPS)  # own answer right, claim repeated, verdict No: all good
    wrong_own = formats.genrm_target("41", ["12+5=17", "17*3=41", "Answer: 41"])  # own wrong, says Yes
    bad_copy = right.replace("Claimed: 41\nMatch", "Claimed: 51\nMatch")  # repeated its own answer
    ignores = right.replace("Correct? No", "Correct? Yes")  # verdict against its own comparison
    d = critique_diagnostics(["41"], ["51"], [[right, wrong_own, bad_copy, ignores]])
    assert d == dict(own_answer_correct=3 / 4, claim_repeated_faithfully=3 / 4,
                     verdict_follows_own_comparison=2 / 4, n_critiques=4)


def test_a_solution_without_answer_is_claimed_as_none():
    text = formats.genrm_target(None, STEPS)
    assert formats.critique_claims(text) == [formats.NO_CLAIM, formats.NO_CLAIM]
    d = critique_diagnostics([None], ["51"], [[text, "garbage"]])
    assert d["claim_repeated_faithfully"] == 1 / 2 and d["verdict_follows_own_comparison"] == 1 / 2
