"""A few training steps of the toy recipe make the loss go down (tiny config, no vLLM)."""

import random

import torch

from toyworld import formats, task
from toyworld.tokenizer import build_tokenizer, step_token_id
from toyworld.train import (TINY_ARCH, collate, encode_pair, genrm_example, labelled_row, length_bucketed, llama_config,
                            prm_encode, setup_torch, train_loop)


def _solver_batches(tok, bs=16):
    rng = random.Random(0)
    while True:
        seqs = []
        for _ in range(bs):
            p = task.sample_problem(rng.choice([1, 2]), rng)
            seqs.append(encode_pair(tok, formats.solver_prompt(p.text), p.solution))
        yield collate(seqs, tok.pad_token_id)


def test_solver_loss_goes_down():
    from transformers import LlamaForCausalLM

    setup_torch(0)
    tok = build_tokenizer()
    model = LlamaForCausalLM(llama_config(TINY_ARCH, tok))
    losses = train_loop(model, _solver_batches(tok), steps=40, lr=3e-3, log_name="test", warmup=5, log_every=1000)
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5


def test_prm_loss_goes_down():
    from transformers import LlamaForTokenClassification

    setup_torch(0)
    tok = build_tokenizer()
    model = LlamaForTokenClassification(llama_config(TINY_ARCH, tok, num_labels=2))
    rng = random.Random(1)

    def batches():  # one fixed batch: the loss on it must go down (the labels are exact, the data tiny)
        seqs = []
        for _ in range(16):
            p = task.sample_problem(2, rng)
            steps = p.reference_steps()
            if rng.random() < 0.5:  # corrupt one step: labels from the exact labeller
                i = rng.randrange(len(steps))
                steps[i] = steps[i][:-1] + str((int(steps[i][-1]) + 1) % 10)
            lab = task.label_solution(p, "\n".join(steps))
            seqs.append(prm_encode(tok, p, lab.steps, lab.step_correct))
        batch = collate(seqs, tok.pad_token_id)
        while True:
            yield batch

    losses = train_loop(model, batches(), steps=30, lr=3e-3, log_name="test", warmup=5, log_every=1000)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    assert all(torch.isfinite(torch.tensor(losses)))


def test_prm_labels_mark_the_first_wrong_character_and_every_separator():
    tok = build_tokenizer()
    p = task.parse_problem("Start with 12. Add 5. Multiply by 3.")
    steps = ["12+5=17", "17*3=41", "Answer: 41"]  # 17*3 is 51: the second step goes wrong at its 6th character
    lab = task.label_solution(p, "\n".join(steps))
    ids, labels = prm_encode(tok, p, lab.steps, lab.step_correct)
    sep = step_token_id(tok)
    assert [l for t, l in zip(ids, labels) if t == sep] == [1, 0, 0]
    text_labels = [l for t, l in zip(ids, labels) if l != -100 and t != sep]
    assert text_labels == [1] * 7 + [1] * 5 + [0, 0] + [0] * 10


def test_genrm_verdict_compares_the_chain_with_the_claim_and_a_wrong_chain_is_context_only():
    tok = build_tokenizer()
    p = task.parse_problem("Start with 12. Add 5. Multiply by 3.")  # 12+5=17, 17*3=51
    right = labelled_row(p, p.solution)
    wrong = labelled_row(p, "12+5=17\n17*3=41\nAnswer: 41")
    other_wrong = labelled_row(p, "12+5=18\n18*3=54\nAnswer: 54")
    cases = [  # (solution, chain, verdict): Yes iff the chain's answer is the claimed one
        (right, None, formats.YES), (wrong, None, formats.NO), (right, wrong, formats.NO),
        (wrong, labelled_row(p, wrong["text"]), formats.YES), (wrong, other_wrong, formats.NO),
    ]
    for row, chain, verdict in cases:
        prompt, comp, weights = genrm_example(row, chain, decision_weight=5.0)
        assert prompt == formats.genrm_prompt(p.text, row["text"])
        assert comp.startswith(f"{formats.CLAIM_PREFIX}{row['label'].answer}\n") and comp.endswith(verdict)
        ids, labels, w = encode_pair(tok, prompt, comp, weights=weights)
        assert len(ids) == len(labels) == len(w) and ids[-1] == tok.eos_token_id
        w = w[labels.count(-100):]  # the completion's weights, one per character (+ eos)
        claim, *chain_lines, _, _, _ = comp.split("\n")
        n_claim, n_chain = len(claim) + 1, len("\n".join(chain_lines)) + 1
        assert set(w[:n_claim]) == {1.0}
        assert set(w[n_claim:n_claim + n_chain]) == {1.0 if chain is None else 0.0}  # a wrong chain is context only
        assert set(w[n_claim + n_chain:]) == {5.0}  # repeated claim, match line, verdict, eos


def test_length_bucketed_batches_serve_every_example_once_per_pool_grouped_by_length():
    rng = random.Random(0)
    lengths = [rng.randrange(1, 300) for _ in range(4 * 8 * 2)]
    examples = iter(([i] * n, [i] * n) for i, n in enumerate(lengths))  # token ids carry the example's index
    batches = length_bucketed(examples, batch=4, rng=random.Random(1), pad_id=-1, pool=8)
    for pool in range(2):
        seen, spans = [], []
        for _ in range(8):
            ids, labels, weights = next(batches)
            assert ids.shape[0] == 4 and ids.shape[1] % 32 == 0
            idx = [int(row[0]) for row in ids]
            seen += idx
            spans.append((min(lengths[i] for i in idx), max(lengths[i] for i in idx)))
            assert all((weights[r] == 1).sum() == lengths[i] for r, i in enumerate(idx))
        assert sorted(seen) == list(range(32 * pool, 32 * (pool + 1)))  # each example of the pool exactly once
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # batches cut a length-sorted pool
