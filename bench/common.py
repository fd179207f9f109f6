"""Helpers the benches share."""
from __future__ import annotations

from pathlib import Path


def toy_problems_file(n: int, path: Path, seed: int) -> Path:
    """Write ``n`` toy problems (levels in turn, ``toyworld.task``) as JSONL to ``path``; return it."""
    from toyworld.task import make_problem_set, write_jsonl

    write_jsonl(make_problem_set(per_level=-(-n // 5), seed=seed)[:n], path)
    return path
