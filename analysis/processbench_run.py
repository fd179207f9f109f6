"""ProcessBench-style evaluation of a configured critic or PRM on a step-labelled set, with vLLM.

    python -m analysis.processbench_run --data data/toy/toy_processbench_test.jsonl --out runs/processbench/toy-critic verification=toy_critic
    python -m analysis.processbench_run --data data/toy/toy_processbench_test.jsonl --tune data/toy/toy_processbench_tune.jsonl --out runs/processbench/toy-prm verification=toy_prm
    python -m analysis.processbench_run --data data/processbench --out runs/processbench/qwen-prm verification=qwen_math_prm

The verifier is configured exactly as for a pipeline run (the trailing arguments are the pipeline's Hydra
overrides: ``verification=...``, ``model@verifier=...``, ``budget.verifier.*``), so the harness scores
the same engine, prompt and step format that a run uses. ``--data``: a ProcessBench JSONL file or a
directory of ``processbench_<subset>.jsonl`` (``analysis.processbench.read_processbench``).

- **critic** (generative): ``budget.verifications`` critiques per sample (V; ProcessBench's greedy
  protocol is ``budget.verifications=1 budget.verifier.temperature=0``); the prediction is the majority of
  the parsed indices (``majority_index``; unparsed critiques abstain, all unparsed = wrong). An index past
  the last step is unparsed, as in the pipeline.
- **prm**: step scores from the pooling engine; the prediction is the first step below a threshold chosen
  on ``--tune`` (a separate file) or, without it, on a hash-chosen ``--tune-fraction`` of ``--data``
  (``analysis.processbench.evaluate_prm``) -- never on the rows reported. The whole sweep is written.

Writes into ``--out``: ``predictions.parquet`` (per sample), ``scores`` (accuracy on erroneous,
on correct, F1 per subset, then the unweighted mean F1), ``thresholds`` (PRM sweep), ``processbench.md``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import polars as pl

from analysis.outputs import markdown_table, write_table
from analysis.processbench import (DEFAULT_THRESHOLDS, ProcessBenchReport, evaluate_prm, evaluate_prm_split,
                                   majority_index, read_processbench, report_from_table)
from pipeline.config import RunConfig, compose
from pipeline.engine import EngineLoop, build_llm, check_model_path, render_ids, resolve_sampling, sampling_params
from pipeline.prompts import get_prompt
from pipeline.verify import critic_reading, prm_step_scores, separator_token_id


def _engine(cfg: RunConfig, pooling: bool):
    check_model_path(cfg.verifier_model, cfg.verification.model)
    llm = build_llm(cfg.verifier_model, cfg.budget.seed, pooling)
    return llm.get_tokenizer(), EngineLoop(llm, "processbench", "verifier", cfg.cluster.engine_timeout_s)


def _token_prompts(cfg: RunConfig, tokenizer, df: pl.DataFrame) -> tuple[list[list[int]], list[int]]:
    """Rendered prompts of every sample, and the indices of those that fit the engine's context."""
    prompt = get_prompt(cfg.prompt.verifier)
    ids = [render_ids(tokenizer, prompt, problem=p, steps=s) for p, s in zip(df["problem"].to_list(), df["steps"].to_list())]
    return ids, [i for i, x in enumerate(ids) if len(x) < cfg.verifier_model.max_model_len]


def critic_predictions(cfg: RunConfig, df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with each sample's V critiques (``critiques``, ``predictions``, ``parse_status``) and the
    majority ``prediction``; samples whose prompt does not fit get no critique (prediction null)."""
    n = cfg.budget.verifications
    if n < 1:
        raise ValueError("budget.verifications must be >= 1 for a critic (the number of critiques per sample)")
    tokenizer, loop = _engine(cfg, pooling=False)
    prompts, fits = _token_prompts(cfg, tokenizer, df)
    params = sampling_params(resolve_sampling(cfg.verifier_model, cfg.budget.verifier), n=n)
    outs = dict(zip(fits, loop.generate([prompts[i] for i in fits], params)))
    texts, preds, statuses = [], [], []
    for i, steps in enumerate(df["steps"].to_list()):
        got = [c.text for c in outs[i].outputs] if i in outs else []
        read = [critic_reading(t, len(steps)) for t in got]
        texts.append(got)
        preds.append([k for k, _, _ in read])
        statuses.append([st for _, _, st in read] or ["prompt_too_long"])
    return df.with_columns(critiques=pl.Series(texts, dtype=pl.List(pl.String)),
                           predictions=pl.Series(preds, dtype=pl.List(pl.Int64)),
                           parse_status=pl.Series(statuses, dtype=pl.List(pl.String)),
                           prediction=pl.Series([majority_index(p) for p in preds], dtype=pl.Int64))


def prm_scores(cfg: RunConfig, frames: list[pl.DataFrame]) -> list[pl.DataFrame]:
    """Each frame with ``step_scores`` (null where the prompt does not fit), from one pooling engine."""
    from vllm import PoolingParams

    tokenizer, loop = _engine(cfg, pooling=True)
    separator = separator_token_id(tokenizer, get_prompt(cfg.prompt.verifier))
    out = []
    for df in frames:
        prompts, fits = _token_prompts(cfg, tokenizer, df)
        outs = dict(zip(fits, loop.generate([prompts[i] for i in fits], PoolingParams(task="token_classify"))))
        scores = [prm_step_scores(outs[i], prompts[i], separator) if i in outs else None for i in range(df.height)]
        out.append(df.with_columns(step_scores=pl.Series(scores, dtype=pl.List(pl.Float64))))
    return out


def _markdown(title: str, report: ProcessBenchReport, notes: list[str]) -> list[str]:
    return [f"# {title}", "", *notes, "", *markdown_table(report.to_polars())]


def evaluate(cfg: RunConfig, data: Path, out: Path, tune: Path | None = None, tune_fraction: float = 0.2,
             thresholds=DEFAULT_THRESHOLDS) -> ProcessBenchReport:
    """Run the configured critic or PRM over ``data`` and write the outputs (module doc); returns the
    report on the evaluated rows (for a PRM without ``tune``, the rows outside the tuning fraction)."""
    kind = cfg.verification.kind
    if kind not in ("critic", "prm"):
        raise ValueError(f"verification.kind={kind}: the ProcessBench harness evaluates a critic or a prm")
    df = read_processbench(data)
    out.mkdir(parents=True, exist_ok=True)
    who = f"`{cfg.verification.name}` ({kind}, model {cfg.verifier_model.name}, prompt {cfg.prompt.verifier})"
    notes = [f"Verifier {who} on `{data}` ({df.height} samples)."]
    if kind == "critic":
        df = critic_predictions(cfg, df)
        report = report_from_table(df)
        statuses = df["parse_status"].explode()
        notes.append(f"{cfg.budget.verifications} critique(s) per sample, majority of the parsed indices; "
                     f"{(statuses != 'ok').sum()} of {statuses.len()} critiques unparsed (counted as abstaining; "
                     "a sample with none parsed counts as wrong).")
    else:
        if tune is not None:
            tune_df, df = prm_scores(cfg, [read_processbench(tune), df])
            ev = evaluate_prm_split(tune_df, df, thresholds=thresholds)
            notes.append(f"Threshold {ev.threshold:g} chosen on `{tune}` ({ev.n_tune} samples; mean F1 there "
                         f"{ev.sweep.best_mean_f1:.4g}); the table is the {ev.n_test} samples of `{data}`.")
        else:
            (df,) = prm_scores(cfg, [df])
            ev = evaluate_prm(df, tune_fraction=tune_fraction, thresholds=thresholds)
            notes.append(f"Threshold {ev.threshold:g} chosen on a {tune_fraction:g} tuning fraction of the data "
                         f"({ev.n_tune} samples, by a hash of the id); the table is the other {ev.n_test}.")
        report = ev.test
        df = df.with_columns(prediction=pl.col("step_scores").map_elements(
            lambda s: next((i for i, x in enumerate(s) if x < ev.threshold), -1), return_dtype=pl.Int64))
        write_table(ev.sweep.to_polars(), out, "thresholds")
    df.write_parquet(out / "predictions.parquet")  # list columns (steps, critiques, scores): no CSV
    write_table(report.to_polars(), out, "scores")
    md = out / "processbench.md"
    md.write_text("\n".join(_markdown("ProcessBench-style evaluation", report, notes)) + "\n")
    (out / "summary.json").write_text(json.dumps({"mean_f1": report.mean_f1, "notes": notes}, indent=2))
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="ProcessBench JSONL file or directory")
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument("--tune", type=Path, help="PRM: a separate split to choose the threshold on")
    ap.add_argument("--tune-fraction", type=float, default=0.2, help="PRM without --tune: fraction of --data")
    ap.add_argument("overrides", nargs="*", help="pipeline config overrides, e.g. verification=toy_prm")
    args = ap.parse_args()
    report = evaluate(compose(args.overrides), args.data, args.out, args.tune, args.tune_fraction)
    print((args.out / "processbench.md").read_text())
    print(f"mean F1 {report.mean_f1:.4f}; written to {args.out}")


if __name__ == "__main__":
    main()
