"""The prompt, in one place (golden-tested).

The product's founding prompt is in-context learning: the question, the retrieved resources,
and the instruction to answer only from them, cite them, and otherwise say "I don't know"
(see ../shared/seeds/prompt-engineering-and-fine-tuning.txt). We add the numbering so that
answers can cite, and the rule that a newer memo beats an older handbook page.
"""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.types import Hit

I_DONT_KNOW = "I don't know."

ICL_TEMPLATE = """Answer the question using only the information in the resources below.
Cite the resources you use by their number in square brackets, like [1].
If the resources disagree, follow the most recent one.
If you don't know the answer respond with "I don't know."
Don't make anything up.

Question: {question}

Resources:
{resources}

Answer:"""


def format_resource(n: int, hit: Hit) -> str:
    where = hit.source if hit.page is None else f"{hit.source}, page {hit.page}"
    return f"[{n}] ({where})\n{hit.text}"


def build_prompt(question: str, hits: Sequence[Hit]) -> str:
    """The founding ICL prompt with resources numbered from 1, in the order given."""
    resources = "\n\n".join(format_resource(n, h) for n, h in enumerate(hits, start=1))
    return ICL_TEMPLATE.format(question=question.strip(), resources=resources)
