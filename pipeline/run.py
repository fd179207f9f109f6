"""Solve -> grade -> verify a problem set and write its Parquet tables; resumable after any kill.

Launch (embedded toy default, CPU):  python -m pipeline.run
Override example:                    python -m pipeline.run dataset=math500 budget.solutions=64
Sweep example:                       python -m pipeline.run --multirun budget.solutions=4,8
Cost estimate, nothing run:          python -m pipeline.run budget.solutions=64 dry_run.enabled=true

``run(cfg)`` holds the logic; ``main`` only converts Hydra's config into the typed ``RunConfig``.
Stages run through Ray Data with fixed pools of engine replicas; the driver consumes the stage outputs
and commits whole units itself (``pipeline.store``), so rerunning the same command on the same
``output_dir``/``run_id`` continues where a killed run stopped, and a finished run does nothing.

Extending a run in place: an invocation fills problems x S x V up to its config (for ``subset``'s
problems, or all): problems with fewer than S solutions get the missing ones (solution_idx continues),
solutions (idx < S) with fewer than V verifications by this verifier get the missing ones, and a new
``verification.name`` verifies the existing solutions. Such a config is recorded as a new revision
(``pipeline.manifest``); its rows carry that revision and are sampled with engine seed
``budget.seed + revision`` (fresh draws, not a replay of revision 0's random stream). Rows already
written are never touched.

Modes (``cluster.mode``): ``phased`` (default, one engine pool alive at a time: solve + grade
everything pending, then verify) and ``streaming`` (solve -> grade -> verify chained in one Ray Data
pipeline, both pools alive; for clusters).
"""
from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import adaptive, faults
from pipeline.config import ConfigError, ModelConfig, RunConfig, to_run_config
from pipeline.datasets import DatasetError, load_problems, load_subset
from pipeline.engine import ModelPathError, check_model_path, load_tokenizer, resolve_sampling
from pipeline.manifest import ConfigMismatch, Invocation, Manifest, StageStats
from pipeline.placement import replica_scheduling
from pipeline.progress import Progress, Summary, format_summary, summarize
from pipeline.prompts import get_prompt
from pipeline.schema import SOLUTIONS
from pipeline.solve import GradeStage, SolveInputs, SolveStage, prepare_solve, solution_rows
from pipeline.store import StoreError, TableStore, UnitBuffer, ensure_dir
from pipeline.steps import solution_steps
from pipeline.verify import PrmStage, VerifyStage, check_verifier_prompt, verification_rows


CALLS_PER_REPLICA = 2
USER_ERRORS = (ConfigError, ConfigMismatch, DatasetError, ModelPathError, StoreError)


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    summary: Summary
    stages: dict[str, StageStats]


# ---------------------------------------------------------------------------------------------
# Ray and Ray Data plumbing
# ---------------------------------------------------------------------------------------------
def _ensure_ray(cfg: RunConfig) -> bool:
    """Connect to the configured cluster or start a local one; True when this call started it."""
    import os

    import ray

    if ray.is_initialized():
        return False
    c = cfg.cluster
    if c.address is None:
        # Logical CPUs, not cores: the replicas and the grading actor each hold one, and Ray Data's own
        # tasks need a few more; the engines themselves use the machine's cores as they can.
        num_cpus = c.num_cpus or max(4, os.cpu_count() or 1)
        # "local" starts a new cluster even when `ray start` left one running on this machine
        # worker_niceness 0: Ray starts workers at niceness 15, which on a shared machine hands the engine
        # replicas' CPU to any other process; here the replicas are the work.
        ray.init(address="local", num_cpus=num_cpus, object_store_memory=c.object_store_memory, include_dashboard=False,
                 log_to_driver=False, configure_logging=False, _system_config={"worker_niceness": 0})
    else:
        ray.init(address=c.address, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = sys.stdout.isatty()
    ctx.execution_options.preserve_order = False
    return True


def _dataset(table: pa.Table, rows_per_block: int):
    """A Ray Dataset of ``table`` in blocks of ``rows_per_block`` rows (so every replica gets work)."""
    import ray

    blocks = [table.slice(i, rows_per_block) for i in range(0, table.num_rows, rows_per_block)]
    return ray.data.from_arrow(blocks)


def _pool_args(cfg: RunConfig, model: ModelConfig) -> dict:
    from ray.data import ActorPoolStrategy

    # A fixed pool of `replicas` actors (like concurrency=(R, R)); two calls per actor run at once so the
    # next batch's requests join the engine's queue while the current ones finish (engine.EngineLoop).
    pool = ActorPoolStrategy(size=model.replicas, max_concurrent_calls_per_actor=CALLS_PER_REPLICA,
                             enable_true_multi_threading=True)
    # max_task_retries bounds Ray Data's default of retrying a dead replica's batch forever
    return dict(compute=pool, batch_format="pyarrow", batch_size=cfg.cluster.batch_size,
                max_task_retries=cfg.cluster.batch_retries, **replica_scheduling(cfg.cluster, model))


def _solve_and_grade(cfg: RunConfig, requests: pa.Table, sampling: dict, seed: int):
    ds = _dataset(requests, cfg.cluster.batch_size)
    solve = dict(model=cfg.solver, seed=seed, sampling=sampling["solver"], engine_timeout_s=cfg.cluster.engine_timeout_s)
    grading = dict(grader=cfg.dataset.grader, timeout_s=cfg.grading.timeout_s, processes=cfg.grading.processes,
                   step_rule=cfg.verification.step_rule)
    if cfg.adaptive.stop_when_agree:  # the replica grades each round itself to decide the next
        return ds.map_batches(adaptive.AdaptiveSolveStage, fn_constructor_kwargs=dict(
            solve, policy=adaptive.stop_policy(cfg), grading=grading), **_pool_args(cfg, cfg.solver))
    ds = ds.map_batches(SolveStage, fn_constructor_kwargs=solve, **_pool_args(cfg, cfg.solver))
    return ds.map_batches(GradeStage, fn_constructor_kwargs=grading, concurrency=(1, 1), num_cpus=1, batch_size=None,
                          batch_format="pyarrow")


def _verify(cfg: RunConfig, ds, sampling: dict, seed: int):
    kwargs = dict(model=cfg.verifier_model, seed=seed, prompt_name=cfg.prompt.verifier,
                  engine_timeout_s=cfg.cluster.engine_timeout_s)
    if cfg.verification.kind == "prm":
        return ds.map_batches(PrmStage, fn_constructor_kwargs=kwargs, **_pool_args(cfg, cfg.verifier_model))
    return ds.map_batches(VerifyStage, fn_constructor_kwargs=dict(kwargs, sampling=sampling["verifier"]),
                          **_pool_args(cfg, cfg.verifier_model))


# ---------------------------------------------------------------------------------------------
# Driver-side commits
# ---------------------------------------------------------------------------------------------
class _Committer:
    """Turns stage outputs into table rows, commits whole units, keeps the invocation's counts."""

    def __init__(self, cfg: RunConfig, stores: dict[str, TableStore], inv: Invocation, manifest: Manifest):
        self.cfg, self.inv, self.manifest = cfg, inv, manifest
        self.seed = cfg.budget.seed + inv.revision  # see the module doc
        self._recorded_rows = 0
        c = cfg.cluster
        self.solutions = UnitBuffer(stores["solutions"], c.max_rows_per_part, c.commit_interval_s)
        self.verifications = UnitBuffer(stores["verifications"], c.max_rows_per_part, c.commit_interval_s,
                                        depends_on=self.solutions)

    def solved(self, batch: pa.Table) -> pa.Table:
        """Commit graded problem rows (all S solutions of each problem); returns the solution rows."""
        faults.hit("mid_solve")
        rows = solution_rows(batch, self.cfg.run_id, self.cfg.solver.name, self.seed, self.inv.revision)
        self.inv.stages["solve"].saw_engines(batch)
        self.add_solutions(rows, batch.num_rows, int(pc.sum(batch.column("prompt_tokens")).as_py() or 0),
                           int(pc.sum(batch.column("cached_prompt_tokens")).as_py() or 0))
        return rows

    def add_solutions(self, rows: pa.Table, problems: int, prompt_tokens: int, cached_tokens: int) -> None:
        """Buffer the solution rows of ``problems`` whole problems (one request each) for commit."""
        s = self.inv.stages["solve"]
        s.units += problems
        s.requests += problems
        s.rows += rows.num_rows
        s.prompt_tokens += prompt_tokens
        s.cached_prompt_tokens += cached_tokens
        s.completion_tokens += int(pc.sum(rows.column("completion_tokens")).as_py() or 0)
        self.solutions.add(rows)

    def verified(self, batch: pa.Table) -> int:
        """Commit verified solution rows (all V verifications of each); returns generated tokens."""
        faults.hit("mid_verify")
        v = self.cfg.verification
        rows = verification_rows(batch, self.cfg.run_id, v.name, v.kind, self.cfg.verifier_model.name,
                                 self.seed, self.inv.revision)
        s = self.inv.stages["verify"]
        s.saw_engines(batch)
        s.units += batch.num_rows
        s.rows += rows.num_rows
        s.requests += batch.num_rows
        s.prompt_tokens += int(pc.sum(batch.column("v_prompt_tokens")).as_py() or 0)
        s.cached_prompt_tokens += int(pc.sum(batch.column("v_cached_prompt_tokens")).as_py() or 0)
        tokens = int(pc.sum(rows.column("completion_tokens")).as_py() or 0)
        s.completion_tokens += tokens
        s.extra_tokens += int(pc.sum(batch.column("v_cue_tokens")).as_py() or 0)
        self.verifications.add(rows)
        return tokens

    def flush(self) -> None:
        self.verifications.flush()  # flushes solutions first (depends_on)
        self.solutions.flush()
        self.checkpoint()

    def checkpoint(self) -> None:
        """Record the invocation's counts in the manifest whenever rows were committed since last time,
        so a killed invocation still shows what it did."""
        rows = self.solutions.committed_rows + self.verifications.committed_rows
        if rows != self._recorded_rows:
            self._recorded_rows = rows
            self.manifest.update(self.inv)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------
def _counts(store: TableStore, unit_columns: list[str], where: tuple[str, str] | None = None) -> Counter:
    """Rows per unit key (units are committed whole, so a unit with k rows has indices 0..k-1);
    ``where``: only rows whose column ``where[0]`` equals ``where[1]``."""
    counts: Counter = Counter()
    columns = unit_columns + ([where[0]] if where else [])
    for t in store.iter_columns(columns):
        if where:
            t = t.filter(pc.equal(t.column(where[0]), where[1]))
        counts.update(zip(*(t.column(c).to_pylist() for c in unit_columns)))
    return counts


def pending_solve_requests(cfg: RunConfig, stores: dict[str, TableStore], requests: pa.Table,
                            subset: list[str] | None) -> pa.Table:
    """Requests of the (subset's) problems with fewer than S solutions: ``n`` missing samples from
    ``first_idx`` on, with the problem's earlier solution texts (``prior_text``) for consistent grading."""
    have = _counts(stores["solutions"], ["problem_id"])
    chosen = None if subset is None else set(subset)
    ids = requests.column("problem_id").to_pylist()
    keep = [(chosen is None or p in chosen) and have[(p,)] < cfg.budget.solutions for p in ids]
    requests = requests.filter(pa.array(keep, pa.bool_()))
    ids = requests.column("problem_id").to_pylist()
    prior: dict[str, dict[int, str]] = {p: {} for p in ids if have[(p,)]}
    if prior:
        for t in stores["solutions"].iter_columns(["problem_id", "solution_idx", "text"]):
            for p, i, text in zip(*(t.column(c).to_pylist() for c in ("problem_id", "solution_idx", "text"))):
                if p in prior:
                    prior[p][i] = text
    return (requests.append_column("n", pa.array([cfg.budget.solutions - have[(p,)] for p in ids], pa.int32()))
            .append_column("first_idx", pa.array([have[(p,)] for p in ids], pa.int32()))
            .append_column("prior_text", pa.array([[t for _, t in sorted(prior.get(p, {}).items())] for p in ids],
                                                  pa.list_(pa.string()))))


def pending_verify_inputs(cfg: RunConfig, stores: dict[str, TableStore], problem_text: dict[str, str],
                           subset: list[str] | None) -> pa.Table:
    """The (subset's) solutions with solution_idx < S and fewer than V verifications by this verifier,
    with their problem text, ``verify_n`` missing verifications and ``verify_first_idx`` (per-part reads).
    Their ``steps`` are the recorded ones; solutions recorded without (imported) are split by
    ``verification.step_rule`` here."""
    have = _counts(stores["verifications"], ["problem_id", "solution_idx"], ("verifier", cfg.verification.name))
    chosen = None if subset is None else set(subset)
    v = cfg.budget.verifications
    parts = []
    rule = cfg.verification.step_rule
    for t in stores["solutions"].iter_columns(["problem_id", "solution_idx", "text", "steps"]):
        keys = list(zip(t.column("problem_id").to_pylist(), t.column("solution_idx").to_pylist()))
        keep = [(chosen is None or p in chosen) and i < cfg.budget.solutions and have[(p, i)] < v for p, i in keys]
        t = t.filter(pa.array(keep, pa.bool_()))
        keys = [k for k, ok in zip(keys, keep) if ok]
        steps = [st if st is not None else solution_steps(text, rule)
                 for st, text in zip(t.column("steps").to_pylist(), t.column("text").to_pylist())]
        t = t.set_column(t.column_names.index("steps"), "steps", pa.array(steps, pa.list_(pa.string())))
        parts.append(t.append_column("problem", pa.array([problem_text[p] for p, _ in keys], pa.string()))
                     .append_column("verify_n", pa.array([v - have[k] for k in keys], pa.int32()))
                     .append_column("verify_first_idx", pa.array([have[k] for k in keys], pa.int32())))
    schema = pa.schema([("problem_id", pa.string()), ("solution_idx", pa.int32()), ("text", pa.string()),
                        ("steps", pa.list_(pa.string())), ("problem", pa.string()), ("verify_n", pa.int32()),
                        ("verify_first_idx", pa.int32())])
    return pa.concat_tables(parts) if parts else schema.empty_table()


def _stage(inv: Invocation, name: str, replicas: int) -> StageStats:
    inv.stages[name] = StageStats(replicas=replicas)
    return inv.stages[name]


def _close_stage(stats: StageStats, t0: float) -> None:
    stats.wall_s = time.monotonic() - t0
    stats.replica_seconds = stats.wall_s * stats.replicas


@dataclass(frozen=True)
class CheckedInputs:
    """What ``check_inputs`` read and validated."""

    solve: SolveInputs
    subset: list[str] | None  # the problem ids ``cfg.subset`` selects; None: all
    sampling: dict  # role -> SamplingUsed


def check_inputs(cfg: RunConfig) -> CheckedInputs:
    """Everything that can be wrong with the inputs fails here, before any engine starts: model paths,
    problems, subset, prompts, verdict tokens; returns the tokenised requests and resolved sampling."""
    verify_on = cfg.budget.verifications > 0
    check_model_path(cfg.solver, "solver")
    if verify_on:
        check_model_path(cfg.verifier_model, cfg.verification.model)
    problems = load_problems(cfg.dataset)
    subset = load_subset(cfg.subset, problems)
    inputs = prepare_solve(cfg, problems, load_tokenizer(cfg.solver))
    solver_prompt = get_prompt(cfg.prompt.solver)
    sampling = {"solver": resolve_sampling(cfg.solver, cfg.budget.solver, solver_prompt.stop)}
    if verify_on:
        check_verifier_prompt(load_tokenizer(cfg.verifier_model), get_prompt(cfg.prompt.verifier))
        if cfg.verification.kind != "prm":  # a PRM does not sample
            sampling["verifier"] = resolve_sampling(cfg.verifier_model, cfg.budget.verifier)
    return CheckedInputs(inputs, subset, sampling)


class ReplicaFailure(RuntimeError):
    """Replicas died on one batch more often than ``cluster.batch_retries`` allows."""


def run(cfg: RunConfig) -> RunResult:
    """Run (or continue) the configured run in ``cfg.run_dir``; see the module doc."""
    verify_on = cfg.budget.verifications > 0
    checked = check_inputs(cfg)
    inputs, subset, sampling = checked.solve, checked.subset, checked.sampling

    run_dir = cfg.run_dir
    ensure_dir(run_dir, "run directory")
    manifest = Manifest(run_dir)
    inv = manifest.begin(cfg, {k: asdict(v) for k, v in sampling.items()}, subset)
    stores = {t: TableStore(run_dir, t) for t in ("problems", "solutions", "verifications")}
    inv.recovered = {t: asdict(s.recover()) for t, s in stores.items()}
    manifest.update(inv)

    done_problems = {p for (p,) in stores["problems"].done_units(["problem_id"])}
    new = inputs.problems.filter(pa.array([p not in done_problems for p in
                                           inputs.problems.column("problem_id").to_pylist()], pa.bool_()))
    new = new.append_column("revision", pa.array([inv.revision] * new.num_rows, pa.int32()))
    for i in range(0, new.num_rows, cfg.cluster.max_rows_per_part):
        stores["problems"].commit(new.slice(i, cfg.cluster.max_rows_per_part))

    requests = pending_solve_requests(cfg, stores, inputs.requests, subset)
    if cfg.adaptive.stop_when_agree:
        requests = adaptive.next_rounds(cfg, stores, requests)
    problem_text = dict(zip(inputs.requests.column("problem_id").to_pylist(),
                            inputs.requests.column("problem").to_pylist()))
    committer = _Committer(cfg, stores, inv, manifest)
    started_ray = False
    try:
        if requests.num_rows:
            started_ray = _ensure_ray(cfg)
            if cfg.cluster.mode == "streaming" and verify_on:
                _run_streaming(cfg, requests, sampling, committer, inv)
            else:
                _run_solve(cfg, requests, sampling, committer, inv)
            manifest.update(inv)
        verify_subset = subset
        if cfg.adaptive.enabled:
            chosen = set(subset or problem_text)
            verify_subset, decided = adaptive.record_decisions(cfg, stores, inv.revision,
                                                               [p for p in problem_text if p in chosen])
            manifest.update(inv, adaptive=decided)
        if verify_on:
            pending = pending_verify_inputs(cfg, stores, problem_text, verify_subset)
            if pending.num_rows:
                started_ray = _ensure_ray(cfg) or started_ray
                _run_verify(cfg, pending, sampling, committer, inv)
        inv.status = "finished"
    except BaseException as e:
        inv.status = "failed"
        from ray.exceptions import RayActorError

        if isinstance(e, RayActorError):
            raise ReplicaFailure(
                f"a batch was retried cluster.batch_retries={cfg.cluster.batch_retries} times and every replica that "
                f"ran it died ({type(e).__name__}); the run stops. Rows committed so far are kept and a rerun resumes "
                "from them. The replicas' logs (Ray dashboard, or /tmp/ray/session_latest/logs) say why they died; "
                "raise cluster.batch_retries if the deaths were unrelated to the batch.") from e
        raise
    finally:
        inv.finished = time.time()
        manifest.update(inv)
        if started_ray:
            import ray

            ray.shutdown()
    summary = summarize(run_dir, cfg.verification.name)
    manifest.update(inv, summary=summary.to_dict())
    print(format_summary(summary, inv.stages), flush=True)
    if cfg.wandb.enabled:
        from pipeline.tracking import log_run

        log_run(cfg, inv, summary)
    return RunResult(run_dir, summary, inv.stages)


def _run_solve(cfg: RunConfig, requests: pa.Table, sampling: dict, committer: _Committer, inv: Invocation) -> None:
    stats = _stage(inv, "solve", cfg.solver.replicas)
    progress = Progress("solve", requests.num_rows, "problems")
    t0 = time.monotonic()
    for batch in _solve_and_grade(cfg, requests, sampling, committer.seed).iter_batches(
            batch_size=None, batch_format="pyarrow"):
        rows = committer.solved(batch)
        committer.checkpoint()
        progress.update(batch.num_rows, int(pc.sum(rows.column("completion_tokens")).as_py() or 0))
    committer.flush()
    progress.close()
    _close_stage(stats, t0)


def _run_verify(cfg: RunConfig, pending: pa.Table, sampling: dict, committer: _Committer, inv: Invocation) -> None:
    stats = _stage(inv, "verify", cfg.verifier_model.replicas)
    progress = Progress("verify", pending.num_rows, "solutions")
    t0 = time.monotonic()
    for batch in _verify(cfg, _dataset(pending, cfg.cluster.batch_size), sampling, committer.seed).iter_batches(
            batch_size=None, batch_format="pyarrow"):
        progress.update(batch.num_rows, committer.verified(batch))
        committer.checkpoint()
    committer.flush()
    progress.close()
    _close_stage(stats, t0)


def _run_streaming(cfg: RunConfig, requests: pa.Table, sampling: dict, committer: _Committer,
                   inv: Invocation) -> None:
    """Both pools in one pipeline. A problem's rows are committed once all its new solutions are verified,
    solutions always before their verifications, so a kill never leaves verifications of uncommitted
    solutions (the verifications buffer flushes the solutions buffer first)."""
    solve_stats = _stage(inv, "solve", cfg.solver.replicas)
    verify_stats = _stage(inv, "verify", cfg.verifier_model.replicas)
    run_id, model, seed, revision, v = cfg.run_id, cfg.solver.name, committer.seed, inv.revision, cfg.budget.verifications

    def per_solution(batch: pa.Table) -> pa.Table:
        rows = solution_rows(batch, run_id, model, seed, revision)
        parents = pc.list_parent_indices(batch.column("text"))
        return (rows.append_column("problem", pc.take(batch.column("problem"), parents))
                .append_column("verify_n", pa.array([v] * rows.num_rows, pa.int32()))
                .append_column("verify_first_idx", pa.array([0] * rows.num_rows, pa.int32()))
                .append_column("_problem_n", pc.take(batch.column("n"), parents))
                .append_column("_problem_prompt_tokens", pc.take(batch.column("prompt_tokens"), parents))
                .append_column("_problem_cached_tokens", pc.take(batch.column("cached_prompt_tokens"), parents))
                .append_column("_solve_engine_start_s", pc.take(batch.column("_engine_start_s"), parents))
                .append_column("_solve_engine_ready_at", pc.take(batch.column("_engine_ready_at"), parents)))

    ds = _solve_and_grade(cfg, requests, sampling, seed).map_batches(per_solution, batch_format="pyarrow",
                                                                      batch_size=None)
    waiting: dict[str, list[pa.Table]] = {}
    progress = Progress("solve+verify", requests.num_rows, "problems")
    t0 = time.monotonic()
    solution_columns = [f.name for f in SOLUTIONS]
    for batch in _verify(cfg, ds, sampling, seed).iter_batches(batch_size=None, batch_format="pyarrow"):
        faults.hit("mid_solve")
        for pid in pc.unique(batch.column("problem_id")).to_pylist():
            parts = waiting.setdefault(pid, [])
            parts.append(batch.filter(pc.equal(batch.column("problem_id"), pid)))
            if sum(t.num_rows for t in parts) < parts[0].column("_problem_n")[0].as_py():
                continue
            rows = pa.concat_tables(waiting.pop(pid))
            solve_stats.saw_engines(rows.select(["_solve_engine_start_s", "_solve_engine_ready_at"])
                                    .rename_columns(["_engine_start_s", "_engine_ready_at"]))
            committer.add_solutions(rows.select(solution_columns), 1, rows.column("_problem_prompt_tokens")[0].as_py(),
                                    rows.column("_problem_cached_tokens")[0].as_py())
            progress.update(1, int(pc.sum(rows.column("completion_tokens")).as_py() or 0) + committer.verified(rows))
            committer.checkpoint()
    committer.flush()
    progress.close()
    _close_stage(solve_stats, t0)
    _close_stage(verify_stats, t0)


def main() -> None:
    import hydra

    from pipeline.config import register_configs

    register_configs()

    @hydra.main(config_path="../conf", config_name="config", version_base="1.3")
    def _main(cfg) -> None:
        try:
            run_cfg = to_run_config(cfg)
            if run_cfg.dry_run.enabled:
                from pipeline.estimate import estimate, format_estimate

                print(format_estimate(run_cfg, estimate(run_cfg)), flush=True)
            else:
                run(run_cfg)
        except USER_ERRORS as e:  # bad config or input: the message says what and where; no traceback
            print(f"error: {e}", file=sys.stderr, flush=True)
            sys.exit(2)

    _main()


if __name__ == "__main__":
    main()
