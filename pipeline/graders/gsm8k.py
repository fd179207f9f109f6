"""GSM8K grader: the reference is the number after ``####``; answers compare as exact numbers."""
from __future__ import annotations

import re
from collections.abc import Hashable
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from pipeline.graders.base import Grader
from pipeline.parse import last_boxed

_NUMBER = re.compile(r"-?\$?\s*\d[\d,]*(?:\.\d+)?|-?\$?\s*\.\d+")
_HASHES = re.compile(r"####\s*([^\n]*)")
_FINAL = re.compile(r"final answer is\s*([^\n]*)", re.IGNORECASE)


def to_number(text: str) -> Fraction | None:
    """Exact value of a written number (``1,000``, ``$18.50``, ``-3``, ``0.5``), or None."""
    s = text.strip().strip(".").replace(",", "").replace("$", "").replace(" ", "")
    if s.startswith("\\"):  # LaTeX wrappers around a plain number, e.g. \$ or \text{}
        return None
    try:
        return Fraction(Decimal(s))
    except (InvalidOperation, ValueError):
        return None


def _last_number(text: str) -> str | None:
    found = _NUMBER.findall(text)
    return found[-1].replace("$", "").strip() if found else None


class Gsm8kGrader(Grader):
    """Extraction order: the last ``#### N``, else the last ``\\boxed{}``, else the text after the
    last "final answer is", else the last number anywhere in the solution (GSM8K solutions often
    end in a sentence such as "She makes $18 a day.")."""

    name = "gsm8k"

    @property
    def version(self) -> str:
        return "gsm8k-numeric==1"

    def extract(self, text: str) -> str | None:
        hashes = _HASHES.findall(text)
        for candidate in (hashes[-1] if hashes else None, last_boxed(text)):
            if candidate is not None and candidate.strip():
                return _last_number(candidate) or candidate.strip()
        final = _FINAL.findall(text)
        if final and (n := _last_number(final[-1])):
            return n
        return _last_number(text)

    def gold(self, reference: str) -> str:
        hashes = _HASHES.findall(reference)
        answer = hashes[-1] if hashes else reference
        if to_number(answer) is None:
            raise ValueError(f"gsm8k reference has no number after '####': {reference[-80:]!r}")
        return answer.strip()

    def check(self, gold: str | None, answer: str) -> tuple[bool | None, Hashable]:
        value = to_number(answer)
        key: Hashable = value if value is not None else ("text", answer.strip())
        if gold is None:
            return None, key
        return value is not None and value == to_number(gold), key
