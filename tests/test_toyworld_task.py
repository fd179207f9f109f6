"""Toy task generator: exact answers and exact step labels (hand-checked cases + property tests)."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toyworld import formats, task


def test_hand_checked_problem():
    p = task.parse_problem("Start with 37. Add 48. Multiply by 3. Subtract 15.")
    assert p.start == 37 and p.ops == [("+", 48), ("*", 3), ("-", 15)]
    assert p.answer == 240
    assert p.reference_steps() == ["37+48=85", "85*3=255", "255-15=240", "Answer: 240"]
    assert p.solution == "37+48=85\n85*3=255\n255-15=240\nAnswer: 240"
    assert task.parse_problem(p.text).ops == p.ops


@pytest.mark.parametrize(
    "solution, correct, first_wrong",
    [
        ("37+48=85\n85*3=255\n255-15=240\nAnswer: 240", True, -1),
        ("37 + 48 = 85\n85 * 3 = 255\n255 - 15 = 240\nAnswer: 240", True, -1),  # spacing is free
        ("37+48=86\n86*3=258\n258-15=243\nAnswer: 243", False, 0),  # arithmetic slip at step 0
        ("37+48=85\n85*3=245\n245-15=230\nAnswer: 230", False, 1),
        ("37+48=85\n85*3=255\n255-15=240\nAnswer: 250", False, 3),  # wrong answer line only
        ("37+48=85\n85*4=340\n255-15=240\nAnswer: 240", True, 1),  # wrong step, right answer
        ("37+48=85\n85*3=255\nAnswer: 255", False, 2),  # skipped an operation
        ("37+48=85\n85*3=255", False, 1),  # stops early without an answer
        ("37+48=85\n85*3=255\n255-15=240\nAnswer: 240\n1+1=2", True, 4),  # trailing junk line
        ("", False, 0),
        ("garbage\nAnswer: 240", True, 0),
    ],
)
def test_hand_checked_labels(solution, correct, first_wrong):
    lab = task.label_solution("Start with 37. Add 48. Multiply by 3. Subtract 15.", solution)
    assert lab.correct == correct
    assert lab.first_wrong == first_wrong
    n_ok = len(lab.steps) if first_wrong == -1 else first_wrong
    assert lab.step_correct == [i < n_ok for i in range(len(lab.steps))]


def test_levels_span_easy_to_hard():
    ops = [task.LEVELS[lv].n_ops for lv in sorted(task.LEVELS)]
    assert ops == sorted(ops) and ops[0] < ops[-1]
    for lv, spec in task.LEVELS.items():
        for p in task.generate(lv, 50, seed=3):
            assert p.level == lv and len(p.ops) == spec.n_ops
            assert all(0 <= v <= spec.cap for v in p.values())
            if spec.mul is None:
                assert all(o != "*" for o, _ in p.ops)


def test_generator_is_deterministic():
    a = [p.text for p in task.generate(4, 20, seed=7)]
    b = [p.text for p in task.generate(4, 20, seed=7)]
    c = [p.text for p in task.generate(4, 20, seed=8)]
    assert a == b and a != c


def test_problem_set_has_math500_fields(tmp_path):
    rows = task.make_problem_set(3, seed=1)
    assert len(rows) == 3 * len(task.LEVELS)
    for r in rows:
        assert {"unique_id", "problem", "solution", "answer", "level", "subject", "steps"} <= set(r)
        assert formats.extract_answer(r["solution"]) == r["answer"]
        assert r["steps"] == formats.split_steps(r["solution"])
        assert task.label_solution(r["problem"], r["solution"]).first_wrong == -1
    task.write_jsonl(rows, tmp_path / "x.jsonl")
    assert task.read_jsonl(tmp_path / "x.jsonl") == rows


def test_shipped_problem_sets_are_consistent():
    from toyworld.train import DATA_DIR

    rows = task.read_jsonl(DATA_DIR / "toy_test.jsonl")
    assert len(rows) >= 300 and {r["level"] for r in rows} == set(task.LEVELS)
    for r in rows:
        p = task.parse_problem(r["problem"])
        assert str(p.answer) == r["answer"] and p.reference_steps() == r["steps"]
    pb = task.read_jsonl(DATA_DIR / "toy_processbench.jsonl")
    assert {r["id"].split("-")[0] for r in pb} == {"toy_tune", "toy_test"}
    for r in pb:
        sol = "\n".join(r["steps"])
        lab = task.label_solution(r["problem"], sol)
        assert lab.first_wrong == r["label"] and lab.correct == r["final_answer_correct"]


@st.composite
def problems(draw):
    level = draw(st.sampled_from(sorted(task.LEVELS)))
    seed = draw(st.integers(0, 10**6))
    return task.sample_problem(level, random.Random(seed))


@settings(max_examples=200, deadline=None)
@given(problems())
def test_reference_solution_is_correct(p):
    lab = task.label_solution(p.text, p.solution)
    assert lab.correct and lab.first_wrong == -1 and all(lab.step_correct)
    assert int(lab.answer) == p.answer == p.values()[-1]
    # answers recomputed independently
    v = p.start
    for o, n in p.ops:
        v = eval(f"{v}{o}{n}")
    assert v == p.answer


@settings(max_examples=300, deadline=None)
@given(problems(), st.data())
def test_first_wrong_step_is_exact(p, data):
    steps = p.reference_steps()
    i = data.draw(st.integers(0, len(steps) - 1))
    delta = data.draw(st.integers(1, 9))
    m = task._STEP_RE.match(steps[i])
    if m:  # perturb the result of step i, keep the chain consistent afterwards
        a, o, b, c = m.groups()
        steps[i] = f"{a}{o}{b}={int(c) + delta}"
    else:
        steps[i] = f"Answer: {p.answer + delta}"
    lab = task.label_solution(p, "\n".join(steps))
    assert lab.first_wrong == i
    assert lab.correct == (i < len(p.ops))  # later steps untouched: the answer line is still the true one
    assert lab.step_correct == [j < i for j in range(len(steps))]


@settings(max_examples=100, deadline=None)
@given(problems())
def test_critique_lines_follow_the_reference(p):
    steps = p.reference_steps()
    lines = task.critique_lines(p, steps, -1)
    assert lines == [formats.critique_line(i, s, s, True) for i, s in enumerate(steps)]
    lines = task.critique_lines(p, steps, 1)
    assert len(lines) == 2 and lines[-1].endswith(formats.CRITIQUE_WRONG)


@settings(max_examples=200, deadline=None)
@given(problems(), st.integers(0, 10**6))
def test_a_corrupted_solution_has_one_slip_carried_on_and_a_wrong_answer(p, seed):
    text = task.corrupt(p, random.Random(seed))
    lab = task.label_solution(p, text)
    j = lab.first_wrong
    assert 0 <= j < len(p.ops) and not lab.correct
    assert lab.steps[:j] == p.reference_steps()[:j]
    # every later step is right arithmetic on the value it was given: only step j's result slipped
    for k, step in enumerate(lab.steps[:-1]):
        a, o, b, c = task._STEP_RE.match(step).groups()
        assert (o, int(b)) == p.ops[k] and (int(c) == task._apply(int(a), o, int(b))) == (k != j)
    assert lab.steps[-1] == f"{formats.ANSWER_PREFIX}{c}"
