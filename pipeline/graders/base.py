"""The grader interface shared by every dataset's grader."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from typing import ClassVar


class Grader(ABC):
    """Answer extraction and comparison for one dataset family.

    Keys: ``check`` returns a hashable key per answer; answers with equal keys are equivalent (a fast
    path that merges most duplicates without pairwise comparisons). When ``keys_decide`` is True the
    key *is* the equivalence (numbers, integers) and ``match`` is never needed; otherwise ``match``
    compares an answer against earlier class representatives.
    """

    name: ClassVar[str]
    isolated: ClassVar[bool] = False  # run in worker processes under a timeout
    keys_decide: ClassVar[bool] = True

    @property
    @abstractmethod
    def version(self) -> str:
        """Name and version of the grading logic, stored with each grade (e.g. ``toy-exact==1``)."""

    @abstractmethod
    def extract(self, text: str) -> str | None:
        """The final answer written in a solution ``text`` (a string as written), or None."""

    @abstractmethod
    def gold(self, reference: str) -> str:
        """The reference answer from a dataset's reference field; ValueError if it holds none."""

    @abstractmethod
    def check(self, gold: str | None, answer: str) -> tuple[bool | None, Hashable]:
        """``(is_correct, key)`` of ``answer``; is_correct is None when ``gold`` is None."""

    def match(self, answer: str, representatives: Sequence[str]) -> int | None:
        """Index of the first representative equivalent to ``answer``, or None."""
        return None

    def warm_up(self) -> None:
        """Import and exercise heavy dependencies (called once in each worker before any task)."""
