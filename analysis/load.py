"""Read a run directory's tables (lazily, with polars) and build the per-problem arrays the estimators use.

A run directory holds ``<table>/*.parquet`` per table of ``pipeline.schema`` and ``manifest.json``.
Files being written (any path part containing ``.tmp``, or hidden ``.``/``_`` names) are ignored, so a
run still in progress can be analysed: problems without any solution yet are left out (and counted).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from pipeline.schema import MANIFEST_FILE, SCHEMA_VERSION, SCHEMA_VERSION_KEY, schema_for

VOTE_KEYS = ("equivalence", "string")
# Per-verification scores a verifier can provide, as polars expressions over the verifications table.
SCORE_EXPRS: dict[str, pl.Expr] = {
    "p_yes": pl.col("p_yes"),
    "verdict": pl.coalesce(pl.col("verdict"), pl.col("predicted_error_step") == -1).cast(pl.Float64),
    "prm_min": pl.col("step_scores").list.min(),
    "prm_last": pl.col("step_scores").list.last(),
    "prm_prod": pl.when(pl.col("step_scores").list.len() > 0)
    .then(pl.col("step_scores").list.eval(pl.element().log()).list.sum().exp()),
}


def table_files(run_dir: Path, table: str) -> list[Path]:
    """The finished Parquet files of ``table`` (in-progress ``.tmp`` and hidden files skipped), checked
    for a schema version this code can read."""
    folder = Path(run_dir) / table
    files = sorted(
        f for f in folder.glob("**/*.parquet")
        if not any(".tmp" in part or part.startswith((".", "_")) for part in f.relative_to(folder).parts)
    )
    for f in files:
        meta = pq.read_schema(f).metadata or {}
        version = meta.get(SCHEMA_VERSION_KEY)
        if version is None:
            raise ValueError(f"{f}: no {SCHEMA_VERSION_KEY.decode()} in the Parquet metadata; "
                             "write tables through pipeline.schema.conform")
        if int(version) > SCHEMA_VERSION:
            raise ValueError(f"{f}: schema version {int(version)} is newer than this code's {SCHEMA_VERSION}")
    return files


def scan_table(run_dir: str | Path, table: str) -> pl.LazyFrame:
    """A lazy frame over ``table`` with the full current schema (columns older files lack read as null)."""
    files = table_files(Path(run_dir), table)
    schema = pl.from_arrow(schema_for(table).empty_table()).schema
    if not files:
        return pl.LazyFrame(schema=schema)
    return pl.scan_parquet(files, schema=schema, missing_columns="insert")


def read_table(run_dir: str | Path, table: str) -> pl.DataFrame:
    """``table`` of the run, collected."""
    return scan_table(run_dir, table).collect()


def read_manifest(run_dir: str | Path) -> dict:
    """The run's manifest (empty when a partial run has none yet); its schema version is checked."""
    path = Path(run_dir) / MANIFEST_FILE
    if not path.exists():
        return {}
    manifest = json.loads(path.read_text())
    if int(manifest.get("schema_version", SCHEMA_VERSION)) > SCHEMA_VERSION:
        raise ValueError(f"{path}: schema_version {manifest['schema_version']} is newer than {SCHEMA_VERSION}")
    return manifest


@dataclass(frozen=True)
class TokenUse:
    """Mean token counts of one stage. Samples sharing a prompt (the n solutions of a problem, the V
    verifications of a solution) form a group whose prompt is prefilled once: ``prefill_per_group`` is
    the uncached prompt tokens per group (prompt - cached where the engine reported it, else the prompt
    once per group), ``generated_per_sample`` the completion tokens per sample."""

    model: str
    prefill_per_group: float
    generated_per_sample: float
    samples_per_group: float


@dataclass(frozen=True)
class VerifierArrays:
    """One verifier's recorded verifications: per score name, values and presence, (P, N, M)."""

    name: str
    kind: str
    tokens: TokenUse
    scores: dict[str, tuple[np.ndarray, np.ndarray]]

    @property
    def max_verifications(self) -> int:
        return next(iter(self.scores.values()))[0].shape[2]


@dataclass(frozen=True)
class RunArrays:
    """Per-problem arrays of a run: rows are ``problem_ids``, columns solution_idx (padded, ``valid``)."""

    run_dir: Path
    manifest: dict
    problem_ids: np.ndarray
    valid: np.ndarray
    correct: np.ndarray
    classes: dict[str, np.ndarray]
    solve_tokens: TokenUse
    verifiers: dict[str, VerifierArrays]
    notes: list[str] = field(default_factory=list)

    @property
    def max_solutions(self) -> int:
        return self.valid.shape[1]


def _token_use(frame: pl.LazyFrame, group: list[str]) -> TokenUse:
    # A group's prompt costs what the prefix cache did not serve; without cache counters, its prompt once.
    prompt, cached = pl.col("prompt_tokens").cast(pl.Int64), pl.col("cached_prompt_tokens").cast(pl.Int64)
    prefill = pl.when(cached.null_count() == 0).then((prompt - cached).sum()).otherwise(prompt.max())
    stats = (frame.group_by(group).agg(prefill.alias("prefill"), pl.len().alias("samples"),
                                       pl.col("completion_tokens").cast(pl.Int64).sum().alias("generated"))
             .select(pl.col("prefill").mean(), pl.col("samples").mean(),
                     (pl.col("generated").sum() / pl.col("samples").sum()).alias("generated"))
             .collect())
    models = sorted(frame.select(pl.col("model").unique()).collect()["model"].to_list())
    return TokenUse(
        model="+".join(models),
        prefill_per_group=float(stats["prefill"].item() or 0.0),
        generated_per_sample=float(stats["generated"].item() or 0.0),
        samples_per_group=float(stats["samples"].item() or 0.0),
    )


def _dense_per_problem(col: str) -> pl.Expr:
    """Class ids 0..J-1 within each problem (null stays null = no answer)."""
    return (pl.col(col).rank("dense").over("problem_id") - 1).cast(pl.Int64)


def load_run(run_dir: str | Path) -> RunArrays:
    """Read the run and build the arrays (see ``RunArrays``); raises ValueError naming what is missing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run directory {run_dir} does not exist")
    manifest = read_manifest(run_dir)
    notes: list[str] = []
    sols = scan_table(run_dir, "solutions").select(
        "problem_id", "solution_idx", "is_correct", "answer_class", "extracted_answer",
        "prompt_tokens", "cached_prompt_tokens", "completion_tokens", "model",
    ).collect()
    if sols.height == 0:
        raise ValueError(f"{run_dir}/solutions: no solutions recorded yet; nothing to analyse")
    if sols.select(pl.struct("problem_id", "solution_idx").is_duplicated().any()).item():
        raise ValueError(f"{run_dir}/solutions: duplicate (problem_id, solution_idx) keys")
    problems = read_table(run_dir, "problems")
    order = problems.select("problem_id").with_row_index("order")
    ids = (sols.select("problem_id").unique().join(order, on="problem_id", how="left")
           .sort("order", "problem_id", nulls_last=True)["problem_id"])
    missing = problems.height - problems["problem_id"].is_in(ids.implode()).sum()
    if missing:
        notes.append(f"{missing} of {problems.height} problems have no solutions (skipped or not run yet) "
                     "and are left out")
    index = pl.DataFrame({"problem_id": ids, "pidx": np.arange(len(ids))})
    sols = sols.join(index, on="problem_id").with_columns(
        equivalence=_dense_per_problem("answer_class"), string=_dense_per_problem("extracted_answer"))
    if sols["answer_class"].null_count() == sols.height and sols["extracted_answer"].null_count() < sols.height:
        notes.append("answer_class is empty: votes use answer strings for vote_key=equivalence too")
        sols = sols.with_columns(equivalence=pl.col("string"))
    ungraded = sols["is_correct"].null_count()
    if ungraded:
        notes.append(f"{ungraded} solutions are not graded yet and count as incorrect")
    p, n = len(ids), int(sols["solution_idx"].max()) + 1
    per_problem = sols.group_by("problem_id").len()["len"]
    if per_problem.min() < n:
        notes.append(f"solutions per problem range from {per_problem.min()} to {n}: a point at S averages the "
                     "problems with at least S solutions")
    flat = sols["pidx"].to_numpy() * n + sols["solution_idx"].to_numpy()
    valid = np.zeros(p * n, bool)
    valid[flat] = True
    correct = np.zeros(p * n, bool)
    correct[flat] = sols["is_correct"].fill_null(False).to_numpy()
    classes = {}
    for key in VOTE_KEYS:
        c = np.full(p * n, -1, dtype=np.int64)
        c[flat] = sols[key].fill_null(-1).to_numpy()
        classes[key] = c.reshape(p, n)
    return RunArrays(
        run_dir=run_dir, manifest=manifest, problem_ids=ids.to_numpy(), valid=valid.reshape(p, n),
        correct=correct.reshape(p, n), classes=classes,
        solve_tokens=_token_use(sols.lazy(), ["problem_id"]),
        verifiers=_load_verifiers(run_dir, index, p, n), notes=notes,
    )


def _load_verifiers(run_dir: Path, index: pl.DataFrame, p: int, n: int) -> dict[str, VerifierArrays]:
    # One verifier at a time and only numeric columns collected: a large run has millions of rows.
    ver = scan_table(run_dir, "verifications").join(index.lazy(), on="problem_id", how="inner")
    out = {}
    for name in sorted(ver.select(pl.col("verifier").unique()).collect()["verifier"].to_list()):
        one = ver.filter(pl.col("verifier") == name)
        kinds = one.select(pl.col("verifier_kind").unique()).collect()["verifier_kind"].to_list()
        if len(kinds) != 1:
            raise ValueError(f"{run_dir}/verifications: verifier {name!r} has several verifier_kind values {kinds}")
        rows = one.select("pidx", "solution_idx", "verification_idx", **SCORE_EXPRS).collect(engine="streaming")
        if rows["solution_idx"].max() >= n:
            raise ValueError(f"{run_dir}/verifications: verifier {name!r} verifies solution_idx "
                             f"{rows['solution_idx'].max()} that has no solution row")
        m = int(rows["verification_idx"].max()) + 1
        flat = ((rows["pidx"].to_numpy() * n + rows["solution_idx"].to_numpy()) * m
                + rows["verification_idx"].to_numpy())
        scores = {}
        for score in SCORE_EXPRS:
            col = rows[score]
            if col.null_count() == rows.height:
                continue
            values = np.full(p * n * m, np.nan)
            values[flat] = col.fill_null(np.nan).to_numpy()
            scores[score] = (values.reshape(p, n, m), ~np.isnan(values).reshape(p, n, m))
        if scores:
            out[name] = VerifierArrays(
                name=name, kind=kinds[0], scores=scores,
                tokens=_token_use(one, ["problem_id", "solution_idx"]))
    return out
