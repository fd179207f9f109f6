"""Tiny random-weight models for tests and benchmarks (no download, built in seconds).

``build_tiny_llama(path)`` writes a Llama checkpoint that vLLM's CPU build serves (head_dim 64) with the
embedded toy tokenizer, so every stage of the pipeline runs for real on a laptop. Its outputs are noise;
use the trained checkpoints under ``toyworld/checkpoints`` for anything that needs sensible text.
"""
from __future__ import annotations

from pathlib import Path


def build_tiny_llama(path: str | Path, *, seed: int = 0, hidden_size: int = 128, layers: int = 2,
                     max_position_embeddings: int = 2048) -> Path:
    """Write a random-weight float32 Llama (head_dim 64) plus the toy tokenizer into ``path``; return it."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from toyworld.tokenizer import MODEL_VOCAB_SIZE, save_tokenizer

    path = Path(path)
    tok = save_tokenizer(path)
    config = LlamaConfig(
        vocab_size=MODEL_VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=hidden_size // 64,  # vLLM's CPU attention needs head_dim 64
        num_key_value_heads=hidden_size // 64,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
        dtype="float32",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(path))
    GenerationConfig(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                     pad_token_id=tok.pad_token_id).save_pretrained(str(path))
    return path
