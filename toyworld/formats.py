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

GenRM verifier (``GENRM_PROMPT.format(problem=..., solution=...)``), completion = one critique line per
step -- the solution's step copied, ``|``, the verifier's own recomputation of that step (from the
previous value and the problem's operation), then ``ok`` or ``wrong`` -- stopping at the first wrong step,
then the verdict cue and ONE verdict token (here the solution's second step read ``85*3=225``)::

    [0] 37+48=85 | 37+48=85 ok
    [1] 85*3=225 | 85*3=255 wrong
    Correct? No

Why the copy: format 1 (recomputation alone) left the comparison with the solution's line, many tokens
back, implicit, and the verifier's AUROC near chance; the copy puts both values on one line. It helped
only a little (AUROC 0.55 -> 0.60 at V=1): the tiny verifier still tends to recompute the copy instead of
reading it (``toyworld/MODEL_CARD.md``).

``VERDICT_CUE`` (``"Correct? "``) is followed by exactly one token, ``Yes`` or ``No``. To score a
critique that lacks a verdict, append the cue (:func:`with_verdict_cue`) and read P(Yes) from a
one-token continuation.

Critic (ProcessBench style, :func:`critic_prompt`): steps tagged ``[i]`` from 0; completion = the same
critique lines, then ``\\boxed{k}`` with ``k`` the earliest wrong step or ``-1``.

PRM (:func:`prm_input`): the solver prompt followed by the steps, each followed by the separator token
``<step>``; one label (step correct / not) per separator.
"""

from __future__ import annotations

import re

from toyworld.tokenizer import NO_TOKEN, STEP_TOKEN, YES_TOKEN

FORMAT_VERSION = 2

# --- solver -------------------------------------------------------------------------------------------
SOLVER_PROMPT = "Problem: {problem}\nSolution:\n"
ANSWER_PREFIX = "Answer: "
STEP_DELIMITER = "\n"  # one step per line

# --- GenRM verifier -----------------------------------------------------------------------------------
GENRM_PROMPT = "Problem: {problem}\nSolution:\n{solution}\nCheck:\n"
VERDICT_CUE = "Correct? "  # followed by exactly one verdict token
YES = YES_TOKEN
NO = NO_TOKEN
CRITIQUE_LINE = "[{index}] {step} | {expected} {mark}"  # mark: CRITIQUE_OK / CRITIQUE_WRONG
CRITIQUE_OK = "ok"
CRITIQUE_WRONG = "wrong"

# --- critic (ProcessBench style) ----------------------------------------------------------------------
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


def genrm_target(critique_lines: list[str], correct: bool) -> str:
    """A full GenRM completion: critique lines, then the verdict cue and the verdict token."""
    return "".join(line + "\n" for line in critique_lines) + VERDICT_CUE + (YES if correct else NO)


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
