"""The prompt, in one place (golden-tested).

The product's founding prompt is in-context learning: the question, the retrieved resources,
and the instruction to answer only from them, cite them, and otherwise say "I don't know"
(the founding article's prompt, quoted in ARCHITECTURE.md). We add the numbering so that
answers can cite, and the rule that a newer memo beats an older handbook page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Resource(Protocol):
    """What the prompt reads of a retrieved passage (``retrieval.Hit`` is one)."""

    @property
    def text(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def page(self) -> int | None: ...

    # optional: the document's effective date, ISO (``Hit.effective``); read with getattr,
    # so a resource without it is still one


I_DONT_KNOW = "I don't know."
# how a model says it: "I don't know", "I do not know" (a regular expression, case-insensitive;
# app.citations adds the longer forms, llm.press presses after it)
REFUSAL_PATTERN = r"\bi\s+(?:don'?t|do\s+not)\s+know\b"

ICL_TEMPLATE = """Answer the question using only the information in the resources below.
Cite the resources you use by their number in square brackets, like [1].
If the resources disagree, follow the most recent one.
If you don't know the answer respond with "I don't know."
Don't make anything up.

Question: {question}

Resources:
{resources}

Answer:"""


def format_resource(n: int, hit: Resource) -> str:
    """``[2] (memo_2026-09_remote_work.md, dated 2026-09-08)``, then the text. The date lets
    the model see which resource is the most recent, as the instruction asks it to."""
    where = hit.source if hit.page is None else f"{hit.source}, page {hit.page}"
    effective = getattr(hit, "effective", None)
    if effective:
        where += f", dated {effective}"
    return f"[{n}] ({where})\n{hit.text}"


# Variants for evaluation (python -m app.eval --prompt NAME). Each keeps the founding rules
# (only the resources, cite by number, the most recent wins, else "I don't know."), taken
# from the founding prompt itself, and adds one technique from the seed articles; "icl" is
# what the app uses.
FOUNDING_RULES = ICL_TEMPLATE.partition("\n\nQuestion:")[0]

# Few-shot prompting (Brown et al., "Language Models are Few-Shot Learners", 2020): two worked
# examples, one answered with a citation and a newer memo winning, one refused.
FEW_SHOT_TEMPLATE = (
    FOUNDING_RULES
    + """

Example 1
Question: How many days of training budget do I get?
Resources:
[1] (policy.pdf, page 4, dated 2024-01-01)
Every employee has 3 training days per year.
[2] (memo_2025.md, dated 2025-01-15)
From 2025 the training budget rises to 5 days per year.
Answer: You get 5 training days per year [2].

Example 2
Question: Is there a company canteen?
Resources:
[1] (policy.pdf, page 2, dated 2024-01-01)
The office is open from 7:00 to 20:00.
Answer: I don't know.

Now the real question.

Question: {question}

Resources:
{resources}

Answer:"""
)

# Zero-shot chain of thought (Kojima et al., "Large Language Models are Zero-Shot Reasoners",
# 2022; the seed's "Let's think this through step by step").
STEP_BY_STEP_TEMPLATE = (
    ICL_TEMPLATE.removesuffix("Answer:")
    + """Let's think this through step by step: first name the resources that are about the question,
then check whether a more recent one changes the rule, then give a short answer with citations.

Answer:"""
)

PROMPTS: dict[str, str] = {
    "icl": ICL_TEMPLATE,
    "few_shot": FEW_SHOT_TEMPLATE,
    "step_by_step": STEP_BY_STEP_TEMPLATE,
}


def build_prompt(question: str, hits: Sequence[Resource], variant: str = "icl") -> str:
    """The prompt named ``variant`` (default: the founding ICL prompt) with resources
    numbered from 1, in the order given."""
    try:
        template = PROMPTS[variant]
    except KeyError:
        raise ValueError(
            f"unknown prompt {variant!r}; choose one of: {', '.join(PROMPTS)}"
        ) from None
    resources = "\n\n".join(format_resource(n, h) for n, h in enumerate(hits, start=1))
    return template.format(question=question.strip(), resources=resources)


# A second try after the answer check found that the first answer gave one subject's value
# to another (app.attribution's ``correction``, app.qa): the same prompt, so a backend that
# keeps the prompt it has just read (llama.cpp) reads only the lines added.
REVISION_TEMPLATE = """{prompt}

A first answer was: "{answer}"
Checked against the resources, it is wrong: {corrections}. Answer the question again, using only the resources."""


def build_revision(prompt: str, answer: str, corrections: Sequence[str]) -> str:
    """``prompt`` followed by the first ``answer`` and what the check found wrong in it."""
    return REVISION_TEMPLATE.format(
        prompt=prompt, answer=" ".join(answer.split()), corrections="; ".join(corrections)
    )
