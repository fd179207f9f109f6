"""Adapters from other tools' output formats to the pipeline's tables (through ``analysis.importers``).

    python -m analysis.adapters lm-eval samples_math500_2025-01-01.jsonl runs/lmeval --grader math
    python -m analysis.adapters qwen-math test_qwen25-math-cot_-1_seed0_t0.7_s0_e-1.jsonl runs/qwen
    python -m analysis.adapters search-and-learn best_of_n_completions.jsonl runs/sal --grader math
    python -m analysis.adapters seeds-yaml samples/ runs/seeds --verifications verifications/ --grader math

Formats:
- ``lm-eval``: lm-evaluation-harness ``--log_samples`` JSONL (one line per doc: ``doc_id``, ``doc``,
  ``target``, ``resps`` — a list per request of the sampled texts). Samples are graded here with our
  grader (``--grader``), so answer classes follow the grader's equivalence.
- ``qwen-math``: Qwen2.5-Math evaluation output (``idx``, ``question``, ``gt``, ``code`` = texts, ``pred`` =
  extracted answers, ``score`` = their correctness; optional per-sample reward scores under ``rm_score``,
  ``reward`` or ``rewards``). Its own grading is kept; classes merge correct answers, wrong ones by string.
  Reward scores outside [0, 1] (reward-model logits) go through the logistic function, which keeps their
  order (all best-of-N needs).
- ``search-and-learn``: a search-and-learn dataset saved as JSONL (``unique_id``, ``problem``, ``answer``,
  ``completions``, ``scores`` = per completion the PRM's step scores, ``completion_tokens``). Graded here;
  the step scores become a PRM verifier's ``step_scores``.
- ``seeds-yaml``: the seeds' reference code's layout: ``<samples>/<problem>.yaml`` with ``question`` (or
  ``problem``), ``samples``, ``gt_answer`` (a full reference solution) and optionally ``is_corrects``;
  ``<verifications>/problem_<problem>/solution_<i>.yaml`` with ``verifications: [{verification, p(yes),
  p(no)}]`` where -1 means "not found". p_yes = p(yes) / (p(yes) + p(no)) when both were found, the raw
  p(yes) or 1 − p(no) when only one was; a verification where neither was found is left out (a
  p of 0.0 is a real probability, not "missing"). Graded here unless
  ``is_corrects`` is present.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml

from analysis.importers import import_records, jsonl_records
from pipeline.grade import GradingPool


def _graded(pool: GradingPool, reference: str | None, texts: list[str]) -> dict:
    grades = pool.grade(reference, texts)
    return {
        "answers": [g.extracted_answer for g in grades],
        "correct": [bool(g.is_correct) for g in grades],
        "answer_classes": [g.answer_class for g in grades],
        "responses": texts,
    }


def _flatten(resps) -> list[str]:
    """lm-eval ``resps``: a list per request of sampled texts (or a flat list of texts)."""
    out = []
    for r in resps:
        out.extend(r if isinstance(r, list) else [r])
    return [str(t) for t in out]


def lm_eval_records(path: Path, pool: GradingPool) -> Iterator[tuple[str, dict]]:
    """Records from an lm-evaluation-harness ``--log_samples`` file, graded by ``pool``."""
    for where, rec in jsonl_records(path):
        doc = rec.get("doc") or {}
        if "resps" not in rec:
            raise ValueError(f"{where}: no 'resps' (is this an lm-eval --log_samples file?)")
        reference = rec.get("target", doc.get("answer"))
        yield where, {
            "problem_id": str(rec.get("doc_id", doc.get("unique_id"))),
            "problem": doc.get("problem", doc.get("question", "")),
            "answer": None if reference is None else str(reference),
            "level": doc.get("level") if isinstance(doc.get("level"), int) else None,
            "subject": doc.get("subject", doc.get("type")),
            **_graded(pool, None if reference is None else str(reference), _flatten(rec["resps"])),
        }


def _logistic_if_needed(scores: list[float]) -> list[float]:
    if all(0.0 <= s <= 1.0 for s in scores):
        return scores
    return [1.0 / (1.0 + math.exp(-s)) for s in scores]


def qwen_math_records(path: Path) -> Iterator[tuple[str, dict]]:
    """Records from a Qwen2.5-Math evaluation output file (its own grading kept)."""
    for where, rec in jsonl_records(path):
        missing = [k for k in ("idx", "pred", "score") if k not in rec]
        if missing:
            raise ValueError(f"{where}: missing {missing} (is this a Qwen2.5-Math evaluation output?)")
        rewards = next((rec[k] for k in ("rm_score", "reward", "rewards") if k in rec), None)
        yield where, {
            "problem_id": str(rec["idx"]),
            "problem": rec.get("question", ""),
            "answer": None if rec.get("gt") is None else str(rec["gt"]),
            "answers": [None if p in (None, "") else str(p) for p in rec["pred"]],
            "correct": [bool(s) for s in rec["score"]],
            "responses": rec.get("code"),
            "scores": None if rewards is None else _logistic_if_needed([float(r) for r in rewards]),
        }


def search_and_learn_records(path: Path, pool: GradingPool) -> Iterator[tuple[str, dict]]:
    """Records from a search-and-learn dataset saved as JSONL; PRM step scores kept per completion."""
    for where, rec in jsonl_records(path):
        if "completions" not in rec:
            raise ValueError(f"{where}: no 'completions' (is this a search-and-learn dataset?)")
        tokens = rec.get("completion_tokens")
        yield where, {
            "problem_id": str(rec.get("unique_id", rec.get("problem_id"))),
            "problem": rec.get("problem", ""),
            "answer": rec.get("answer"),
            "level": rec.get("level"),
            "subject": rec.get("subject"),
            "scores": rec.get("scores"),
            "completion_tokens": tokens if isinstance(tokens, list) else None,
            **_graded(pool, rec.get("answer"), [str(c) for c in rec["completions"]]),
        }


def _seed_p_yes(entry: dict) -> float | None:
    p_yes, p_no = float(entry.get("p(yes)", -1)), float(entry.get("p(no)", -1))
    if p_yes >= 0 and p_no >= 0 and p_yes + p_no > 0:
        return p_yes / (p_yes + p_no)
    if p_yes >= 0:
        return p_yes
    if p_no >= 0:
        return 1.0 - p_no
    return None


def seeds_yaml_records(samples_dir: Path, verifications_dir: Path | None,
                       pool: GradingPool) -> Iterator[tuple[str, dict]]:
    """Records from the seeds' YAML-per-problem layout (and its per-solution verification files)."""
    files = sorted(samples_dir.glob("*.yaml"), key=lambda p: (len(p.stem), p.stem))
    if not files:
        raise ValueError(f"{samples_dir}: no <problem>.yaml files")
    for f in files:
        where = str(f)
        data = yaml.safe_load(f.read_text()) or {}
        if "samples" not in data:
            raise ValueError(f"{where}: no 'samples' key")
        texts = [str(t) for t in data["samples"]]
        reference = data.get("gt_answer")
        rec = _graded(pool, None if reference is None else str(reference), texts)
        if "is_corrects" in data:
            rec["correct"] = [bool(c) for c in data["is_corrects"]]
        if verifications_dir is not None:
            scores = []
            for i in range(len(texts)):
                vf = verifications_dir / f"problem_{f.stem}" / f"solution_{i}.yaml"
                entries = (yaml.safe_load(vf.read_text()) or {}).get("verifications", []) if vf.exists() else []
                ps = [_seed_p_yes(e) for e in entries]
                scores.append([p for p in ps if p is not None] or None)
            rec["scores"] = scores
        yield where, {"problem_id": f.stem, "problem": data.get("question", data.get("problem", "")),
                      "answer": None if reference is None else str(reference), **rec}


ADAPTERS = ("lm-eval", "qwen-math", "search-and-learn", "seeds-yaml")


def import_external(fmt: str, source: Path, run_dir: Path, *, grader: str = "math",
                    verifications: Path | None = None, run_id: str | None = None,
                    timeout_s: float = 5.0) -> Path:
    """Import ``source`` written in format ``fmt`` (one of ``ADAPTERS``) into a new run directory."""
    if fmt not in ADAPTERS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(ADAPTERS)}")
    with GradingPool(grader, timeout_s=timeout_s) as pool:
        records: Iterable[tuple[str, dict]] = {
            "lm-eval": lambda: lm_eval_records(source, pool),
            "qwen-math": lambda: qwen_math_records(source),
            "search-and-learn": lambda: search_and_learn_records(source, pool),
            "seeds-yaml": lambda: seeds_yaml_records(source, verifications, pool),
        }[fmt]()
        return import_records(records, run_dir, run_id=run_id or source.stem, source=f"{fmt}:{source.name}",
                              verifier=fmt, verifier_kind="prm" if fmt == "search-and-learn" else "genrm")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("format", choices=ADAPTERS)
    ap.add_argument("source", type=Path, help="the tool's output file (or samples folder for seeds-yaml)")
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--grader", default="math", help="grader for formats graded here (math, gsm8k, toy)")
    ap.add_argument("--verifications", type=Path, help="seeds-yaml: the verifications folder")
    ap.add_argument("--run-id")
    args = ap.parse_args()
    print(import_external(args.format, args.source, args.run_dir, grader=args.grader,
                          verifications=args.verifications, run_id=args.run_id))


if __name__ == "__main__":
    main()
