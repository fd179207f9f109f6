"""Character-level tokenizer for the embedded toy world.

Vocabulary: special tokens, the two verdict tokens ``Yes``/``No`` (each ONE token), the PRM step
separator ``<step>``, newline and tab, and every printable ASCII character (0x20-0x7E), one token each.
Any other character maps to ``<unk>``; use :func:`unsupported_chars` / :func:`check_text` to reject such
text at config / prompt time instead of silently feeding ``<unk>`` to the models.

``build_tokenizer()`` returns a :class:`transformers.PreTrainedTokenizerFast`; ``save_tokenizer(dir)``
writes files loadable by ``AutoTokenizer.from_pretrained(dir)`` and by vLLM.

Token ids are fixed by construction (the table below), but code elsewhere must read them from the
tokenizer (``tok.convert_tokens_to_ids("Yes")``), never hard-code them.
"""

from __future__ import annotations

import string
from pathlib import Path

PAD_TOKEN = "<pad>"
BOS_TOKEN = "<bos>"
EOS_TOKEN = "<eos>"
UNK_TOKEN = "<unk>"
STEP_TOKEN = "<step>"  # PRM step separator: one label per occurrence
YES_TOKEN = "Yes"
NO_TOKEN = "No"

SPECIAL_TOKENS = [PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, UNK_TOKEN, STEP_TOKEN]
VERDICT_TOKENS = [YES_TOKEN, NO_TOKEN]
# Characters, one token each: newline, tab, then printable ASCII (space .. tilde).
CHARACTERS = ["\n", "\t"] + [chr(c) for c in range(0x20, 0x7F)]
SUPPORTED_CHARS = frozenset(CHARACTERS)

# Embedding rows in the shipped models (>= len(vocab); padded to a multiple of 8).
MODEL_VOCAB_SIZE = 112

assert set(string.printable) - {"\r", "\x0b", "\x0c"} <= SUPPORTED_CHARS


def vocab() -> dict[str, int]:
    toks = SPECIAL_TOKENS + VERDICT_TOKENS + CHARACTERS
    assert len(toks) == len(set(toks)) and len(toks) <= MODEL_VOCAB_SIZE
    return {t: i for i, t in enumerate(toks)}


class UnsupportedCharactersError(ValueError):
    """Raised when text contains characters the toy tokenizer cannot represent."""


def unsupported_chars(text: str) -> set[str]:
    """Characters of ``text`` outside the toy vocabulary (empty set when all are supported).

    Special-token strings such as ``<step>`` consist of supported characters, so they never show up here.
    """
    return {c for c in set(text) if c not in SUPPORTED_CHARS}


def check_text(text: str, what: str = "text") -> None:
    """Raise :class:`UnsupportedCharactersError` naming the offending characters, if any."""
    bad = unsupported_chars(text)
    if bad:
        shown = ", ".join(repr(c) for c in sorted(bad)[:20])
        raise UnsupportedCharactersError(
            f"{what} contains {len(bad)} character(s) outside the toy tokenizer's vocabulary "
            f"(printable ASCII, newline, tab): {shown}. The embedded toy models cannot read them; "
            f"use a real model/tokenizer or clean the dataset."
        )


def _backend():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from tokenizers import AddedToken

    v = vocab()
    tok = Tokenizer(models.WordLevel(vocab=v, unk_token=UNK_TOKEN))
    # every character is its own piece (including whitespace and newline)
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    # verdict tokens: ordinary (non-special) added tokens so they survive skip_special_tokens decoding
    tok.add_tokens([AddedToken(t, special=False, normalized=False, single_word=False) for t in VERDICT_TOKENS])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A",
        pair=f"{BOS_TOKEN} $A $B",
        special_tokens=[(BOS_TOKEN, v[BOS_TOKEN])],
    )
    return tok


def build_tokenizer():
    """The toy tokenizer as a ``transformers.PreTrainedTokenizerFast`` (adds ``<bos>`` to encodings)."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=_backend(),
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        additional_special_tokens=[STEP_TOKEN],
        model_max_length=1024,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    return tok


def save_tokenizer(path: str | Path):
    """Write the tokenizer files into ``path`` (created if needed); returns the tokenizer."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer()
    tok.save_pretrained(str(path))
    return tok


def verdict_token_ids(tok) -> tuple[int, int]:
    """(id of ``Yes``, id of ``No``), read from the tokenizer; each must be a single token."""
    ids = []
    for t in (YES_TOKEN, NO_TOKEN):
        enc = tok.encode(t, add_special_tokens=False)
        if len(enc) != 1:
            raise ValueError(f"verdict token {t!r} is not a single token: {enc}")
        ids.append(enc[0])
    return ids[0], ids[1]


def step_token_id(tok) -> int:
    enc = tok.encode(STEP_TOKEN, add_special_tokens=False)
    if len(enc) != 1:
        raise ValueError(f"step separator {STEP_TOKEN!r} is not a single token: {enc}")
    return enc[0]


if __name__ == "__main__":  # pragma: no cover
    import sys

    out = sys.argv[1] if len(sys.argv) > 1 else "toy_tokenizer"
    save_tokenizer(out)
    print(f"saved toy tokenizer to {out}")
