"""Competition-math grader (MATH, AIME, AMC): LaTeX answers compared with math-verify.

Extraction: the answer written last, either the last ``\\boxed{...}`` (braces balanced) or the last
Minerva-style "The final answer is $X$" (up to ". I hope it is correct" or the line's end).

Comparison: ``math_verify.verify(gold, answer)`` on ``math_verify.parse`` results, gold first (the
order matters: verify is not symmetric). Its own SIGALRM timeouts are switched off
(``parsing_timeout=None``, ``timeout_seconds=None``) because they only work on a process's main
thread; ``pipeline.grade.GradingPool`` runs this grader in worker processes and kills a worker that
exceeds its time limit.
"""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Hashable, Sequence
from functools import lru_cache
from importlib.metadata import version

from pipeline.graders.base import Grader
from pipeline.parse import last_boxed

_FINAL = re.compile(r"final answer is\s*(.*?)(?:\.?\s*I hope it is correct|\n|$)", re.IGNORECASE)


def _strip_math(s: str) -> str:
    s = s.strip().rstrip(".").strip()
    if len(s) >= 2 and s.startswith("$") and s.endswith("$"):
        s = s.strip("$").strip()
    inner = last_boxed(s)
    return inner.strip() if inner is not None and s.startswith("\\boxed") else s


@lru_cache(maxsize=4096)
def _parse(answer: str) -> list:
    from math_verify import parse  # heavy import (sympy, antlr): only where grading runs

    # "$...$" makes math-verify read the whole string as one LaTeX expression
    return parse(f"${answer}$", parsing_timeout=None)


@lru_cache(maxsize=4096)
def _number(answer: str) -> complex | None:
    """Numeric value of an answer that is a plain number (no symbols, sets, tuples, relations or
    matrices: those are not sympy ``Expr`` numbers), else None."""
    import sympy

    parsed = _parse(answer)
    expr = parsed[0] if parsed else None
    if not (isinstance(expr, sympy.Expr) and expr.is_number):
        return None
    try:
        value = complex(expr.evalf(30))
    except (TypeError, ValueError, OverflowError):  # infinities, undefined values
        return None
    return value if all(map(math.isfinite, (value.real, value.imag))) else None


def _clearly_different(a: complex | None, b: complex | None) -> bool:
    # math-verify only equates numbers that agree to 6 decimals (float_rounding=6) or exactly, so
    # numbers further apart than this cannot match; this skips its slow symbolic fallback
    # (sympy.simplify of the difference, ~10 ms) when assigning answer classes
    return a is not None and b is not None and abs(a - b) > 1e-5 * max(1.0, abs(a), abs(b))


def _verify(gold: list, answer: list) -> bool:
    from math_verify import verify

    return bool(verify(gold, answer, timeout_seconds=None))


class MathGrader(Grader):
    name = "math"
    isolated = True
    keys_decide = False

    @property
    def version(self) -> str:
        return f"math-verify=={version('math-verify')}"

    def extract(self, text: str) -> str | None:
        candidates: list[tuple[int, str]] = []
        boxed = last_boxed(text)
        if boxed is not None:
            candidates.append((text.rfind("\\boxed"), boxed))
        finals = list(_FINAL.finditer(text))
        if finals:
            candidates.append((finals[-1].start(), finals[-1].group(1)))
        for _, answer in sorted(candidates, reverse=True):
            answer = _strip_math(answer)
            if answer:
                return answer
        return None

    def gold(self, reference: str) -> str:
        """The reference answer: a bare LaTeX answer, or a worked solution's last ``\\boxed{}``."""
        answer = last_boxed(reference) if "\\boxed" in reference else reference
        answer = _strip_math(answer or "")
        if not answer:
            raise ValueError(f"math reference holds no answer: {reference[-80:]!r}")
        return answer

    def check(self, gold: str | None, answer: str) -> tuple[bool | None, Hashable]:
        parsed = _parse(answer)
        # the sympy form merges equal answers written differently (0.5, \frac{1}{2}, \frac12)
        key: Hashable = ("sympy", str(parsed[0])) if parsed else ("text", answer)
        if gold is None:
            return None, key
        gold_parsed = _parse(gold)
        if not gold_parsed:
            raise ValueError(f"math-verify cannot parse the reference answer {gold!r}")
        return _verify(gold_parsed, parsed), key

    def match(self, answer: str, representatives: Sequence[str]) -> int | None:
        parsed, value = _parse(answer), _number(answer)
        for i, rep in enumerate(representatives):
            if not _clearly_different(_number(rep), value) and _verify(_parse(rep), parsed):
                return i
        return None

    def warm_up(self) -> None:
        # math-verify warns on every call that its own timeouts are off; we enforce ours instead
        logging.getLogger("math_verify").setLevel(logging.ERROR)
        _verify(_parse("1"), _parse("1"))
