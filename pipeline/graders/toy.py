"""Toy-world grader: exact integer answers from the ``Answer: N`` line (see ``toyworld.formats``)."""
from __future__ import annotations

from collections.abc import Hashable

from pipeline.graders.base import Grader
from toyworld import formats


class ToyGrader(Grader):
    name = "toy"

    @property
    def version(self) -> str:
        return "toy-exact==1"

    def extract(self, text: str) -> str | None:
        return formats.extract_answer(text)

    def gold(self, reference: str) -> str:
        """The reference is the answer itself (``"240"``) or a toy solution ending in ``Answer: 240``."""
        ref = reference.strip()
        answer = formats.extract_answer(ref) if "Answer:" in ref else ref
        try:
            return str(int(answer))
        except (TypeError, ValueError):
            raise ValueError(f"toy reference {reference!r} is not an integer answer") from None

    def check(self, gold: str | None, answer: str) -> tuple[bool | None, Hashable]:
        value = int(answer)  # extract() only yields integers
        return (None if gold is None else value == int(gold)), value
