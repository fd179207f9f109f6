"""Per-dataset answer graders, looked up by name: ``GRADERS["math" | "gsm8k" | "toy"]``.

A grader knows how to pull the final answer out of a solution (``extract``), what the reference
answer is (``gold``), whether an answer matches it and under which key it groups (``check``), and
which earlier answer an answer is equivalent to (``match``). ``pipeline.grade.GradingPool`` drives
them; graders whose comparisons can hang (sympy) declare ``isolated = True`` and run in worker
processes under a timeout, the others run inline.
"""
from __future__ import annotations

from pipeline.graders.base import Grader
from pipeline.graders.gsm8k import Gsm8kGrader
from pipeline.graders.latex_math import MathGrader
from pipeline.graders.toy import ToyGrader

GRADERS: dict[str, Grader] = {g.name: g for g in (MathGrader(), Gsm8kGrader(), ToyGrader())}


def get_grader(name: str) -> Grader:
    """The grader called ``name``; KeyError listing the known graders otherwise."""
    try:
        return GRADERS[name]
    except KeyError:
        raise KeyError(f"unknown grader {name!r}; known graders: {', '.join(sorted(GRADERS))}") from None


__all__ = ["GRADERS", "Grader", "get_grader"]
