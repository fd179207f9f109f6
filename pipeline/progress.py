"""Feedback while a run goes and when it ends: per-stage progress, the end summary.

Progress is a tqdm bar on a terminal and plain log lines (at most one per ``log_every_s``) otherwise,
so batch logs don't fill with carriage-return spam. The summary is computed from the tables on disk
(never from memory), so it also covers rows written by earlier, interrupted invocations.
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl


class Progress:
    """Progress of one stage: ``update(units, tokens)`` after each committed batch."""

    def __init__(self, stage: str, total: int, unit: str, log_every_s: float = 10.0):
        self.stage, self.total, self.unit, self.log_every_s = stage, total, unit, log_every_s
        self.done = self.tokens = 0
        self.t0 = self._last = time.monotonic()
        self.bar = None
        self._logged = -1  # units at the last log line (no duplicate final line)
        if sys.stdout.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=stage, unit=unit)
        else:
            self._log(force=True)

    def _log(self, force: bool = False) -> None:
        now = time.monotonic()
        if (force and self._logged != self.done) or now - self._last >= self.log_every_s:
            self._logged = self.done
            rate = self.tokens / max(now - self.t0, 1e-9)
            print(f"[{self.stage}] {self.done}/{self.total} {self.unit} | {self.tokens} tokens | {rate:.0f} tok/s "
                  f"| {now - self.t0:.0f}s", flush=True)
            self._last = now

    def update(self, units: int, tokens: int) -> None:
        self.done += units
        self.tokens += tokens
        if self.bar is not None:
            self.bar.update(units)
            self.bar.set_postfix(tok_s=f"{self.tokens / max(time.monotonic() - self.t0, 1e-9):.0f}")
        else:
            self._log()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            self._log(force=True)


@dataclass(frozen=True)
class Summary:
    problems: int
    skipped_problems: int
    solutions: int
    verifications: int
    solution_tokens: int  # generated tokens in the tables (all invocations)
    verification_tokens: int
    first_sample_accuracy: float | None
    majority_vote_accuracy: float | None
    # the solution with the highest mean verifier score per problem: p_yes, else the verdict (a critic's
    # "no wrong step"), else a PRM's lowest step score
    best_of_n_accuracy: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def _scan(run_dir: Path, table: str) -> pl.LazyFrame | None:
    files = sorted((run_dir / table).glob("part-*.parquet"))
    return pl.scan_parquet(files) if files else None


def summarize(run_dir: Path, verifier: str | None = None) -> Summary:
    """Counts and accuracies of the run directory's tables (graded problems only); best-of-N scores by
    ``verifier``'s verifications (all verifiers' when None; a run extended with a second verifier has both)."""
    problems = _scan(run_dir, "problems")
    sols = _scan(run_dir, "solutions")
    vers = _scan(run_dir, "verifications")
    n_prob = n_skip = n_sol = n_ver = sol_tok = ver_tok = 0
    first = maj = best = None
    if problems is not None:
        row = problems.select(pl.len(), pl.col("skip_reason").is_not_null().sum()).collect().row(0)
        n_prob, n_skip = int(row[0]), int(row[1])
    if sols is not None:
        graded = sols.filter(pl.col("is_correct").is_not_null())
        n_sol, sol_tok = (int(x or 0) for x in sols.select(pl.len(), pl.col("completion_tokens").sum()).collect().row(0))
        first = graded.filter(pl.col("solution_idx") == 0).select(pl.col("is_correct").mean()).collect().item()
        # majority over answer classes; ties go to the lowest class id (first seen); no answer never wins
        votes = (graded.filter(pl.col("answer_class").is_not_null())
                 .group_by("problem_id", "answer_class")
                 .agg(pl.len().alias("votes"), pl.col("is_correct").first())
                 .sort(["problem_id", "votes", "answer_class"], descending=[False, True, False])
                 .group_by("problem_id", maintain_order=True).first())
        per_problem = graded.select("problem_id").unique().join(votes, on="problem_id", how="left")
        maj = per_problem.select(pl.col("is_correct").fill_null(False).mean()).collect().item()
        if vers is not None:
            n_ver, ver_tok = (int(x or 0) for x in
                              vers.select(pl.len(), pl.col("completion_tokens").sum()).collect().row(0))
            scored = vers if verifier is None else vers.filter(pl.col("verifier") == verifier)
            score = pl.coalesce("p_yes", pl.col("verdict").cast(pl.Float64), pl.col("step_scores").list.min())
            scores = scored.group_by("problem_id", "solution_idx").agg(score.mean().alias("score"))
            best = (graded.join(scores, on=["problem_id", "solution_idx"], how="inner")
                    .sort(["problem_id", "score", "solution_idx"], descending=[False, True, False], nulls_last=True)
                    .group_by("problem_id", maintain_order=True).first()
                    .select(pl.col("is_correct").mean()).collect().item())
    return Summary(n_prob, n_skip, n_sol, n_ver, sol_tok, ver_tok, first, maj, best)


def format_summary(summary: Summary, stages: dict) -> str:
    """Human-readable end-of-run lines: counts, tokens/s per stage, accuracies so far."""
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    lines = [
        f"problems {summary.problems} ({summary.skipped_problems} skipped) | solutions {summary.solutions} | "
        f"verifications {summary.verifications} | generated tokens: solutions {summary.solution_tokens}, "
        f"verifications {summary.verification_tokens}",
    ]
    for name, s in stages.items():
        after_start = s.completion_tokens / s.generate_s if s.generate_s > 0 else 0.0
        lines.append(f"{name}: {s.completion_tokens} tokens in {s.wall_s:.1f}s = {s.tokens_per_s:.0f} tok/s; "
                     f"{after_start:.0f} tok/s after engine start ({s.engine_start_s:.0f}s) | {s.units} units "
                     f"this invocation, {s.replica_seconds:.0f} replica-s")
    lines.append(f"accuracy: first sample {pct(summary.first_sample_accuracy)} | majority vote "
                 f"{pct(summary.majority_vote_accuracy)} | best-of-N by verifier score {pct(summary.best_of_n_accuracy)}")
    return "\n".join(lines)
