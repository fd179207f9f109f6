"""Train the embedded toy world from scratch: solver, verifier (GenRM + critic) and PRM.

    python -m toyworld.train                       # full recipe -> toyworld/checkpoints/{solver,verifier,prm}
    python -m toyworld.train --out /tmp/ck --scale 0.01   # a few steps only (smoke test)

Stages (deterministic seeds, torch on 2 CPU threads, bf16 autocast on CPU):

1. solver: ``LlamaForCausalLM`` on reference solutions of generated problems (levels 1-5), loss on the
   completion only.
2. sampling: the solver's OWN solutions to fresh training problems, sampled with vLLM (temperature 1.0),
   labelled exactly by ``toyworld.task.label_solution``.
3. verifier: initialised from the solver, fine-tuned on (a) GenRM targets -- the claimed answer, the
   reference solution (or, as context only, a wrong sample) as its own, the claim again, the match line,
   ``Correct?`` + Yes/No, balanced correct/wrong solutions -- and (b) critic targets (per-step critique
   lines + ``\\boxed{k}``).
4. PRM: ``LlamaForTokenClassification`` (2 classes, head ``score``) initialised from the solver's backbone,
   trained on the same sampled solutions with one label per ``<step>`` separator (1 = step correct).

Also writes the problem sets under ``data/toy/`` when ``--data`` is given (see data/toy/README.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path

import torch

from toyworld import formats, task
from toyworld.tokenizer import MODEL_VOCAB_SIZE, build_tokenizer, step_token_id

PKG_DIR = Path(__file__).resolve().parent
CHECKPOINTS = PKG_DIR / "checkpoints"
DATA_DIR = PKG_DIR.parent / "data" / "toy"

# test problem sets use these seeds; training never sees their problems
TEST_SEED = 1234
PB_SEED = 4321

ARCH = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=3, num_attention_heads=2)
TINY_ARCH = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=1)

RECIPE = dict(
    seed=0,
    solver_steps=1500,
    solver_batch=32,
    solver_lr=2e-3,
    level_weights={1: 1, 2: 1, 3: 1, 4: 1, 5: 1},
    sample_problems_per_level={1: 300, 2: 300, 3: 1500, 4: 1500, 5: 1500},  # wrong solutions come from hard levels
    sample_n=4,
    sample_temperature=1.0,
    verifier_steps=1000,
    verifier_batch=32,
    verifier_lr=1e-3,
    critic_fraction=0.3,
    # loss weight of the deciding part of a verifier target (GenRM: repeated claim, match line, verdict;
    # critic: the first wrong, or last, critique line + the boxed index): the few tokens that decide
    decision_weight=5.0,
    # of the GenRM targets, this fraction take as their chain a wrong sample of the solver's for the same
    # problem (when there is one) instead of the reference solution (genrm_example)
    wrong_chain_fraction=0.5,
    # Of the wrong examples the verifier and PRM see, this fraction are the solver's correct solutions with
    # one synthetic slip (task.corrupt). Tried at 0.5 against the verifier's habit of recomputing a step
    # instead of reading it: AUROC 0.577 / 0.598 (V=1 / 8) vs 0.586 / 0.658 without, so off by default.
    synthetic_wrong_fraction=0.0,
    prm_steps=500,
    prm_batch=32,
    prm_lr=1e-3,
)


THREADS = int(os.environ.get("TOYWORLD_THREADS", "2"))


def setup_torch(seed: int, threads: int | None = None) -> None:
    torch.set_num_threads(threads or THREADS)
    torch.set_flush_denormal(True)
    torch.manual_seed(seed)
    random.seed(seed)


def llama_config(arch: dict, tok, **extra):
    from transformers import LlamaConfig

    heads = arch["num_attention_heads"]
    assert arch["hidden_size"] == 64 * heads, "head_dim must be 64"
    return LlamaConfig(
        vocab_size=MODEL_VOCAB_SIZE,
        hidden_size=arch["hidden_size"],
        intermediate_size=arch["intermediate_size"],
        num_hidden_layers=arch["num_hidden_layers"],
        num_attention_heads=heads,
        num_key_value_heads=heads,
        head_dim=64,
        max_position_embeddings=512,
        rope_theta=10000.0,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
        **extra,
    )


def test_problem_texts() -> set[str]:
    texts = set()
    for lv in task.LEVELS:
        texts |= {p.text for p in task.generate(lv, 200, TEST_SEED)}
        texts |= {p.text for p in task.generate(lv, 200, PB_SEED)}
    return texts


def training_problems(rng: random.Random, exclude: set[str], weights: dict[int, float]):
    levels = sorted(weights)
    w = [weights[lv] for lv in levels]
    while True:
        lv = rng.choices(levels, w)[0]
        p = task.sample_problem(lv, rng)
        if p.text not in exclude:
            yield p


# --- batching -------------------------------------------------------------------------------------------
def encode_pair(tok, prompt: str, completion: str, eos: bool = True,
                weights: tuple[tuple[int, float], ...] = ((0, 1.0),)) -> tuple[list[int], list[int], list[float]]:
    """Token ids, labels (-100 on the prompt) and per-token loss weights. ``weights``: (character offset,
    weight) pairs in increasing offset, the first at 0; the completion's tokens from each offset on get that
    weight, the eos the last one. The tokenizer is character level, so cutting at line ends changes no token."""
    p = tok.encode(prompt, add_special_tokens=True)
    c, w = [], [1.0] * len(p)
    bounds = [o for o, _ in weights[1:]] + [len(completion)]
    for (start, weight), end in zip(weights, bounds):
        ids = tok.encode(completion[start:end], add_special_tokens=False)
        c += ids
        w += [weight] * len(ids)
    if eos:
        c.append(tok.eos_token_id)
        w.append(weights[-1][1])
    return p + c, [-100] * len(p) + c, w


def decision_start(completion: str) -> int:
    """Where a critic completion's deciding part starts: its last two lines, the first wrong (or the last)
    critique line and the boxed index."""
    return completion.rfind("\n", 0, completion.rfind("\n")) + 1


def collate(seqs: list[tuple], pad_id: int):
    """Right-padded (input_ids, labels, loss weights) tensors; a sequence without weights weighs 1."""
    n = max(len(s[0]) for s in seqs)
    n = -(-n // 32) * 32  # few distinct shapes
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    lab = torch.full((len(seqs), n), -100, dtype=torch.long)
    wts = torch.zeros((len(seqs), n), dtype=torch.float32)
    for i, (s, l, *w) in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        lab[i, : len(l)] = torch.tensor(l)
        wts[i, : len(s)] = torch.tensor(w[0]) if w else 1.0
    return ids, lab, wts


def length_bucketed(examples, batch: int, rng: random.Random, pad_id: int, pool: int = 8):
    """Collated batches from an endless iterator of encoded examples: each ``pool`` batches' worth is sorted
    by length and cut into batches, served in random order, so a batch holds sequences of similar length (with
    mixed levels and target kinds, 38% of a verifier batch was padding)."""
    while True:
        seqs = sorted((next(examples) for _ in range(batch * pool)), key=lambda x: len(x[0]))
        chunks = [seqs[i:i + batch] for i in range(0, len(seqs), batch)]
        rng.shuffle(chunks)
        for chunk in chunks:
            yield collate(chunk, pad_id)


def train_loop(model, batches, steps: int, lr: float, log_name: str, warmup: int = 50, log_every: int = 50):
    """AdamW + linear warmup + cosine decay; ``batches`` yields (input_ids, labels, loss weights); the loss is
    the weighted mean of the token losses (the plain mean when all weights are 1)."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = min(warmup, max(steps // 10, 1))

    def lr_at(s):
        if s < warmup:
            return (s + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(steps - warmup, 1))) * 0.95 + 0.05

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    losses = []
    t0 = time.time()
    for step in range(steps):
        ids, lab, wts = next(batches)
        # right padding + causal attention: pads never reach real tokens, so no mask is needed
        # (a padding mask would push SDPA off its fast causal kernel)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(input_ids=ids)
        logits = out.logits.float()
        if logits.dim() == 3 and logits.shape[-1] == model.config.vocab_size:  # causal LM: shift
            logits, lab, wts = logits[:, :-1], lab[:, 1:], wts[:, 1:]
        tok_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), lab.reshape(-1),
                                                     ignore_index=-100, reduction="none")
        w = wts.reshape(-1) * (lab.reshape(-1) != -100)
        loss = (tok_loss * w).sum() / w.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if (step + 1) % log_every == 0 or step == steps - 1:
            recent = sum(losses[-log_every:]) / len(losses[-log_every:])
            print(f"[{log_name}] step {step + 1}/{steps} loss {recent:.4f} ({time.time() - t0:.0f}s)", flush=True)
    model.eval()
    return losses


def save_model(model, tok, path: Path) -> None:
    from transformers import GenerationConfig

    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    model.save_pretrained(str(path), safe_serialization=True)
    tok.save_pretrained(str(path))
    GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        do_sample=True, temperature=1.0, max_new_tokens=160,
    ).save_pretrained(str(path))


# --- stage 1: solver ----------------------------------------------------------------------------------------
def train_solver(tok, arch, r, exclude, out: Path):
    from transformers import LlamaForCausalLM

    setup_torch(r["seed"])
    model = LlamaForCausalLM(llama_config(arch, tok))
    rng = random.Random(f"solver-data/{r['seed']}")
    probs = training_problems(rng, exclude, r["level_weights"])

    def batches():
        while True:
            seqs = []
            for _ in range(r["solver_batch"]):
                p = next(probs)
                seqs.append(encode_pair(tok, formats.solver_prompt(p.text), p.solution))
            yield collate(seqs, tok.pad_token_id)

    losses = train_loop(model, batches(), r["solver_steps"], r["solver_lr"], "solver")
    save_model(model, tok, out)
    return losses


# --- stage 2: sampling ------------------------------------------------------------------------------------
def make_llm(path, seed: int = 0, **kw):
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    from vllm import LLM

    return LLM(str(path), dtype="float32", max_model_len=512, seed=seed, enforce_eager=True, **kw)


def sample_solutions(solver_path: Path, problems: list[task.Problem], n: int, temperature: float, seed: int,
                     max_tokens: int = 160):
    """[(problem, solution_text)] with n samples per problem, from the saved solver via vLLM."""
    from vllm import SamplingParams

    llm = make_llm(solver_path, seed=seed)
    # per-request seeds are unsupported by the CPU backend; the engine seed makes runs reproducible
    sp = SamplingParams(n=n, temperature=temperature, max_tokens=max_tokens)
    outs = llm.generate([formats.solver_prompt(p.text) for p in problems], sp, use_tqdm=False)
    res = [(p, o.text) for p, out in zip(problems, outs) for o in out.outputs]
    del llm
    return res


def labelled_row(p: task.Problem, text: str) -> dict:
    return dict(problem=p, text=text.strip(), label=task.label_solution(p, text))


def labelled_samples(samples):
    return [labelled_row(p, text) for p, text in samples]


def balanced_draw(rng: random.Random, good: list[dict], bad: list[dict], synthetic: float) -> dict:
    """One training solution: correct or wrong with equal odds; a wrong one is, with probability
    ``synthetic`` (always, when no sampled solution is wrong), a correct one's problem with one slip
    (``task.corrupt``), else a sampled wrong one."""
    if rng.random() < 0.5 and good:
        return rng.choice(good)
    if (synthetic > 0 and rng.random() < synthetic) or not bad:  # no extra draw when off: same stream as before
        p = rng.choice(good)["problem"]
        return labelled_row(p, task.corrupt(p, rng))
    return rng.choice(bad)


# --- stage 3: verifier ------------------------------------------------------------------------------------
def genrm_example(row, chain: dict | None, decision_weight: float):
    """GenRM target (prompt, completion, loss weights): ``formats.genrm_target`` with the reference solution,
    or with ``chain``, a wrong sample of the solver's for the same problem, as the verifier's own steps.

    A wrong chain is context only (loss weight 0): from it the verifier learns that the match line compares
    the answer it wrote, not the one it believes, without learning to make the chain's mistakes. The repeated
    claim, the match line and the verdict weigh ``decision_weight``: at weight 1 the repeated claim copied the
    verifier's own answer (the nearest number) instead of the claim in 43% of critiques."""
    p, lab = row["problem"], row["label"]
    own = p.reference_steps() if chain is None else chain["label"].steps
    comp = formats.genrm_target(lab.answer, own)
    starts = [0]
    for line in comp.split("\n")[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    # lines: claim, own steps..., claim, match, verdict
    weights = ((0, 1.0), (starts[1], 1.0 if chain is None else 0.0), (starts[-3], decision_weight))
    return formats.genrm_prompt(p.text, row["text"]), comp, weights


def critic_example(row, decision_weight: float):
    """Critic target (prompt, completion, loss weights): critique lines up to the first wrong step, then
    ``\\boxed{k}``."""
    p, lab = row["problem"], row["label"]
    comp = formats.critic_target(task.critique_lines(p, lab.steps, lab.first_wrong), lab.first_wrong)
    return formats.critic_prompt(p.text, lab.steps), comp, ((0, 1.0), (decision_start(comp), decision_weight))


def train_verifier(tok, r, rows, solver_path: Path, out: Path):
    from transformers import LlamaForCausalLM

    setup_torch(r["seed"] + 1)
    model = LlamaForCausalLM.from_pretrained(str(solver_path), dtype=torch.float32)
    good = [x for x in rows if x["label"].correct and x["label"].first_wrong == -1]
    bad = [x for x in rows if not (x["label"].correct and x["label"].first_wrong == -1)]
    print(f"[verifier] {len(good)} correct / {len(bad)} wrong sampled solutions", flush=True)
    bad_by_problem: dict[str, list[dict]] = {}
    for x in bad:
        bad_by_problem.setdefault(x["problem"].text, []).append(x)
    rng = random.Random(f"verifier-data/{r['seed']}")

    def examples():
        while True:
            row = balanced_draw(rng, good, bad, r["synthetic_wrong_fraction"])
            if rng.random() < r["critic_fraction"]:
                prompt, comp, weights = critic_example(row, r["decision_weight"])
            else:
                wrong = [x for x in bad_by_problem.get(row["problem"].text, ()) if x is not row]
                chain = rng.choice(wrong) if wrong and rng.random() < r["wrong_chain_fraction"] else None
                prompt, comp, weights = genrm_example(row, chain, r["decision_weight"])
            yield encode_pair(tok, prompt, comp, weights=weights)

    batches = length_bucketed(examples(), r["verifier_batch"], rng, tok.pad_token_id)
    losses = train_loop(model, batches, r["verifier_steps"], r["verifier_lr"], "verifier")
    save_model(model, tok, out)
    return losses


# --- stage 4: PRM -------------------------------------------------------------------------------------------
def prm_encode(tok, problem: task.Problem, steps: list[str], step_correct: list[bool]):
    """Input ids and dense labels of one PRM example.

    The ``<step>`` separators carry the step labels that serving reads (1 iff this and all earlier steps are
    correct). Every character of a step is labelled too (1 iff all earlier steps are correct and the step so
    far is a prefix of the reference step): the dense signal lets the tiny model learn to notice the first
    wrong character, which it cannot learn from one label per step in the training budget.
    """
    ids = tok.encode(formats.prm_input(problem.text, steps), add_special_tokens=True)
    sep = step_token_id(tok)
    pos = [i for i, t in enumerate(ids) if t == sep]
    assert len(pos) == len(steps), (len(pos), len(steps))
    ref = problem.reference_steps()
    lab = [-100] * len(ids)
    start = len(tok.encode(formats.prm_input(problem.text, []), add_special_tokens=True))
    prefix_ok = True
    for k, (p, step, ok) in enumerate(zip(pos, steps, step_correct)):
        expected = ref[k] if k < len(ref) else ""
        chars = ids[start:p]
        if len(chars) == len(step):  # one token per character (always, bar a step spelling a special token)
            for j in range(len(step)):
                lab[start + j] = int(prefix_ok and expected.startswith(step[: j + 1]))
        lab[p] = int(ok)
        prefix_ok = prefix_ok and ok
        start = p + 1
    return ids, lab


def train_prm(tok, r, rows, solver_path: Path, out: Path):
    from transformers import LlamaForTokenClassification

    setup_torch(r["seed"] + 2)
    cfg = llama_config(
        _arch_of(solver_path), tok,
        num_labels=2, id2label={0: "wrong", 1: "correct"}, label2id={"wrong": 0, "correct": 1},
        classifier_dropout=0.0, architectures=["LlamaForTokenClassification"],
    )
    model = LlamaForTokenClassification(cfg)
    from transformers import LlamaForCausalLM

    base = LlamaForCausalLM.from_pretrained(str(solver_path), dtype=torch.float32)
    model.model.load_state_dict(base.model.state_dict())
    del base
    rng = random.Random(f"prm-data/{r['seed']}")
    good = [x for x in rows if x["label"].first_wrong == -1]
    bad = [x for x in rows if x["label"].first_wrong != -1]

    def examples():
        while True:
            row = balanced_draw(rng, good, bad, r["synthetic_wrong_fraction"])
            lab = row["label"]
            if lab.steps:
                yield prm_encode(tok, row["problem"], lab.steps, lab.step_correct)

    batches = length_bucketed(examples(), r["prm_batch"], rng, tok.pad_token_id)
    losses = train_loop(model, batches, r["prm_steps"], r["prm_lr"], "prm")
    save_model(model, tok, out)
    # vLLM's classify adapter wraps the causal-LM class and loads the head named `score`
    cfgp = out / "config.json"
    c = json.loads(cfgp.read_text())
    c["architectures"] = ["LlamaForCausalLM"]
    cfgp.write_text(json.dumps(c, indent=2))
    return losses


def _arch_of(path: Path) -> dict:
    c = json.loads((Path(path) / "config.json").read_text())
    return {k: c[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")}


# --- data sets ------------------------------------------------------------------------------------------------
def write_problem_sets(data_dir: Path, per_level: int = 100) -> Path:
    rows = task.make_problem_set(per_level, TEST_SEED, split="test")
    path = data_dir / "toy_test.jsonl"
    task.write_jsonl(rows, path)
    return path


def write_processbench(data_dir: Path, solver_path: Path, per_level: int, seed: int) -> None:
    problems = [p for lv in task.LEVELS for p in task.generate(lv, per_level, PB_SEED)]
    samples = sample_solutions(solver_path, problems, n=1, temperature=1.0, seed=seed)
    rows = []
    for i, (p, text) in enumerate(samples):
        lab = task.label_solution(p, text)
        rows.append(dict(id=None, generator="toyworld-solver", problem=p.text, steps=lab.steps,
                         final_answer_correct=lab.correct, label=lab.first_wrong, level=p.level))
    rng = random.Random(f"pb-split/{seed}")
    rng.shuffle(rows)
    half = len(rows) // 2
    out = []
    for split, part in (("tune", rows[:half]), ("test", rows[half:])):
        part = sorted(part, key=lambda x: (x["level"], x["problem"]))
        for i, x in enumerate(part):
            x["id"] = f"toy_{split}-{i}"
            x.pop("level")
        task.write_jsonl(part, data_dir / f"toy_processbench_{split}.jsonl")
        out += part
    task.write_jsonl(out, data_dir / "toy_processbench.jsonl")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(CHECKPOINTS), help="checkpoint root (solver/, verifier/, prm/)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply all step counts (smoke tests: 0.01)")
    ap.add_argument("--tiny", action="store_true", help="tiny architecture (tests)")
    ap.add_argument("--stages", default="solver,verifier,prm")
    ap.add_argument("--data", default=None, help="also write data/toy problem sets into this dir")
    ap.add_argument("--seed", type=int, default=RECIPE["seed"])
    ap.add_argument("--set", action="append", default=[], help="override a RECIPE entry, e.g. solver_steps=100")
    ap.add_argument("--samples-cache", default=None,
                    help="JSONL of the sampling stage: read if it exists, else written (retrain the verifier/PRM "
                         "without resampling; only valid for the same solver and sampling recipe)")
    args = ap.parse_args(argv)

    r = dict(RECIPE)
    r["seed"] = args.seed
    for kv in args.set:
        k, v = kv.split("=", 1)
        r[k] = type(RECIPE[k])(v) if not isinstance(RECIPE[k], dict) else {int(a): b for a, b in json.loads(v).items()}
    for k in ("solver_steps", "verifier_steps", "prm_steps"):
        r[k] = max(2, int(round(r[k] * args.scale)))
    if args.scale < 1:
        r["sample_problems_per_level"] = {lv: max(4, int(n * args.scale)) for lv, n in r["sample_problems_per_level"].items()}
    arch = TINY_ARCH if args.tiny else ARCH
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer()
    stages = set(args.stages.split(","))
    exclude = test_problem_texts()
    timings = {}
    t0 = time.time()
    if "solver" in stages:
        train_solver(tok, arch, r, exclude, out / "solver")
        timings["solver_s"] = round(time.time() - t0, 1)
    rows = None
    if stages & {"verifier", "prm"}:
        t1 = time.time()
        rng = random.Random(f"sample-problems/{r['seed']}")
        seen, problems = set(exclude), []
        for lv in task.LEVELS:
            k = 0
            while k < int(r["sample_problems_per_level"][lv]):
                p = task.sample_problem(lv, rng)
                if p.text not in seen:
                    seen.add(p.text)
                    problems.append(p)
                    k += 1
        cache = Path(args.samples_cache) if args.samples_cache else None
        if cache and cache.exists():
            by_text = {p.text: p for p in problems}
            cached = task.read_jsonl(cache)
            if any(x["problem"] not in by_text for x in cached):
                sys.exit(f"--samples-cache {cache}: its problems are not this recipe's sampling problems "
                         "(another seed or sample_problems_per_level); delete it to resample")
            samples = [(by_text[x["problem"]], x["text"]) for x in cached]
        else:
            samples = sample_solutions(out / "solver", problems, r["sample_n"], r["sample_temperature"], r["seed"])
            if cache:
                task.write_jsonl([dict(problem=p.text, text=t) for p, t in samples], cache)
        rows = labelled_samples(samples)
        acc = sum(x["label"].correct for x in rows) / len(rows)
        print(f"[sample] {len(rows)} solutions, accuracy {acc:.3f}", flush=True)
        timings["sample_s"] = round(time.time() - t1, 1)
    if "verifier" in stages:
        t1 = time.time()
        train_verifier(tok, r, rows, out / "solver", out / "verifier")
        timings["verifier_s"] = round(time.time() - t1, 1)
    if "prm" in stages:
        t1 = time.time()
        train_prm(tok, r, rows, out / "solver", out / "prm")
        timings["prm_s"] = round(time.time() - t1, 1)
    if args.data:
        d = Path(args.data)
        write_problem_sets(d)
        write_processbench(d, out / "solver", per_level=100, seed=r["seed"] + 7)
    timings["total_s"] = round(time.time() - t0, 1)
    meta_path = out / "train_meta.json"
    if meta_path.exists() and stages != {"solver", "verifier", "prm"}:  # partial rerun: keep earlier stages' times
        timings = {**json.loads(meta_path.read_text()).get("timings", {}), **timings}
    meta = dict(recipe=r, arch=arch, timings=timings, torch=torch.__version__, threads=THREADS, stages=sorted(stages))
    meta_path.write_text(json.dumps(meta, indent=2))
    print(json.dumps(timings), flush=True)


if __name__ == "__main__":
    main()
