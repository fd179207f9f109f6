"""A few training steps of the toy recipe make the loss go down (tiny config, no vLLM)."""

import random

import torch

from toyworld import formats, task
from toyworld.tokenizer import build_tokenizer, step_token_id
from toyworld.train import TINY_ARCH, collate, encode_pair, llama_config, prm_encode, setup_torch, train_loop


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
