"""Reading verifier outputs: verdicts, critic indices, P(Yes), and where the verdict token sits.

Everything here is pure and never guesses: text without a recognisable verdict or index is reported
as such (``no_verdict`` / ``unparsed``, see ``schema.PARSE_STATUSES``) and the caller decides what to
do (the pipeline asks for one more token after the prompt's verdict cue; ProcessBench counts an
unparsed critic as wrong).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: parsing needs no prompt registry (nor toyworld) at runtime
    from pipeline.prompts import Prompt

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_INT = re.compile(r"[+-]?\d+")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, braces balanced.

    Returns None when there is none or when the last one is never closed (a truncated generation).
    Linear in the text length; nested braces inside the box are kept as written.
    """
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        depth = 1
        for i in range(start, len(text)):
            c = text[i]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i]
        # unclosed: an earlier box may still be complete, keep looking backwards
    return None


def parse_verdict(prompt: Prompt, text: str) -> tuple[bool | None, str]:
    """The Yes/No verdict a verifier wrote after the prompt's verdict cue.

    Looks at the last occurrence of ``prompt.verdict_cue`` (whitespace-trimmed) in ``text`` and reads
    the first word after it, allowing surrounding whitespace and markdown emphasis (``**Yes**``);
    the word must equal ``prompt.yes_text`` / ``prompt.no_text`` (trimmed, case-insensitive).
    Returns ``(True, "ok")``, ``(False, "ok")`` or ``(None, "no_verdict")``.
    """
    if not (prompt.verdict_cue and prompt.yes_text and prompt.no_text):
        raise ValueError(f"prompt {prompt.name!r} ({prompt.kind}) has no yes/no verdict cue")
    cue = prompt.verdict_cue.strip()
    at = text.rfind(cue)
    if at < 0:
        return None, "no_verdict"
    m = re.match(r"[\s*_]*([A-Za-z]+)", text[at + len(cue):])
    if m:
        word = m.group(1).lower()
        if word == prompt.yes_text.strip().lower():
            return True, "ok"
        if word == prompt.no_text.strip().lower():
            return False, "ok"
    return None, "no_verdict"


def parse_critic(text: str) -> tuple[int | None, str]:
    """The earliest-error index a critic put in its last ``\\boxed{}``: ``(k, "ok")`` with k >= -1.

    The box must hold a bare integer (spaces and ``$`` allowed around it); anything else, including
    a missing box, a word, a float or an index below -1, gives ``(None, "unparsed")``.
    """
    content = last_boxed(text)
    if content is None:
        return None, "unparsed"
    content = content.strip().strip("$").strip()
    if not _INT.fullmatch(content):
        return None, "unparsed"
    k = int(content)
    return (k, "ok") if k >= -1 else (None, "unparsed")


def p_yes_from_logprobs(lp_yes: float, lp_no: float) -> float:
    """P(Yes) normalised over {Yes, No}: exp(lp_yes) / (exp(lp_yes) + exp(lp_no)).

    Computed as a logistic of the difference, so very negative logprobs neither underflow to 0/0
    nor overflow. Either logprob may be -inf (that token is impossible); both -inf or any NaN is a
    ValueError, since there is then no distribution to normalise.
    """
    if math.isnan(lp_yes) or math.isnan(lp_no) or (lp_yes == -math.inf and lp_no == -math.inf):
        raise ValueError(f"cannot normalise logprobs yes={lp_yes} no={lp_no}")
    d = lp_yes - lp_no
    if d >= 0:
        return 1.0 / (1.0 + math.exp(-d))
    e = math.exp(d)
    return e / (1.0 + e)


def verdict_position(
    token_ids: Sequence[int],
    yes_id: int,
    no_id: int,
    cue: str,
    decode: Callable[[Sequence[int]], str],
) -> int | None:
    """Index in ``token_ids`` (generated tokens) of the verdict token: the last position whose token
    is ``yes_id`` or ``no_id`` and whose preceding text ends with ``cue`` (whitespace-trimmed).

    The cue is matched on decoded text rather than on token ids because the cue's tokenisation
    inside a generation can differ from its tokenisation alone (merges across the boundary).
    ``decode`` is the tokenizer's decode; only a short window before each candidate is decoded.
    Returns None when no such position exists (the caller then appends the cue and asks for one
    more token).
    """
    target = cue.strip()
    window = len(target) + 8  # a token decodes to at least one character, plus merge slack
    for i in range(len(token_ids) - 1, -1, -1):
        if token_ids[i] != yes_id and token_ids[i] != no_id:
            continue
        if decode(token_ids[max(0, i - window):i]).rstrip().endswith(target):
            return i
    return None
