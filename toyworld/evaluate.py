"""Measure the shipped toy models (the numbers in toyworld/MODEL_CARD.md).

    python -m toyworld.evaluate                     # all of it, seed 0 -> toyworld/checkpoints/metrics.json
    python -m toyworld.evaluate --parts solver --k 8 --limit 20   # quick look

Solver: 64 samples per problem of ``data/toy/toy_test.jsonl`` (temperature 1.0) -> per level pass@1 (mean
per-sample accuracy), maj@k and pass@k for k in 1, 4, 8, 16, 32, both exact expectations over k-subsets of
the 64 samples (the analysis stage's estimators; majority ties split).
Verifier (GenRM): on the first N=16 solver samples of each problem of the best-of-N levels, V=8 sampled
critiques each; P(Yes) is read at the verdict position (normalised over Yes/No). AUROC of P(Yes) (V=1 and
mean of V=8) vs correctness; best-of-8 accuracy with a solution's score the mean P(Yes) of V = 1, 2, 4, 8 of
its critiques, by the analysis stage's estimator (expected over random 8-subsets of the 16 candidates and
V-subsets of the critiques), beside majority@8, and the paired bootstrap CI over problems of V=8 - V=1.
Critic and PRM: ProcessBench F1 on ``data/toy/toy_processbench_test.jsonl`` (PRM threshold tuned on the
tune split); PRM best-of-8 (min step score) on the same candidates.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np

from analysis import bootstrap, estimators, processbench, verifier_quality
from toyworld import formats, task
from toyworld.prm import first_error, step_scores_from_vllm
from toyworld.train import CHECKPOINTS, DATA_DIR

KS = (1, 4, 8, 16, 32)
CRITIQUE_MAX_TOKENS = 288  # a level-5 critique is <= ~240 tokens; its prompt + 288 stays within max_model_len 512


# --- metrics (the analysis package's implementations, wrapped for plain lists) ---------------------------
def auroc(scores: list[float], labels: list[bool]) -> float:
    return verifier_quality.auroc(np.asarray(scores, float), np.asarray(labels, bool))


def paired_bootstrap(a: list[float], b: list[float], iters: int = 2000, seed: int = 0) -> dict:
    """Mean of b - a over items with a percentile 95% CI (paired bootstrap over items)."""
    counts = bootstrap.resample_counts(len(a), iters, seed)
    iv = bootstrap.paired_difference(np.asarray(b, float)[:, None], np.asarray(a, float)[:, None], counts)
    return dict(diff=float(iv.mean[0]), lo=float(iv.lo[0]), hi=float(iv.hi[0]), n=len(a))


def processbench_f1(preds: list[int | None], labels: list[int]) -> dict:
    """ProcessBench accuracies and F1 of one subset (an unparsed prediction, None, counts wrong)."""
    s = processbench.processbench_report(["toy"] * len(preds), labels, preds).subsets[0]
    return dict(acc_erroneous=s.acc_erroneous, acc_correct=s.acc_correct, f1=s.f1, n=len(preds))


def make_llm(path, seed: int, **kw):
    from toyworld.train import make_llm as _make

    return _make(path, seed=seed, **kw)


def free(llm) -> None:
    try:
        llm.llm_engine.engine_core.shutdown()
    except Exception:
        pass
    del llm
    gc.collect()


def verdict_p_yes(token_ids, logprobs, tok) -> float | None:
    """P(Yes) (normalised over Yes/No) at the verdict position of a sampled critique, None if absent."""
    yes_id, no_id = tok.convert_tokens_to_ids(formats.YES), tok.convert_tokens_to_ids(formats.NO)
    cue = tok.encode(formats.VERDICT_CUE, add_special_tokens=False)
    ids = list(token_ids)
    for j in range(len(cue), len(ids)):
        if ids[j - len(cue):j] == cue and logprobs is not None:
            lp = logprobs[j]
            py = math.exp(lp[yes_id].logprob) if yes_id in lp else 0.0
            pn = math.exp(lp[no_id].logprob) if no_id in lp else 0.0
            return py / (py + pn) if py + pn > 0 else 0.5
    return None


def p_yes_after_cue(llm, prompts: list[str], tok) -> list[float]:
    """P(Yes) of a one-token continuation of prompts that end with the verdict cue."""
    from vllm import SamplingParams

    yes_id, no_id = tok.convert_tokens_to_ids(formats.YES), tok.convert_tokens_to_ids(formats.NO)
    outs = llm.generate(prompts, SamplingParams(max_tokens=1, temperature=1.0, logprobs=5), use_tqdm=False)
    res = []
    for o in outs:
        lp = o.outputs[0].logprobs[0]
        py = math.exp(lp[yes_id].logprob) if yes_id in lp else 0.0
        pn = math.exp(lp[no_id].logprob) if no_id in lp else 0.0
        res.append(py / (py + pn) if py + pn > 0 else 0.5)
    return res


def greedy_accuracy(llm, rows: list[dict]) -> dict[int, float]:
    """Per-level accuracy of greedy (temperature 0) solutions; deterministic, used by the tests."""
    from vllm import SamplingParams

    outs = llm.generate([formats.solver_prompt(r["problem"]) for r in rows],
                        SamplingParams(temperature=0.0, max_tokens=160), use_tqdm=False)
    acc: dict[int, list[bool]] = {}
    for r, o in zip(rows, outs):
        acc.setdefault(r["level"], []).append(formats.extract_answer(o.outputs[0].text) == r["answer"])
    return {lv: sum(v) / len(v) for lv, v in sorted(acc.items())}


def critique_diagnostics(claims: list[str | None], answers: list[str], critiques: list[list[str]]) -> dict:
    """Where a GenRM critique goes wrong, for solutions claiming ``claims`` (None: no answer) of problems
    with reference ``answers``: how often the verifier's own answer is right, how often it repeats the claim
    faithfully, and how often its verdict follows its own comparison (Yes iff the answer it wrote equals the
    claim it repeated). The verdict can only be as good as the first of these once the other two are ~1."""
    own_right = copied = follows = n = 0
    for claim, answer, texts in zip(claims, answers, critiques):
        for text in texts:
            n += 1
            own, written = formats.extract_answer(text), formats.critique_claims(text)
            repeated = written[1] if len(written) > 1 else None
            said = formats.parse_verdict(text)
            own_right += own == answer
            copied += repeated == formats.claim_value(claim)
            follows += said is not None and said == (own is not None and own == repeated)
    return dict(own_answer_correct=own_right / max(n, 1), claim_repeated_faithfully=copied / max(n, 1),
                verdict_follows_own_comparison=follows / max(n, 1), n_critiques=n)


def candidate_grid(items: list, per_item: list[list[float]] | None = None) -> tuple[np.ndarray, ...]:
    """(values (P, N, M), present, correct (P, N), valid, classes) from candidate items ``(sample, j)`` and
    each item's list of M scores (none: M = 0), one row per problem in order of appearance: the estimators'
    layout."""
    if per_item is None:
        per_item = [[]] * len(items)
    rows: dict[str, list[int]] = {}
    for idx, (s, _) in enumerate(items):
        rows.setdefault(s["row"]["unique_id"], []).append(idx)
    n, m = max(len(ix) for ix in rows.values()), max(len(x) for x in per_item)
    values = np.zeros((len(rows), n, m))
    present = np.zeros((len(rows), n, m), dtype=bool)
    correct = np.zeros((len(rows), n), dtype=bool)
    valid = np.zeros((len(rows), n), dtype=bool)
    classes = np.full((len(rows), n), -1)
    for p, ix in enumerate(rows.values()):
        ids: dict[str, int] = {}
        for c, idx in enumerate(ix):
            s, j = items[idx]
            x = per_item[idx]
            values[p, c, :len(x)], present[p, c, :len(x)] = x, True
            correct[p, c], valid[p, c] = s["labels"][j].correct, True
            answer = s["labels"][j].answer
            classes[p, c] = -1 if answer is None else ids.setdefault(answer, len(ids))
    return values, present, correct, valid, classes


def best_of_n_table(items: list, scores: list[list[float]], k: int, v: int, seed: int) -> dict:
    """Best-of-k over the candidates with a solution's score the mean P(Yes) of a random V-subset of its
    verifications, for V = 1, 2, 4, ..., v: the analysis stage's estimator (expected over candidate and
    verification subsets, ties split), beside majority, a random candidate and the oracle at the same k;
    V=v minus V=1 with a paired bootstrap CI over problems."""
    values, present, correct, valid, classes = candidate_grid(items, scores)
    vs = sorted({1, v} | {x for x in (2, 4) if x < v})
    bon = estimators.best_of_n_at_v(values, present, correct, valid, [k], vs, np.random.default_rng(seed),
                                    draws=64).value[:, :, 0]
    n, c = valid.sum(axis=1), correct.sum(axis=1)
    res = {f"bon_v{x}": float(bon[:, i].mean()) for i, x in enumerate(vs)}
    res.update(bon_k=k, bon_random=float((c / n).mean()),
               bon_majority=float(estimators.majority_vote(classes, correct, valid, [k]).value[:, 0].mean()),
               bon_oracle=float(estimators.pass_at_k(n, c, [k]).value[:, 0].mean()), n_problems=len(n))
    res[f"bon_v{v}_minus_v1"] = paired_bootstrap(list(bon[:, 0]), list(bon[:, -1]), seed=seed)
    return res


def checkpoint_digests(ckpt: Path) -> dict[str, str]:
    """sha256 of each model's weights, so recorded metrics can be tied to the files they measured."""
    return {name: hashlib.sha256((ckpt / name / "model.safetensors").read_bytes()).hexdigest()
            for name in ("solver", "verifier", "prm") if (ckpt / name / "model.safetensors").exists()}


# --- parts ----------------------------------------------------------------------------------------------------
def eval_solver(ckpt: Path, rows: list[dict], k: int, temperature: float, seed: int) -> tuple[dict, list]:
    from vllm import SamplingParams

    llm = make_llm(ckpt / "solver", seed)
    t = time.time()
    outs = llm.generate([formats.solver_prompt(r["problem"]) for r in rows],
                        SamplingParams(n=k, temperature=temperature, max_tokens=160), use_tqdm=False)
    gen_s = time.time() - t
    greedy = greedy_accuracy(llm, rows)
    free(llm)
    samples = []
    for r, out in zip(rows, outs):
        p = task.parse_problem(r["problem"])
        texts = [o.text.strip() for o in out.outputs]
        labs = [task.label_solution(p, x) for x in texts]
        samples.append(dict(row=r, texts=texts, labels=labs))
    per_level = {}
    for lv in sorted({r["level"] for r in rows}):
        ss = [s for s in samples if s["row"]["level"] == lv]
        _, _, correct, valid, classes = candidate_grid([(s, j) for s in ss for j in range(k)])
        ks = [x for x in KS if x <= k]
        n, c = valid.sum(axis=1), correct.sum(axis=1)
        # exact expectations over k-subsets of the samples: a single draw of maj@32 from 32 samples would
        # swing the pass@32 - maj@32 gap by several points between seeds
        pass_k = estimators.pass_at_k(n, c, ks).value.mean(axis=0)
        maj_k = estimators.majority_vote(classes, correct, valid, ks).value.mean(axis=0)
        m = dict(n_problems=len(ss), pass1=float((c / n).mean()))
        for i, kk in enumerate(ks):
            m[f"pass@{kk}"], m[f"maj@{kk}"] = float(pass_k[i]), float(maj_k[i])
        m["step_format_ok"] = sum(all(task._STEP_RE.match(x) or task._ANSWER_RE.match(x) for x in l.steps)
                                  for s in ss for l in s["labels"]) / (len(ss) * k)
        m["greedy"] = greedy[lv]
        per_level[lv] = m
    return dict(per_level=per_level, k=k, temperature=temperature, generate_s=round(gen_s, 1)), samples


def eval_verifier(ckpt: Path, samples: list, levels: list[int], n_cand: int, v: int, temperature: float,
                  seed: int, pb_test: list[dict] | None, bon_k: int = 8) -> tuple[dict, dict]:
    from vllm import SamplingParams

    llm = make_llm(ckpt / "verifier", seed)
    tok = llm.get_tokenizer()
    items = [(s, j) for s in samples if s["row"]["level"] in levels for j in range(min(n_cand, len(s["texts"])))]
    prompts = [formats.genrm_prompt(s["row"]["problem"], s["texts"][j]) for s, j in items]
    t = time.time()
    sp = SamplingParams(n=v, temperature=temperature, max_tokens=CRITIQUE_MAX_TOKENS, logprobs=5)
    outs = llm.generate(prompts, sp, use_tqdm=False)
    scores, redo, agree, texts = [], [], [], []
    for i, out in enumerate(outs):
        row = []
        for q, o in enumerate(out.outputs):
            p = verdict_p_yes(o.token_ids, o.logprobs, tok)
            said = formats.parse_verdict(o.text)
            if p is not None and said is not None:
                agree.append((p > 0.5) == said)
            if p is None:
                redo.append((i, q, prompts[i] + formats.with_verdict_cue(o.text)))
            row.append(p)
        scores.append(row)
        texts.append([o.text for o in out.outputs])
    if redo:
        for (i, q, _), p in zip(redo, p_yes_after_cue(llm, [x[2] for x in redo], tok)):
            scores[i][q] = p
    verify_s = time.time() - t
    correct = [s["labels"][j].correct for s, j in items]
    res = dict(levels=levels, n_candidates=n_cand, v=v, n_solutions=len(items), temperature=temperature,
               frac_wrong_format=len(redo) / (len(items) * v), solution_accuracy=sum(correct) / len(correct),
               verify_s=round(verify_s, 1), p_yes_agrees_with_sampled_verdict=sum(agree) / max(len(agree), 1))
    res["auroc_v1"] = auroc([x[0] for x in scores], correct)
    res[f"auroc_v{v}"] = auroc([sum(x) / len(x) for x in scores], correct)
    res.update(best_of_n_table(items, scores, bon_k, v, seed))
    res["critiques"] = critique_diagnostics([s["labels"][j].answer for s, j in items],
                                            [s["row"]["answer"] for s, _ in items], texts)
    # critic mode on ProcessBench-format data (greedy)
    if pb_test:
        outs = llm.generate([formats.critic_prompt(r["problem"], r["steps"]) for r in pb_test],
                            SamplingParams(temperature=0.0, max_tokens=CRITIQUE_MAX_TOKENS), use_tqdm=False)
        preds = [formats.parse_critic(o.outputs[0].text) for o in outs]
        res["critic_processbench"] = processbench_f1(preds, [r["label"] for r in pb_test])
    free(llm)
    return res, dict(items=items, scores=scores)


def eval_prm(ckpt: Path, pb_tune: list[dict], pb_test: list[dict], samples: list, levels: list[int],
             n_cand: int, bon_k: int = 8) -> dict:
    from vllm import LLM
    from vllm.config import PoolerConfig

    llm = LLM(str(ckpt / "prm"), runner="pooling", convert="classify",
              pooler_config=PoolerConfig(task="token_classify"), dtype="float32", max_model_len=512,
              enforce_eager=True)
    tok = llm.get_tokenizer()

    def score(problems_steps):
        outs = llm.encode([formats.prm_input(p, st) for p, st in problems_steps], pooling_task="token_classify",
                          use_tqdm=False)
        return [step_scores_from_vllm(o, tok) for o in outs]

    tune = score([(r["problem"], r["steps"]) for r in pb_tune])
    test = score([(r["problem"], r["steps"]) for r in pb_test])
    grid = [i / 100 for i in range(1, 100)]
    best = max(grid, key=lambda th: processbench_f1([first_error(s, th) for s in tune],
                                                    [r["label"] for r in pb_tune])["f1"])
    res = dict(threshold=best,
               processbench_tune=processbench_f1([first_error(s, best) for s in tune], [r["label"] for r in pb_tune]),
               processbench_test=processbench_f1([first_error(s, best) for s in test], [r["label"] for r in pb_test]))
    # step-level AUROC on the test split (steps up to and including the first error)
    ss, yy = [], []
    for s, r in zip(test, pb_test):
        last = len(s) - 1 if r["label"] == -1 else r["label"]
        for i in range(last + 1):
            ss.append(s[i])
            yy.append(r["label"] == -1 or i < r["label"])
    res["step_auroc_test"] = auroc(ss, yy)
    if samples:
        items = [(s, j) for s in samples if s["row"]["level"] in levels for j in range(min(n_cand, len(s["texts"])))]
        sc = score([(s["row"]["problem"], s["labels"][j].steps or [""]) for s, j in items])
        agg = [min(x) if x else 0.0 for x in sc]
        correct = [s["labels"][j].correct for s, j in items]
        res["auroc_min_score"] = auroc(agg, correct)
        values, _, ok, valid, _ = candidate_grid(items, [[x] for x in agg])
        res["bon_min_score"] = float(estimators.best_of_n(values[:, :, 0], ok, valid, [bon_k])[:, 0].mean())
        res["bon_k"] = bon_k
    free(llm)
    return res


def markdown(m: dict) -> str:
    out = []
    if "solver" in m:
        s = m["solver"]
        k = s["k"]
        ks = [x for x in KS if x <= k]
        out.append(f"Solver, temperature {s['temperature']}, {k} samples per problem:\n")
        out.append("| level | problems | greedy | pass@1 | " + " | ".join(f"maj@{x}" for x in ks[1:]) + " | "
                   + " | ".join(f"pass@{x}" for x in ks[1:]) + " |")
        out.append("|---" * (4 + 2 * (len(ks) - 1)) + "|")
        for lv, r in s["per_level"].items():
            out.append(f"| {lv} | {r['n_problems']} | {r['greedy']:.3f} | {r['pass1']:.3f} | "
                       + " | ".join(f"{r[f'maj@{x}']:.3f}" for x in ks[1:]) + " | "
                       + " | ".join(f"{r[f'pass@{x}']:.3f}" for x in ks[1:]) + " |")
    if "verifier" in m:
        v = m["verifier"]
        V = v["v"]
        b = v[f"bon_v{V}_minus_v1"]
        out.append(f"\nVerifier (levels {v['levels']}, {v['n_problems']} problems x N={v['n_candidates']} solutions, "
                   f"solution accuracy {v['solution_accuracy']:.3f}):\n")
        out.append(f"- AUROC of P(Yes) vs correctness: V=1 {v['auroc_v1']:.3f}; mean of V={V} {v[f'auroc_v{V}']:.3f}")
        by_v = ", ".join(f"V={x} {v[f'bon_v{x}']:.3f}" for x in sorted({1, 2, 4, V}) if f"bon_v{x}" in v)
        out.append(f"- best-of-{v['bon_k']} of the {v['n_candidates']}: {by_v} (V={V} - V=1 {b['diff']:+.3f}, "
                   f"paired bootstrap 95% CI [{b['lo']:+.3f}, {b['hi']:+.3f}]); majority {v['bon_majority']:.3f}, "
                   f"random candidate {v['bon_random']:.3f}, oracle {v['bon_oracle']:.3f}")
        if "critic_processbench" in v:
            c = v["critic_processbench"]
            out.append(f"- critic mode on toy ProcessBench test: F1 {c['f1']:.3f} (erroneous {c['acc_erroneous']:.3f}, "
                       f"correct {c['acc_correct']:.3f}, n={c['n']})")
        d = v["critiques"]
        out.append(f"- its {d['n_critiques']} critiques: own answer right {d['own_answer_correct']:.3f}, claim repeated "
                   f"faithfully {d['claim_repeated_faithfully']:.3f}, verdict follows its own comparison "
                   f"{d['verdict_follows_own_comparison']:.3f}")
    if "prm" in m:
        p = m["prm"]
        t = p["processbench_test"]
        out.append(f"\nPRM: toy ProcessBench test F1 {t['f1']:.3f} (erroneous {t['acc_erroneous']:.3f}, correct "
                   f"{t['acc_correct']:.3f}, threshold {p['threshold']:.2f} tuned on the tune split); "
                   f"step AUROC {p['step_auroc_test']:.3f}")
        if "bon_min_score" in p:
            out.append(f"- best-of-{p['bon_k']} by min step score: {p['bon_min_score']:.3f}; AUROC of min score "
                       f"{p['auroc_min_score']:.3f}")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default=str(CHECKPOINTS))
    ap.add_argument("--data", default=str(DATA_DIR / "toy_test.jsonl"))
    ap.add_argument("--pb", default=str(DATA_DIR / "toy_processbench"), help="prefix of the _tune/_test files")
    ap.add_argument("--parts", default="solver,verifier,prm")
    ap.add_argument("--k", type=int, default=64, help="solver samples per problem")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="problems per level")
    ap.add_argument("--bon-levels", default="3,4,5")
    ap.add_argument("--n-cand", type=int, default=16, help="solver samples per problem that are verified")
    ap.add_argument("--bon-k", type=int, default=8, help="best-of-k over random k-subsets of those candidates")
    ap.add_argument("--v", type=int, default=8)
    ap.add_argument("--verifier-temperature", type=float, default=0.7)
    ap.add_argument("--out", default=None, help="metrics JSON (default CKPT/metrics.json for a full run)")
    args = ap.parse_args(argv)

    ckpt = Path(args.ckpt)
    parts = set(args.parts.split(","))
    rows = task.read_jsonl(args.data)
    if args.limit:
        seen = Counter()
        rows = [r for r in rows if (seen.update([r["level"]]) or seen[r["level"]] <= args.limit)]
    levels = [int(x) for x in args.bon_levels.split(",")]
    pb_tune = pb_test = None
    if Path(args.pb + "_test.jsonl").exists():
        pb_tune, pb_test = task.read_jsonl(args.pb + "_tune.jsonl"), task.read_jsonl(args.pb + "_test.jsonl")
    t0 = time.time()
    metrics: dict = dict(command="python -m toyworld.evaluate " + " ".join(argv or []), seed=args.seed,
                         data=Path(args.data).name, checkpoints=checkpoint_digests(ckpt))
    samples = None
    if parts & {"solver", "verifier", "prm"}:
        metrics["solver"], samples = eval_solver(ckpt, rows, args.k, args.temperature, args.seed)
        print(markdown(dict(solver=metrics["solver"])), flush=True)
    if "verifier" in parts:
        metrics["verifier"], _ = eval_verifier(ckpt, samples, levels, args.n_cand, args.v, args.verifier_temperature,
                                               args.seed, pb_test, args.bon_k)
    if "prm" in parts and pb_test:
        metrics["prm"] = eval_prm(ckpt, pb_tune, pb_test, samples, levels, args.n_cand, args.bon_k)
    metrics["eval_s"] = round(time.time() - t0, 1)
    print(markdown(metrics), flush=True)
    out = args.out or (str(ckpt / "metrics.json") if parts == {"solver", "verifier", "prm"} and not args.limit else None)
    if out:
        Path(out).write_text(json.dumps(metrics, indent=2, default=str))
        print(f"wrote {out}")
    return metrics


if __name__ == "__main__":
    main()
