"""Prompt / completion formats of the embedded toy world.

Plain ``str.format`` templates and pure functions, imported by ``pipeline/prompts.py`` (``toy_solver_v1``,
``toy_genrm_v1``, ``toy_critic_v1``, ``toy_prm_v1``). The shipped checkpoints were trained on exactly these
strings: changing one means retraining (``python -m toyworld.train``).

Solver (``SOLVER_PROMPT.format(problem=...)``), completion = one step per line, last line the answer::

    Problem: Start with 37. Add 48. Multiply by 3. Subtract 15.
    Solution:
    37+48=85
    85*3=255
    255-15=240
    Answer: 240

Every line of a solution is one *step* (the ``Answer:`` line included): :func:`split_steps`.

GenRM verifier (``GENRM_PROMPT.format(problem=..., solution=...)``), completion = the answer the solution
claims, the verifier's own solution of the problem (one step per line, as the solver writes them), the claim
again, a match line comparing the two answers digit by digit (each pair: the verifier's digit, the claimed
digit, ``=`` or ``x``; right-aligned, ``_`` pads the shorter), then the verdict cue and ONE verdict token,
``Yes`` iff the verifier's answer equals the claimed one (here the solution's second step read ``85*3=225``
and it ended with ``Answer: 210``)::

    Claimed: 210
    37+48=85
    85*3=255
    255-15=240
    Answer: 240
    Claimed: 210
    Match: 22= 41x 00=
    Correct? No

Why this shape (``toyworld/MODEL_CARD.md`` has the numbers): the tiny model cannot learn to *read* a step
-- asked to copy ``7-6=13`` it wrote its own ``7-6=1`` -- so formats 1 and 2, which judged the solution line
by line, gave verdicts near chance. Re-deriving the answer is the solver's own skill, and copying the
claimed answer is easy. Comparing two numbers is not: with only the two answers on adjacent lines (format 3)
the verdict agreed with the comparison 53% of the time, while the match line turns equality into pairs of
adjacent digits, which the model compares reliably, and the verdict into spotting an ``x``. P(Yes) then
measures agreement between the solution and the verifier's own derivation, as for the many real GenRMs
whose rationales re-derive the answer.

``VERDICT_CUE`` (``"Correct? "``) is followed by exactly one token, ``Yes`` or ``No``. To score a
critique that lacks a verdict, append the cue (:func:`with_verdict_cue`) and read P(Yes) from a
one-token continuation.

Critic (ProcessBench style, :func:`critic_prompt`): steps tagged ``[i]`` from 0; completion = one critique
line per step up to the first wrong one -- the step copied, ``|``, the verifier's own version of that step
(from the true previous value), ``ok`` or ``wrong`` -- then ``\\boxed{k}`` with ``k`` the earliest wrong step
or ``-1``::

    [0] 37+48=85 | 37+48=85 ok
    [1] 85*3=225 | 85*3=255 wrong
    \\boxed{1}

PRM (:func:`prm_input`): the solver prompt followed by the steps, each followed by the separator token
``<step>``; one label (step correct / not) per separator.
"""

from __future__ import annotations

import re

from toyworld.tokenizer import NO_TOKEN, STEP_TOKEN, YES_TOKEN

FORMAT_VERSION = 4

# --- solver -------------------------------------------------------------------------------------------
SOLVER_PROMPT = "Problem: {problem}\nSolution:\n"
ANSWER_PREFIX = "Answer: "
STEP_DELIMITER = "\n"  # one step per line

# --- GenRM verifier -----------------------------------------------------------------------------------
GENRM_PROMPT = "Problem: {problem}\nSolution:\n{solution}\nCheck:\n"
CLAIM_PREFIX = "Claimed: "  # first critique line: the solution's final answer, NO_CLAIM when it has none
NO_CLAIM = "none"
MATCH_PREFIX = "Match: "  # the digit-by-digit comparison of the verifier's answer with the claim
MATCH_SAME, MATCH_DIFFERENT, MATCH_PAD = "=", "x", "_"
NO_MATCH = "-"  # the match line when either answer is missing or not a plain number
VERDICT_CUE = "Correct? "  # followed by exactly one verdict token
YES = YES_TOKEN
NO = NO_TOKEN

# --- critic (ProcessBench style) ----------------------------------------------------------------------
CRITIQUE_LINE = "[{index}] {step} | {expected} {mark}"  # mark: CRITIQUE_OK / CRITIQUE_WRONG
CRITIQUE_OK = "ok"
CRITIQUE_WRONG = "wrong"
CRITIC_PROMPT = "Problem: {problem}\nSteps:\n{tagged_steps}\nFirst wrong step?\n"
CRITIC_STEP_TAG = "[{index}] {step}"

# --- PRM ------------------------------------------------------------------------------------------------
PRM_SEPARATOR = STEP_TOKEN
PRM_PROMPT = SOLVER_PROMPT  # the steps follow, each closed by PRM_SEPARATOR


def solver_prompt(problem: str) -> str:
    return SOLVER_PROMPT.format(problem=problem)


def format_solution(steps: list[str], answer) -> str:
    """Reference-style solution text from computation steps and the final answer."""
    return STEP_DELIMITER.join(list(steps) + [f"{ANSWER_PREFIX}{answer}"])


def split_steps(solution: str) -> list[str]:
    """The steps of a toy solution: its non-empty lines (stripped), the ``Answer:`` line included."""
    return [s.strip() for s in solution.strip().split(STEP_DELIMITER) if s.strip()]


_ANSWER_RE = re.compile(r"Answer:\s*(-?\d+)")


def extract_answer(solution: str) -> str | None:
    """The final answer of a toy solution (last ``Answer: N`` line), or None."""
    m = _ANSWER_RE.findall(solution)
    return m[-1] if m else None


def genrm_prompt(problem: str, solution: str) -> str:
    return GENRM_PROMPT.format(problem=problem, solution=solution.strip())


def critique_line(index: int, step: str, expected: str, ok: bool) -> str:
    """One critique line: the solution's step, the expected step, and the mark."""
    return CRITIQUE_LINE.format(index=index, step=step, expected=expected,
                                mark=CRITIQUE_OK if ok else CRITIQUE_WRONG)


def match_line(own: str | None, claimed: str | None) -> str:
    """The digit-by-digit comparison of the verifier's answer with the claimed one (see the module doc)."""
    if own is None or claimed is None or not (own.isdigit() and claimed.isdigit()):
        return MATCH_PREFIX + NO_MATCH
    w = max(len(own), len(claimed))
    pairs = zip(own.rjust(w, MATCH_PAD), claimed.rjust(w, MATCH_PAD))
    return MATCH_PREFIX + " ".join(a + b + (MATCH_SAME if a == b else MATCH_DIFFERENT) for a, b in pairs)


def claim_value(claimed: str | None) -> str:
    """How a critique's ``Claimed:`` line writes a solution's answer (NO_CLAIM when it has none)."""
    return NO_CLAIM if claimed is None else claimed


def genrm_target(claimed: str | None, own_steps: list[str]) -> str:
    """A full GenRM completion for a solution claiming ``claimed``, re-derived as ``own_steps``: the claim, the
    steps, the claim again, the match line, the verdict cue and the verdict (Yes iff the answers agree)."""
    own = extract_answer("\n".join(own_steps))
    claim = CLAIM_PREFIX + claim_value(claimed)
    lines = [claim, *own_steps, claim, match_line(own, claimed)]
    agree = own is not None and own == claimed
    return "".join(line + "\n" for line in lines) + VERDICT_CUE + (YES if agree else NO)


def critique_claims(critique: str) -> list[str]:
    """The values of a GenRM critique's ``Claimed:`` lines (the claim it read, then the claim it repeated)."""
    return [line[len(CLAIM_PREFIX):].strip() for line in critique.split("\n") if line.startswith(CLAIM_PREFIX)]


def with_verdict_cue(critique: str) -> str:
    """Cut ``critique`` before any verdict and end it with the verdict cue, ready for a one-token
    continuation whose P(Yes) scores the solution."""
    i = critique.find(VERDICT_CUE.strip())
    if i >= 0:
        critique = critique[:i]
    critique = critique.rstrip()
    return (critique + "\n" if critique else "") + VERDICT_CUE


_VERDICT_RE = re.compile(re.escape(VERDICT_CUE.strip()) + r"\s*(Yes|No)")


def parse_verdict(critique: str) -> bool | None:
    """True for ``Correct? Yes``, False for ``Correct? No``, None when the critique has no verdict."""
    m = _VERDICT_RE.search(critique)
    return None if m is None else m.group(1) == YES


def critic_prompt(problem: str, steps: list[str]) -> str:
    tagged = "\n".join(CRITIC_STEP_TAG.format(index=i, step=s) for i, s in enumerate(steps))
    return CRITIC_PROMPT.format(problem=problem, tagged_steps=tagged)


def critic_target(critique_lines: list[str], first_wrong: int) -> str:
    return "".join(line + "\n" for line in critique_lines) + f"\\boxed{{{first_wrong}}}"


_BOXED_RE = re.compile(r"\\boxed\{\s*(-?\d+)\s*\}")


def parse_critic(text: str) -> int | None:
    """The index in the last ``\\boxed{k}`` of a critic completion (-1: no error found), or None."""
    m = _BOXED_RE.findall(text)
    return int(m[-1]) if m else None


def prm_input(problem: str, steps: list[str]) -> str:
    """PRM input text: the solver prompt, then each step followed by the separator token."""
    return PRM_PROMPT.format(problem=problem) + "".join(s + PRM_SEPARATOR for s in steps)
