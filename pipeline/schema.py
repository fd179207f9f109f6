"""The tables that connect the pipeline and the analysis: the one place that defines them.

Every stage writes, and every reader expects, exactly these Arrow schemas. A run directory holds
one Parquet dataset per table (``<run_dir>/<table>/part-*.parquet``) and a ``manifest.json``.

Changing a schema: add nullable columns (old files read as null there) and bump ``SCHEMA_VERSION``;
never rename or retype a column in place. ``SCHEMA_VERSION`` is written into each file's Parquet
key-value metadata and into the manifest.

Conventions
- Keys: ``problems`` (run_id, problem_id); ``solutions`` (run_id, problem_id, solution_idx);
  ``verifications`` (run_id, problem_id, solution_idx, verifier, verification_idx); ``grades``
  (run_id, problem_id, solution_idx, grader_version): earlier grades that a re-grade replaced in
  ``solutions`` (which always holds the current ones), kept for comparison; ``decisions`` (run_id,
  problem_id, stage, solutions_so_far): what an adaptive run (``adaptive`` config) decided per problem.
- Token counts are per generation as reported by the engine. ``prompt_tokens`` of a solution is the
  prompt length of its request: the n=S samples of one request share one prompt, so compute
  accounting counts it once per (problem) and ``cached_prompt_tokens`` is what the engine's prefix
  cache served (whole KV blocks, from ``RequestOutput.num_cached_tokens``).
- ``p_yes`` is P("Yes") normalised over the two verdict tokens {Yes, No}:
  exp(lp_yes) / (exp(lp_yes) + exp(lp_no)), from the engine's *raw* logprobs (before temperature
  and top-p) at the verdict position. ``p_yes_source`` says where the position came from.
- Columns the issue's later capabilities fill (answer_class, grader_version, steps,
  predicted_error_step, step_scores, replica_id, node_id, cached_prompt_tokens, revision) are
  nullable so earlier writers and importers may leave them empty.
"""
from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1
SCHEMA_VERSION_KEY = b"solve_verify.schema_version"
TABLE_KEY = b"solve_verify.table"

# grade_status values: why is_correct has the value it has.
GRADE_STATUSES = ("correct", "incorrect", "no_answer", "timeout", "error", "skipped")
# verifier_kind values.
VERIFIER_KINDS = ("genrm", "critic", "prm")
# p_yes_source values.
P_YES_SOURCES = ("verdict_token", "verdict_cue", "none")
# parse_status values of a verification's text.
PARSE_STATUSES = ("ok", "no_verdict", "unparsed")


def _f(name: str, type_: pa.DataType, nullable: bool = True, doc: str = "") -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={b"doc": doc.encode()} if doc else None)


PROBLEMS = pa.schema(
    [
        _f("run_id", pa.string(), False, "run identifier (manifest.run_id)"),
        _f("problem_id", pa.string(), False, "dataset id of the problem, unique within the run"),
        _f("dataset", pa.string(), False, "dataset config name, e.g. math500 or toy"),
        _f("problem", pa.string(), False, "problem text as given to the prompt"),
        _f("answer", pa.string(), True, "reference answer (string form); null when unknown"),
        _f("level", pa.int32(), True, "difficulty level if the dataset has one"),
        _f("subject", pa.string(), True, "subject / category if the dataset has one"),
        _f("reference_steps", pa.list_(pa.string()), True, "ground-truth solution steps (toy world)"),
        _f("skip_reason", pa.string(), True, "why the problem was not solved (e.g. prompt too long); null if solved"),
        _f("revision", pa.int32(), True, "config revision of the run that added this row"),
    ]
)

SOLUTIONS = pa.schema(
    [
        _f("run_id", pa.string(), False),
        _f("problem_id", pa.string(), False),
        _f("solution_idx", pa.int32(), False, "0..S-1 within the problem"),
        _f("text", pa.string(), False, "the generated solution"),
        _f("extracted_answer", pa.string(), True, "final answer extracted from text; null if none"),
        _f("answer_class", pa.int32(), True,
           "equivalence class of extracted_answer within the problem (grader's equivalence); "
           "equal ids vote together; null when no answer"),
        _f("is_correct", pa.bool_(), True, "graded against the reference; null when not graded"),
        _f("grade_status", pa.string(), False, "one of GRADE_STATUSES"),
        _f("grader_version", pa.string(), True, "grader name and version, e.g. math-verify==0.9.0"),
        _f("steps", pa.list_(pa.string()), True, "the solution (after any thinking block) split into steps by the configured rule"),
        _f("prompt_tokens", pa.int32(), False,
           "prompt length of the request (shared by its n samples); summed over an adaptive run's rounds"),
        _f("cached_prompt_tokens", pa.int32(), True, "prompt tokens served by the prefix cache"),
        _f("completion_tokens", pa.int32(), False),
        _f("finish_reason", pa.string(), True, "engine finish reason: stop, length, ..."),
        _f("seed", pa.int64(), True, "sampling seed of the request, if one was set"),
        _f("model", pa.string(), False, "solver model name"),
        _f("replica_id", pa.string(), True, "solver replica that generated it"),
        _f("node_id", pa.string(), True, "Ray node of that replica"),
        _f("revision", pa.int32(), True, "config revision that produced the row"),
    ]
)

VERIFICATIONS = pa.schema(
    [
        _f("run_id", pa.string(), False),
        _f("problem_id", pa.string(), False),
        _f("solution_idx", pa.int32(), False),
        _f("verifier", pa.string(), False, "verifier config name (model + prompt)"),
        _f("verification_idx", pa.int32(), False, "0..V-1 for the (solution, verifier)"),
        _f("verifier_kind", pa.string(), False, "one of VERIFIER_KINDS"),
        _f("text", pa.string(), True, "the critique; null for a discriminative PRM"),
        _f("verdict", pa.bool_(), True, "parsed verdict (True = solution judged correct); null if none"),
        _f("p_yes", pa.float64(), True, "P(Yes) normalised over {Yes, No}, raw logprobs; see module doc"),
        _f("p_yes_source", pa.string(), True, "one of P_YES_SOURCES"),
        _f("parse_status", pa.string(), True, "one of PARSE_STATUSES"),
        _f("predicted_error_step", pa.int32(), True, "critic: earliest wrong step (0-based) or -1; null if unparsed"),
        _f("step_scores", pa.list_(pa.float64()), True, "PRM: per-step probability of correctness"),
        _f("prompt_tokens", pa.int32(), False),
        _f("cached_prompt_tokens", pa.int32(), True),
        _f("completion_tokens", pa.int32(), False),
        _f("finish_reason", pa.string(), True),
        _f("seed", pa.int64(), True),
        _f("model", pa.string(), False, "verifier model name"),
        _f("replica_id", pa.string(), True),
        _f("node_id", pa.string(), True),
        _f("revision", pa.int32(), True),
    ]
)

GRADES = pa.schema(
    [
        _f("run_id", pa.string(), False),
        _f("problem_id", pa.string(), False),
        _f("solution_idx", pa.int32(), False),
        _f("grader_version", pa.string(), False, "the grader that gave these grades (solutions.grader_version then)"),
        _f("extracted_answer", pa.string(), True),
        _f("answer_class", pa.int32(), True),
        _f("is_correct", pa.bool_(), True),
        _f("grade_status", pa.string(), False, "one of GRADE_STATUSES"),
        _f("replaced_at", pa.float64(), False, "unix time a re-grade replaced them in solutions (pipeline.rescore)"),
    ]
)

# decisions.decision values: solve rounds "continue" / "stop"; verification "verify" / "skip".
DECISIONS = ("continue", "stop", "verify", "skip")

DECISIONS_TABLE = pa.schema(
    [
        _f("run_id", pa.string(), False),
        _f("problem_id", pa.string(), False),
        _f("stage", pa.string(), False, "solve (after a sampling round) or verify (before verification)"),
        _f("solutions_so_far", pa.int32(), False, "solutions of the problem the decision saw"),
        _f("round", pa.int32(), False, "solve: 0-based sampling round; verify: the number of solve rounds"),
        _f("decision", pa.string(), False, "one of DECISIONS"),
        _f("reason", pa.string(), False,
           "agree (an answer has k votes / the top share reached the agreement), cap (S reached), split"),
        _f("top_votes", pa.int32(), False, "votes of the most frequent answer among them"),
        _f("policy", pa.string(), False, "the policy and its parameters, e.g. stop_when_agree(k=3,step=1)"),
        _f("revision", pa.int32(), True, "config revision that produced the row"),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "problems": PROBLEMS,
    "solutions": SOLUTIONS,
    "verifications": VERIFICATIONS,
    "grades": GRADES,
    "decisions": DECISIONS_TABLE,
}

KEYS: dict[str, tuple[str, ...]] = {
    "problems": ("run_id", "problem_id"),
    "solutions": ("run_id", "problem_id", "solution_idx"),
    "verifications": ("run_id", "problem_id", "solution_idx", "verifier", "verification_idx"),
    "grades": ("run_id", "problem_id", "solution_idx", "grader_version"),
    "decisions": ("run_id", "problem_id", "stage", "solutions_so_far"),
}

MANIFEST_FILE = "manifest.json"


def schema_for(table: str) -> pa.Schema:
    """The Arrow schema of ``table`` with the schema version in its metadata."""
    if table not in TABLES:
        raise KeyError(f"unknown table {table!r}; known: {sorted(TABLES)}")
    return TABLES[table].with_metadata(
        {SCHEMA_VERSION_KEY: str(SCHEMA_VERSION).encode(), TABLE_KEY: table.encode()}
    )


def conform(table: str, data: pa.Table) -> pa.Table:
    """Cast ``data`` to the table's schema: add missing nullable columns as nulls, order columns.

    Raises ValueError naming the column when a non-nullable column is missing or has nulls, or
    when an unknown column is present.
    """
    schema = schema_for(table)
    extra = set(data.column_names) - set(schema.names)
    if extra:
        raise ValueError(f"{table}: unknown columns {sorted(extra)}; schema has {schema.names}")
    cols = []
    for field in schema:
        if field.name in data.column_names:
            col = data.column(field.name).cast(field.type)
            if not field.nullable and col.null_count:
                raise ValueError(f"{table}.{field.name}: {col.null_count} null values in a required column")
        elif field.nullable:
            col = pa.nulls(data.num_rows, field.type)
        else:
            raise ValueError(f"{table}: required column {field.name!r} is missing")
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=schema)


def describe() -> str:
    """Markdown documentation of every table, generated from the schemas (used by docs and tests)."""
    lines = [f"Schema version {SCHEMA_VERSION}.", ""]
    for name, schema in TABLES.items():
        lines += [f"### `{name}` (key: {', '.join(KEYS[name])})", "", "| column | type | null | meaning |",
                  "|---|---|---|---|"]
        for f in schema:
            doc = (f.metadata or {}).get(b"doc", b"").decode()
            lines.append(f"| `{f.name}` | {f.type} | {'yes' if f.nullable else 'no'} | {doc} |")
        lines.append("")
    return "\n".join(lines)
