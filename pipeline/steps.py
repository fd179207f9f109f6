"""Splitting a solution into steps, by a named rule.

Rules (the ``rule`` argument of ``split_steps``):
- ``lines``: one step per non-empty line (the toy world writes one step per line).
- ``paragraphs``: steps separated by one or more blank lines (ProcessBench's and most chat models'
  paragraph convention); single newlines stay inside a step.
- ``regex:<pattern>``: split wherever ``<pattern>`` (Python ``re`` syntax) matches, e.g.
  ``regex:\\n(?=Step \\d+)`` to split before "Step k" headings. The matched text is dropped.

Every rule strips whitespace around each step and drops empty steps, so the result never holds
"" and joining/splitting is stable. Text with no content gives ``[]``.

A solution's recorded steps (:func:`solution_steps`) are those of the text a verifier reviews: a
reasoning model's thinking block is dropped first, as the critique prompt drops it, so step k of the
table is step k of the critique (and a QwQ / R1 solution gives its answer's few paragraphs, not thousands).
"""
from __future__ import annotations

import re
from functools import lru_cache

from pipeline.prompts import strip_thinking

RULES = ("lines", "paragraphs", "regex:<pattern>")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


@lru_cache(maxsize=64)
def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"step rule regex:{pattern!r} is not a valid regular expression: {e}") from e


def split_steps(text: str, rule: str = "lines") -> list[str]:
    """Split ``text`` into non-empty, whitespace-stripped steps by ``rule`` (see module doc)."""
    if rule == "lines":
        parts = text.splitlines()
    elif rule == "paragraphs":
        parts = _PARAGRAPH_BREAK.split(text.replace("\r\n", "\n"))
    elif rule.startswith("regex:") and len(rule) > len("regex:"):
        pattern = _compile(rule[len("regex:"):])
        # re.split interleaves capture groups with the pieces; keep the pieces only
        parts = pattern.split(text)[:: pattern.groups + 1]
    else:
        raise ValueError(f"unknown step rule {rule!r}; known: {', '.join(RULES)}")
    return [s for p in parts if p and (s := p.strip())]


def solution_steps(text: str, rule: str = "lines") -> list[str]:
    """The steps of a solution as verifiers see it: the text after any thinking block, split by ``rule``."""
    return split_steps(strip_thinking(text), rule)
