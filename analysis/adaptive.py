"""Adaptive compute allocation, evaluated offline on recorded samples.

A policy sees one problem's samples one at a time, in a random order of the recorded ones, and decides
from what it has seen so far (never from the label) how many solutions to draw and whether to verify.
Replaying each problem under ``n_orders`` random orders gives its expected success and compute.

Compute is in solution-equivalents, the seeds' unit: a solution costs 1 and a verification costs λ
(mean verification tokens / mean solution tokens, or a FLOPs ratio), so C(S, V) = S(1 + λV) for a fixed
budget. Votes are over ``answer_class`` (the grader's equivalence); ties between top classes count the
fraction of tied classes that are correct (the "expected" rule); a solution without an answer never wins.

Policies (each a small frozen dataclass with ``run(samples, order, rng) -> Outcome``). The two that a
pipeline run can apply online (``pipeline.adaptive``) decide through one method used in both places:
``StopWhenAgree.walk`` (the rounds and the next draw, from the answers seen) and ``VerifyWhenSplit.verifies``.
- ``Fixed(S, V)``: the fixed-budget baseline (majority vote if V == 0, else best-of-N by mean P(Yes)).
- ``StopWhenAgree(k, s_max, step)``: draw until some answer has k votes, at most s_max solutions; majority
  vote. Draws come in rounds (the first k, then ``step`` at a time), so ``step`` > 1 replays what a
  pipeline run drawing in bigger rounds does. With k > s_max it never stops early and equals
  ``Fixed(s_max, 0)``.
- ``VerifyWhenSplit(S, V, agreement)``: draw S; if the top answer's share is ≥ ``agreement`` take the vote,
  otherwise verify every solution V times and take best-of-N. ``agreement > 1`` always verifies.
- ``ByDifficulty(probe, table)``: draw ``probe`` solutions, bin the problem by the top answer's share among
  them (an estimate of difficulty from early samples), then continue with the (S, V) chosen for that bin.
  ``fit_by_difficulty`` chooses the per-bin (S, V) on a tuning split of problems.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.load import RunArrays


@dataclass(frozen=True)
class ProblemSamples:
    """One problem's recorded samples: answer class (-1 = no answer), correctness and verifier scores."""

    classes: np.ndarray  # (N,) int
    correct: np.ndarray  # (N,) bool
    scores: np.ndarray | None = None  # (N, V_rec) p_yes per verification; NaN where missing


@dataclass(frozen=True)
class Outcome:
    success: float
    solutions: int
    verifications: int


def vote(classes: np.ndarray, correct: np.ndarray) -> float:
    """Expected correctness of a majority vote over ``classes`` (ties split evenly; no answer never wins)."""
    answered = classes >= 0
    if not answered.any():
        return 0.0
    counts = np.bincount(classes[answered])
    top = np.flatnonzero(counts == counts.max())
    correct_classes = np.unique(classes[answered & correct])
    return float(np.isin(top, correct_classes).mean())


def best_of(correct: np.ndarray, score: np.ndarray) -> float:
    """Expected correctness of picking the highest score (ties split evenly; NaN scores never win)."""
    score = np.where(np.isnan(score), -np.inf, score)
    best = score == score.max()
    return float(correct[best].mean())


def _verify(samples: ProblemSamples, idx: np.ndarray, v: int, rng: np.random.Generator) -> float:
    if samples.scores is None or samples.scores.shape[1] < v:
        raise ValueError(f"policy asks for V={v} verifications per solution; the run recorded "
                         f"{0 if samples.scores is None else samples.scores.shape[1]}")
    cols = rng.permuted(np.tile(np.arange(samples.scores.shape[1]), (idx.size, 1)), axis=1)[:, :v]
    sub = samples.scores[idx[:, None], cols]
    n_ok = (~np.isnan(sub)).sum(axis=1)
    # A solution with no recorded verification in its subset gets NaN, which never wins.
    score = np.where(n_ok > 0, np.nansum(sub, axis=1) / np.maximum(n_ok, 1), np.nan)
    return best_of(samples.correct[idx], score)


@dataclass(frozen=True)
class Fixed:
    S: int
    V: int = 0

    def run(self, samples: ProblemSamples, order: np.ndarray, rng: np.random.Generator) -> Outcome:
        idx = order[: self.S]
        if self.V == 0:
            return Outcome(vote(samples.classes[idx], samples.correct[idx]), idx.size, 0)
        return Outcome(_verify(samples, idx, self.V, rng), idx.size, idx.size * self.V)


def top_votes(classes: np.ndarray) -> int:
    """Votes of the most frequent answer (samples without an answer, class -1, do not vote)."""
    answered = classes[classes >= 0]
    return int(np.bincount(answered).max()) if answered.size else 0


@dataclass(frozen=True)
class Round:
    """One round of a stopping policy: the solutions seen after it, and what the policy decided then."""

    solutions: int
    more: int  # solutions to draw next; 0 = stop
    reason: str  # "agree" (some answer has k votes), "cap" (s_max reached) or "split" (continue)


@dataclass(frozen=True)
class StopWhenAgree:
    k: int
    s_max: int
    step: int = 1  # solutions per round after the first k (1: decide after every sample)

    def decide(self, classes: np.ndarray) -> Round:
        """The decision after seeing ``classes`` (in draw order)."""
        n = classes.size
        if n and top_votes(classes) >= self.k:
            return Round(n, 0, "agree")
        if n >= self.s_max:
            return Round(n, 0, "cap")
        # No answer can have k votes before k samples, so the first round draws k at once.
        return Round(n, min(self.k - n if n < self.k else self.step, self.s_max - n), "split")

    def walk(self, classes: np.ndarray) -> tuple[list[Round], int]:
        """The rounds completed within ``classes`` (each with its decision) and how many solutions to draw
        next (0: stop). A stored count off the round schedule (a run extended from a fixed budget) draws
        the rest of its round."""
        rounds, seen = [], 0
        while True:
            r = self.decide(classes[:seen])
            if seen:
                rounds.append(r)
            if r.more == 0:
                return rounds, 0
            if seen + r.more > classes.size:
                return rounds, seen + r.more - classes.size
            seen += r.more

    def run(self, samples: ProblemSamples, order: np.ndarray, rng: np.random.Generator) -> Outcome:
        idx = order[: self.s_max]
        rounds, _ = self.walk(samples.classes[idx])
        n = rounds[-1].solutions if rounds else idx.size  # fewer recorded samples than the first round
        return Outcome(vote(samples.classes[idx[:n]], samples.correct[idx[:n]]), n, 0)


@dataclass(frozen=True)
class VerifyWhenSplit:
    S: int
    V: int
    agreement: float

    def verifies(self, classes: np.ndarray) -> bool:
        """Whether a problem whose solutions have ``classes`` is verified: its vote is split (the top answer's
        share is below ``agreement``)."""
        return _top_share(classes) < self.agreement

    def run(self, samples: ProblemSamples, order: np.ndarray, rng: np.random.Generator) -> Outcome:
        idx = order[: self.S]
        if not self.verifies(samples.classes[idx]):
            return Outcome(vote(samples.classes[idx], samples.correct[idx]), idx.size, 0)
        return Outcome(_verify(samples, idx, self.V, rng), idx.size, idx.size * self.V)


def _top_share(classes: np.ndarray) -> float:
    return top_votes(classes) / classes.size if classes.size else 0.0


def difficulty_bin(classes: np.ndarray, edges: tuple[float, ...]) -> int:
    """Bin index of a problem from the top answer's share among its probe samples (0 = most split)."""
    return int(np.searchsorted(edges, _top_share(classes), side="right"))


@dataclass(frozen=True)
class ByDifficulty:
    probe: int
    edges: tuple[float, ...]
    choices: tuple[tuple[int, int], ...]  # (S, V) per bin; S counts the probe samples

    def run(self, samples: ProblemSamples, order: np.ndarray, rng: np.random.Generator) -> Outcome:
        b = difficulty_bin(samples.classes[order[: self.probe]], self.edges)
        s, v = self.choices[b]
        return Fixed(max(s, self.probe), v).run(samples, order, rng)


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------
def replay(policy, problems: list[ProblemSamples], n_orders: int = 16, seed: int = 0) -> np.ndarray:
    """Per-problem expected (success, solutions, verifications) over ``n_orders`` random orders: (P, 3)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((len(problems), 3))
    for i, samples in enumerate(problems):
        for _ in range(n_orders):
            o = policy.run(samples, rng.permutation(samples.classes.size), rng)
            out[i] += (o.success, o.solutions, o.verifications)
    return out / n_orders


def summarize(name: str, per_problem: np.ndarray, lam: float, n_boot: int = 1000, seed: int = 0) -> dict:
    """Success and compute (solution-equivalents, 1 + λ per verification) with bootstrap CIs over problems."""
    compute = per_problem[:, 1] + lam * per_problem[:, 2]
    rng = np.random.default_rng(seed)
    boot = rng.integers(0, len(per_problem), (n_boot, len(per_problem)))
    succ = per_problem[boot, 0].mean(axis=1)
    return {
        "policy": name,
        "success": float(per_problem[:, 0].mean()),
        "success_lo": float(np.quantile(succ, 0.025)),
        "success_hi": float(np.quantile(succ, 0.975)),
        "solutions": float(per_problem[:, 1].mean()),
        "verifications": float(per_problem[:, 2].mean()),
        "compute": float(compute.mean()),
    }


def fit_by_difficulty(problems: list[ProblemSamples], probe: int, edges: tuple[float, ...],
                      grid: list[tuple[int, int]], lam: float, price: float,
                      n_orders: int = 8, seed: int = 0) -> ByDifficulty:
    """Choose (S, V) per difficulty bin maximising success − price · compute on ``problems`` (a tuning split).

    Bins come from the probe samples only, so the choice never looks at labels of the evaluated split.
    Sweeping ``price`` traces the policy's success-vs-compute curve.
    """
    rng = np.random.default_rng(seed)
    bins = np.array([difficulty_bin(p.classes[rng.permutation(p.classes.size)[:probe]], edges)
                     for p in problems])
    choices = []
    for b in range(len(edges) + 1):
        members = [p for p, pb in zip(problems, bins) if pb == b]
        if not members:
            choices.append(min(grid, key=lambda sv: sv[0] * (1 + lam * sv[1])))
            continue
        def utility(sv):
            r = replay(Fixed(*sv), members, n_orders, seed)
            return r[:, 0].mean() - price * (r[:, 1] + lam * r[:, 2]).mean()
        choices.append(max(grid, key=utility))
    return ByDifficulty(probe, edges, tuple(choices))


def problems_from_arrays(run: RunArrays, verifier: str | None, vote_key: str = "equivalence") -> list[ProblemSamples]:
    """Per-problem samples of a loaded run, in ``run.problem_ids`` order (one verifier's p_yes when given)."""
    scores = run.verifiers[verifier].scores["p_yes"][0] if verifier else None
    out = []
    for i in range(len(run.problem_ids)):
        ok = run.valid[i]
        out.append(ProblemSamples(run.classes[vote_key][i, ok], run.correct[i, ok],
                                  None if scores is None else scores[i, ok]))
    return out


def sweep(problems: list[ProblemSamples], max_v: int, n_orders: int, seed: int,
          lam: float) -> dict[str, tuple[object, np.ndarray]]:
    """The default policy sweep on a run: name -> (policy, per-problem (success, solutions, verifications)).

    ``ByDifficulty`` is cross-fitted: its per-bin (S, V) is chosen on one half of the problems and
    evaluated on the other, and the other way round, so no problem is scored by a choice it informed.
    """
    n = min(p.classes.size for p in problems)
    out: dict[str, tuple[object, np.ndarray]] = {}
    for k in sorted({2, 3, 4, n // 4, n // 2} - {0, 1}):
        if k <= n:
            pol = StopWhenAgree(k, n)
            out[f"stop_when_agree(k={k},S<={n})"] = (pol, replay(pol, problems, n_orders, seed))
    if max_v:
        for agreement in (0.5, 0.75, 1.0):
            pol = VerifyWhenSplit(n, max_v, agreement)
            out[f"verify_when_split(S={n},V={max_v},agree<{agreement})"] = (pol, replay(pol, problems, n_orders, seed))
    grid = [(s, v) for s in sorted({max(2, n // 8), max(2, n // 4), max(2, n // 2), n}) for v in sorted({0, min(1, max_v), max_v})]
    half = np.random.default_rng(seed).permutation(len(problems)) % 2
    for price in (0.001, 0.01):
        per_problem = np.zeros((len(problems), 3))
        for fold in (0, 1):
            tune = [p for p, h in zip(problems, half) if h != fold]
            pol = fit_by_difficulty(tune, probe=2, edges=(0.99,), grid=grid, lam=lam, price=price,
                                    n_orders=max(2, n_orders // 4), seed=seed)
            idx = np.flatnonzero(half == fold)
            per_problem[idx] = replay(pol, [problems[i] for i in idx], n_orders, seed)
        out[f"by_difficulty(price={price})"] = (None, per_problem)
    return out
