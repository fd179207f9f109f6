"""Named, versioned prompts: the only place prompt text lives (prompts are code, not config).

A ``Prompt`` renders keyword fields into either a raw completion string or a list of chat messages
(``[{"role": ..., "content": ...}]``; the engine applies the model tokenizer's chat template).
Kinds and the fields they render:

- ``solver``: ``problem``
- ``genrm`` (generative verifier, writes a critique ending in a Yes/No verdict): ``problem``, ``solution``
- ``critic`` (ProcessBench-style, writes the index of the earliest wrong step): ``problem``, ``steps``
- ``prm`` (discriminative process reward model, scores each step): ``problem``, ``steps``

Verdict conventions. ``verdict_cue`` is text that, appended after a critique that lacks a verdict,
makes the very next token the verdict; ``yes_text`` / ``no_text`` are the strings that token decodes
to (with a leading space where the tokenizer merges it). Token ids are resolved by the caller from
the model's tokenizer, never written here. A critic's ``verdict_cue`` instead opens the ``\\boxed{``
of its index (its verdict is a number, so it has no yes/no text).

Changing a prompt's wording means a new name (``..._v2``); results name the prompt they used.
Real-model formats follow the released models and the seeds (see the shared reference notes).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from toyworld import formats as toy

Message = dict[str, str]
Rendered = str | list[Message]
PromptKind = Literal["solver", "genrm", "critic", "prm"]

FIELDS: dict[str, tuple[str, ...]] = {
    "solver": ("problem",),
    "genrm": ("problem", "solution"),
    "critic": ("problem", "steps"),
    "prm": ("problem", "steps"),
}


@dataclass(frozen=True)
class Prompt:
    """One named prompt. ``render(**fields)`` checks the kind's fields and returns the prompt."""

    name: str
    kind: PromptKind
    template: Callable[..., Rendered]
    description: str
    stop: tuple[str, ...] = ()  # stop strings a solver needs (few-shot prompts would run on)
    verdict_cue: str | None = None
    yes_text: str | None = None
    no_text: str | None = None
    step_separator: str | None = None  # prm: the text after each step where its score is read
    add_generation_prompt: bool = True  # False where the rendered chat already ends with the model's turn

    def __post_init__(self) -> None:
        if self.kind not in FIELDS:
            raise ValueError(f"prompt {self.name!r}: unknown kind {self.kind!r}; known: {sorted(FIELDS)}")
        if self.kind == "genrm" and not (self.verdict_cue and self.yes_text and self.no_text):
            raise ValueError(f"prompt {self.name!r}: a genrm prompt needs verdict_cue, yes_text and no_text")
        if self.kind == "prm" and not self.step_separator:
            raise ValueError(f"prompt {self.name!r}: a prm prompt needs step_separator")

    def render(self, **fields: object) -> Rendered:
        """Render the prompt. Raises TypeError naming the prompt on missing or unexpected fields."""
        want = FIELDS[self.kind]
        if set(fields) != set(want):
            raise TypeError(f"prompt {self.name!r} ({self.kind}) renders fields {list(want)}, got {sorted(fields)}")
        if "steps" in fields and (isinstance(fields["steps"], str) or not isinstance(fields["steps"], Sequence)):
            raise TypeError(f"prompt {self.name!r}: steps must be a list of strings, got {type(fields['steps']).__name__}")
        return self.template(**fields)


def strip_thinking(text: str) -> str:
    """The part of a reasoning model's solution after its thinking block, for verification.

    Returns the text after the last ``</think>``, stripped. Text that opens ``<think>`` but never
    closes it (generation cut inside the reasoning) has no final part and gives ``""``; text
    without any thinking block is returned unchanged.
    """
    end = text.rfind("</think>")
    if end >= 0:
        return text[end + len("</think>"):].strip()
    return "" if "<think>" in text else text


# ---------------------------------------------------------------------------------------------
# Solver: Minerva-style 4-shot (raw completion; the worked examples are our own).
# ---------------------------------------------------------------------------------------------
_MINERVA_SHOTS = (
    (
        r"Find the domain of the function $f(x) = \sqrt{4 - x} + \frac{1}{x + 2}$.",
        r"The square root needs $4 - x \ge 0$, so $x \le 4$. The fraction needs $x + 2 \neq 0$, so "
        r"$x \neq -2$. Together, the domain is $(-\infty, -2) \cup (-2, 4]$.",
        r"(-\infty, -2) \cup (-2, 4]",
    ),
    (
        r"If $3a + 2b = 12$ and $a - b = -1$, what is the value of $a + b$?",
        r"From the second equation, $a = b - 1$. Substituting into the first gives $3(b - 1) + 2b = 12$, "
        r"so $5b = 15$ and $b = 3$. Then $a = 2$, and $a + b = 5$.",
        r"5",
    ),
    (
        r"A bag holds 4 red and 6 blue marbles. Two marbles are drawn without replacement. What is the "
        r"probability that both are red? Express your answer as a common fraction.",
        r"The first marble is red with probability $\frac{4}{10}$; given that, the second is red with "
        r"probability $\frac{3}{9}$. So the probability is $\frac{4}{10} \cdot \frac{3}{9} = \frac{12}{90} "
        r"= \frac{2}{15}$.",
        r"\frac{2}{15}",
    ),
    (
        r"What is the remainder when $7^{100}$ is divided by 5?",
        r"Since $7 \equiv 2 \pmod 5$, we need $2^{100} \bmod 5$. Now $2^4 = 16 \equiv 1 \pmod 5$, and "
        r"$100 = 4 \cdot 25$, so $2^{100} = (2^4)^{25} \equiv 1 \pmod 5$. The remainder is 1.",
        r"1",
    ),
)


def _minerva_block(problem: str, solution: str | None = None, answer: str | None = None) -> str:
    head = f"Problem:\n{problem}\n\nSolution:\n"
    if solution is None:
        return head
    return f"{head}{solution}\nFinal Answer: The final answer is ${answer}$. I hope it is correct."


def _minerva_math(problem: str) -> str:
    shots = "\n\n".join(_minerva_block(p, s, a) for p, s, a in _MINERVA_SHOTS)
    return f"{shots}\n\n{_minerva_block(problem)}"


# ---------------------------------------------------------------------------------------------
# GenRM verifiers.
# ---------------------------------------------------------------------------------------------
_GENRM_CUE = "Is the answer correct (Yes/No)?"


def _genrm_ft(problem: str, solution: str) -> list[Message]:
    # the exact user message the released fine-tuned GenRM was trained on
    return [{"role": "user", "content": f"Problem:\n{problem}\n\nSolution:\n{solution}\n\nVerification:"}]


_GENRM_BASE_SYSTEM = (
    "You are a careful math teacher. You are given a problem and a student's solution. Grade the "
    "solution step by step: restate what each step claims, check it, and say whether it is right. "
    f"After checking every step, end with exactly one line: '{_GENRM_CUE} X', where X is Yes if the "
    "final answer is correct and No otherwise."
)

_GENRM_BASE_SHOTS = (
    (
        r"What is $\frac{2}{3} + \frac{1}{4}$? Express your answer as a common fraction.",
        r"The common denominator is 12, so $\frac{2}{3} + \frac{1}{4} = \frac{8}{12} + \frac{3}{12} = "
        r"\frac{11}{12}$." "\nFinal Answer: The final answer is $\\frac{11}{12}$. I hope it is correct.",
        r"Step 1: the least common denominator of 3 and 4 is 12. Correct." "\n"
        r"Step 2: $\frac{2}{3} = \frac{8}{12}$ and $\frac{1}{4} = \frac{3}{12}$. Correct." "\n"
        r"Step 3: $\frac{8}{12} + \frac{3}{12} = \frac{11}{12}$, already in lowest terms. Correct." "\n"
        f"The final answer $\\frac{{11}}{{12}}$ is right.\n{_GENRM_CUE} Yes",
    ),
    (
        r"How many positive divisors does 36 have?",
        r"We factor $36 = 2^2 \cdot 3^2$. The number of divisors is the product of the exponents, "
        r"$2 \cdot 2 = 4$." "\nFinal Answer: The final answer is $4$. I hope it is correct.",
        r"Step 1: $36 = 2^2 \cdot 3^2$. Correct." "\n"
        r"Step 2: the number of divisors is the product of the exponents each increased by one, "
        r"$(2 + 1)(2 + 1) = 9$, not the product of the exponents. Incorrect." "\n"
        f"The final answer 4 is wrong; the correct count is 9.\n{_GENRM_CUE} No",
    ),
)


def _genrm_user(problem: str, solution: str) -> str:
    return f"Problem:\n{problem}\n\nSolution:\n{solution}\n\nVerification:"


def _genrm_base(problem: str, solution: str) -> list[Message]:
    messages: list[Message] = [{"role": "system", "content": _GENRM_BASE_SYSTEM}]
    for p, s, v in _GENRM_BASE_SHOTS:
        messages += [{"role": "user", "content": _genrm_user(p, s)}, {"role": "assistant", "content": v}]
    messages.append({"role": "user", "content": _genrm_user(problem, solution)})
    return messages


# ---------------------------------------------------------------------------------------------
# Step-level: ProcessBench critic and Qwen2.5-Math-PRM input.
# ---------------------------------------------------------------------------------------------
def tag_paragraphs(steps: Sequence[str]) -> str:
    """Steps wrapped in ``<paragraph_i>`` tags, indexed from 0, separated by blank lines."""
    return "\n\n".join(f"<paragraph_{i}>\n{s}\n</paragraph_{i}>" for i, s in enumerate(steps))


def _processbench_critic(problem: str, steps: Sequence[str]) -> list[Message]:
    content = (
        "Below are a math problem and a solution. The solution is split into paragraphs, each enclosed "
        "in tags and indexed from 0.\n\n"
        f"[Math Problem]\n\n{problem}\n\n[Solution]\n\n{tag_paragraphs(steps)}\n\n"
        "Review the solution paragraph by paragraph. If a paragraph contains an error, give the index of "
        "the paragraph where the earliest error occurs. If every paragraph is correct, give -1.\n\n"
        "Put your final answer (the index) in \\boxed{}."
    )
    return [{"role": "user", "content": content}]


QWEN_PRM_SEPARATOR = "<extra_0>"
_QWEN_PRM_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


def _qwen_math_prm(problem: str, steps: Sequence[str]) -> list[Message]:
    # Qwen2.5-Math-PRM's documented input: the separator follows every step, including the last;
    # the assistant turn is part of the input (render with add_generation_prompt=False).
    response = "".join(f"{s}{QWEN_PRM_SEPARATOR}" for s in steps)
    return [
        {"role": "system", "content": _QWEN_PRM_SYSTEM},
        {"role": "user", "content": problem},
        {"role": "assistant", "content": response},
    ]


# ---------------------------------------------------------------------------------------------
# Registry.
# ---------------------------------------------------------------------------------------------
PROMPTS: dict[str, Prompt] = {}


def register(prompt: Prompt) -> Prompt:
    """Add ``prompt`` to the registry; a second prompt under the same name is a ValueError."""
    if prompt.name in PROMPTS:
        raise ValueError(f"prompt {prompt.name!r} is already registered")
    PROMPTS[prompt.name] = prompt
    return prompt


def get_prompt(name: str) -> Prompt:
    """The registered prompt called ``name``; KeyError listing the known names otherwise."""
    try:
        return PROMPTS[name]
    except KeyError:
        raise KeyError(f"unknown prompt {name!r}; known prompts: {', '.join(sorted(PROMPTS))}") from None


register(Prompt(
    name="minerva_math_v1", kind="solver", template=_minerva_math,
    description="Minerva-style 4-shot raw completion; answers end 'Final Answer: The final answer is $X$.'",
    stop=("\n\nProblem:",),
))
register(Prompt(
    name="genrm_ft_v1", kind="genrm", template=_genrm_ft,
    description="user message format of the released fine-tuned GenRM verifiers",
    verdict_cue=f"\n{_GENRM_CUE}", yes_text=" Yes", no_text=" No",
))
register(Prompt(
    name="genrm_base_v1", kind="genrm", template=_genrm_base,
    description="few-shot chat: grade step by step, end with 'Is the answer correct (Yes/No)? X'",
    verdict_cue=f"\n{_GENRM_CUE}", yes_text=" Yes", no_text=" No",
))
register(Prompt(
    name="processbench_critic_v1", kind="critic", template=_processbench_critic,
    description="ProcessBench protocol: <paragraph_i> tags from 0, earliest wrong index or -1 in \\boxed{}",
    verdict_cue="\n\nThe index of the earliest error is \\boxed{",
))
register(Prompt(
    name="qwen_math_prm_v1", kind="prm", template=_qwen_math_prm,
    description="Qwen2.5-Math-PRM input: system prompt, problem, steps each followed by <extra_0>",
    step_separator=QWEN_PRM_SEPARATOR, add_generation_prompt=False,
))

# Toy world: the formats its checkpoints were trained on (toyworld/formats.py is their one home).
register(Prompt(
    name="toy_solver_v1", kind="solver", template=toy.solver_prompt,
    description="toy arithmetic chain: one step per line, last line 'Answer: N'",
))
register(Prompt(
    name="toy_genrm_v1", kind="genrm", template=toy.genrm_prompt,
    description="toy GenRM: the claim, its own solution, a digit match line, 'Correct? ' and one Yes/No token",
    verdict_cue=toy.VERDICT_CUE, yes_text=toy.YES, no_text=toy.NO,
))
register(Prompt(
    name="toy_critic_v1", kind="critic", template=toy.critic_prompt,
    description="toy critic: steps tagged [i] from 0, earliest wrong step or -1 in \\boxed{}",
    verdict_cue="\\boxed{",
))
register(Prompt(
    name="toy_prm_v1", kind="prm", template=toy.prm_input,
    description="toy PRM input: solver prompt, each step followed by the <step> separator token",
    step_separator=toy.PRM_SEPARATOR,
))
