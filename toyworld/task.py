"""The toy task family: left-to-right arithmetic chains with exact answers and step-level ground truth.

A problem is a start value and a list of operations, applied left to right::

    Start with 37. Add 48. Multiply by 3. Subtract 15.

Its reference solution has one step per operation (``37+48=85``, ``85*3=255``, ``255-15=240``) and a last
line ``Answer: 240``. Every line of a solution is a step (see ``toyworld.formats``).

Step semantics (exact): step ``i < n_ops`` is correct iff it reads ``a<op>b=c`` with ``a`` the true running
value before operation ``i``, ``<op>``/``b`` the problem's operation ``i`` and ``c`` its true result; step
``n_ops`` is correct iff it reads ``Answer: v`` with ``v`` the true answer; any further line is wrong. The
*first wrong step* of a solution is the smallest index of a wrong step (``-1`` when all are correct); a
solution that stops early without any wrong step has its last step marked wrong (it ends without the
answer). A solution is *correct* iff its final ``Answer:`` equals the true answer.

Difficulty levels 1 (easy) .. 5 (hard) grow the number of operations, the operand sizes and the operations
allowed (see ``LEVELS``). Everything is seeded: ``generate(level, n, seed)`` is deterministic.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from pathlib import Path

from toyworld import formats

SUBJECT = "Arithmetic chains"
OP_WORDS = {"+": "Add {n}.", "-": "Subtract {n}.", "*": "Multiply by {n}."}


@dataclasses.dataclass(frozen=True)
class Level:
    level: int
    n_ops: int
    start: tuple[int, int]  # inclusive range of the start value
    add: tuple[int, int]  # operand range for + and -
    mul: tuple[int, int] | None  # operand range for *, None: no multiplication
    cap: int  # running values stay in [0, cap]


LEVELS: dict[int, Level] = {
    1: Level(1, 2, (2, 20), (1, 9), None, 99),
    2: Level(2, 3, (10, 60), (1, 9), None, 99),
    3: Level(3, 4, (10, 60), (2, 19), (2, 3), 99),
    4: Level(4, 5, (10, 99), (2, 29), (2, 4), 99),
    5: Level(5, 7, (10, 99), (2, 29), (2, 4), 99),
}


def _apply(v: int, op: str, n: int) -> int:
    if op == "+":
        return v + n
    if op == "-":
        return v - n
    if op == "*":
        return v * n
    raise ValueError(op)


@dataclasses.dataclass
class Problem:
    start: int
    ops: list[tuple[str, int]]
    level: int = 0

    @property
    def text(self) -> str:
        return " ".join([f"Start with {self.start}."] + [OP_WORDS[o].format(n=n) for o, n in self.ops])

    def values(self) -> list[int]:
        """Running values: [start, after op 0, after op 1, ...]."""
        vals = [self.start]
        for o, n in self.ops:
            vals.append(_apply(vals[-1], o, n))
        return vals

    @property
    def answer(self) -> int:
        return self.values()[-1]

    def reference_steps(self) -> list[str]:
        """All steps of the reference solution, the ``Answer:`` line included."""
        vals = self.values()
        lines = [f"{vals[i]}{o}{n}={vals[i + 1]}" for i, (o, n) in enumerate(self.ops)]
        return lines + [f"{formats.ANSWER_PREFIX}{vals[-1]}"]

    @property
    def solution(self) -> str:
        return formats.STEP_DELIMITER.join(self.reference_steps())


_PROBLEM_HEAD = re.compile(r"^\s*Start with (-?\d+)\.")
_PROBLEM_OP = re.compile(r"(Add|Subtract|Multiply by) (-?\d+)\.")
_WORD_OP = {"Add": "+", "Subtract": "-", "Multiply by": "*"}


def parse_problem(text: str) -> Problem:
    """Inverse of ``Problem.text``."""
    m = _PROBLEM_HEAD.match(text)
    if not m:
        raise ValueError(f"not a toy problem: {text!r}")
    ops = [(_WORD_OP[w], int(n)) for w, n in _PROBLEM_OP.findall(text[m.end():])]
    return Problem(int(m.group(1)), ops)


def sample_problem(level: int, rng: random.Random) -> Problem:
    spec = LEVELS[level]
    while True:
        v = rng.randint(*spec.start)
        start = v
        ops: list[tuple[str, int]] = []
        for _ in range(spec.n_ops):
            for _try in range(50):
                choices = ["+", "-"] + (["*"] if spec.mul else [])
                o = rng.choice(choices)
                n = rng.randint(*(spec.mul if o == "*" else spec.add))
                w = _apply(v, o, n)
                if 0 <= w <= spec.cap:
                    break
            else:
                break
            ops.append((o, n))
            v = w
        if len(ops) == spec.n_ops and (spec.mul is None or any(o == "*" for o, _ in ops)):
            return Problem(start, ops, level)


def generate(level: int, n: int, seed: int) -> list[Problem]:
    rng = random.Random(f"toyworld/{level}/{seed}")
    return [sample_problem(level, rng) for _ in range(n)]


# --- labelling ----------------------------------------------------------------------------------------
_STEP_RE = re.compile(r"^\s*(-?\d+)\s*([+\-*])\s*(-?\d+)\s*=\s*(-?\d+)\s*$")
_ANSWER_RE = re.compile(r"^\s*Answer:\s*(-?\d+)\s*$")


def step_ok(problem: Problem, index: int, step: str) -> bool:
    """Is ``step`` a correct step number ``index`` of ``problem`` (see the module docstring)?"""
    vals = problem.values()
    if index < len(problem.ops):
        m = _STEP_RE.match(step)
        if not m:
            return False
        a, o, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
        eo, eb = problem.ops[index]
        return a == vals[index] and o == eo and b == eb and c == vals[index + 1]
    if index == len(problem.ops):
        m = _ANSWER_RE.match(step)
        return bool(m) and int(m.group(1)) == vals[-1]
    return False


def _slip(c: int, rng: random.Random) -> int:
    """A plausible arithmetic slip on the result ``c``: off by a little, or one digit changed; never ``c``."""
    while True:
        if rng.random() < 0.5:
            w = rng.choice([d for d in range(-10, 11) if d])
            out = c + w
        else:
            digits = list(str(c))
            k = rng.randrange(len(digits))
            digits[k] = rng.choice([d for d in "0123456789" if d != digits[k]])
            out = int("".join(digits))
        if out != c and out >= 0:
            return out


def corrupt(problem: Problem, rng: random.Random) -> str:
    """A wrong solution with one slip, as the solver makes them: the result of a random step ``j`` is off and
    the later steps carry the wrong value on correctly. Its first wrong step is ``j`` and its answer is wrong
    (every operation is injective: operands of ``*`` are >= 2)."""
    j = rng.randrange(len(problem.ops))
    v, lines = problem.start, []
    for i, (o, n) in enumerate(problem.ops):
        c = _apply(v, o, n)
        if i == j:
            c = _slip(c, rng)
        lines.append(f"{v}{o}{n}={c}")
        v = c
    return formats.STEP_DELIMITER.join(lines + [f"{formats.ANSWER_PREFIX}{v}"])


@dataclasses.dataclass
class Label:
    correct: bool  # final answer equals the true answer
    first_wrong: int  # index of the first wrong step, -1 if none
    steps: list[str]  # the solution's steps
    step_correct: list[bool]  # per step: correct AND all earlier steps correct (PRM label)
    answer: str | None  # extracted final answer


def label_solution(problem: Problem | str, solution: str) -> Label:
    """Exact labels of a solution text: final-answer correctness and the index of the first wrong step."""
    if isinstance(problem, str):
        problem = parse_problem(problem)
    steps = formats.split_steps(solution)
    first_wrong = -1
    for i, s in enumerate(steps):
        if not step_ok(problem, i, s):
            first_wrong = i
            break
    if first_wrong == -1 and len(steps) < len(problem.ops) + 1:
        first_wrong = max(len(steps) - 1, 0)  # stopped early: the last step fails to finish
    ans = formats.extract_answer(solution)
    correct = ans is not None and int(ans) == problem.answer
    n_ok = len(steps) if first_wrong == -1 else first_wrong
    return Label(correct, first_wrong, steps, [i < n_ok for i in range(len(steps))], ans)


def critique_lines(problem: Problem, steps: list[str], first_wrong: int) -> list[str]:
    """Teacher critique: for each step up to the first wrong one, the step, the expected step and ok/wrong."""
    ref = problem.reference_steps()
    last = len(steps) - 1 if first_wrong == -1 else first_wrong
    out = []
    for i in range(last + 1):
        expected = ref[i] if i < len(ref) else "end"
        step = steps[i] if i < len(steps) else "-"  # an empty solution's missing first step
        out.append(formats.critique_line(i, step, expected, i != first_wrong))
    return out


# --- problem sets ---------------------------------------------------------------------------------------
def to_record(p: Problem, unique_id: str) -> dict:
    """A problem in the MATH-500 field layout, plus the reference ``steps``."""
    return {
        "unique_id": unique_id,
        "problem": p.text,
        "solution": p.solution,
        "answer": str(p.answer),
        "level": p.level,
        "subject": SUBJECT,
        "steps": p.reference_steps(),
    }


def make_problem_set(per_level: int, seed: int, split: str = "test", levels=None) -> list[dict]:
    recs = []
    for lv in levels or sorted(LEVELS):
        for j, p in enumerate(generate(lv, per_level, seed)):
            recs.append(to_record(p, f"toy/{split}/L{lv}/{j:04d}"))
    return recs


def write_jsonl(rows: list[dict], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def read_jsonl(path: str | Path) -> list[dict]:
    with Path(path).open() as f:
        return [json.loads(line) for line in f if line.strip()]
