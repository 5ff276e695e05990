"""Citations the code can vouch for.

The model only writes numbers like ``[2]``; what a number means comes from the retrieved
chunks' own metadata, and whether the resource supports the sentence is decided by the answer
check (``app.attribution``), which also drops numbers that name no resource.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from llm.prompt import REFUSAL_PATTERN
from retrieval.types import Hit

# [1], [1, 2], [1][2], [1-3] and "[Resource 1]"
_CITE = re.compile(
    r"\[\s*(?:resources?\s*)?(\d+(?:\s*[,;\-–]\s*(?:resources?\s*)?\d+)*)\s*\]", re.I
)
# "I don't know", or its longer forms: "... is not mentioned in any of the provided
# resources", "the resources do not specify ..."
_REFUSAL = re.compile(
    REFUSAL_PATTERN
    + r"|\bnot\s+(?:explicitly\s+|specifically\s+|directly\s+)?(?:stated|mentioned|specified|"
    r"provided|given|included|found|addressed)\s+in\s+(?:any\s+of\s+)?the\s+(?:provided\s+|given\s+)?"
    r"(?:resources?|documents?|information|passages?)"
    r"|\b(?:resources?|documents?|passages?)\s+(?:provided\s+)?(?:do|does)\s+not\s+"
    r"(?:mention|say|state|specify|provide|contain|include)",
    re.I,
)
SNIPPET_CHARS = 240


@dataclass(frozen=True)
class Citation:
    """A resource cited by an answer. ``quote`` is the supporting sentence(s), verbatim from
    the chunk's text (``quotes``: one per answer sentence it supports, in answer order);
    ``checked`` says what the answer check did with the model's own marker ("kept", "moved"
    or "added", see ``app.attribution``). ``inferred``: listed because the model was given it,
    not because it supports a sentence (only under a withheld answer)."""

    n: int
    source: str
    page: int | None
    snippet: str
    inferred: bool = False
    quote: str | None = None
    quotes: tuple[str, ...] = ()
    checked: str | None = None

    def to_json(self) -> dict:
        out = {
            "n": self.n,
            "source": self.source,
            "page": self.page,
            "snippet": self.snippet,
            "inferred": self.inferred,
        }
        if self.quote is not None:
            out.update(quote=self.quote, quotes=list(self.quotes), checked=self.checked)
        return out


def _numbers(group: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group):
        part = re.sub(r"(?i)resources?\s*", "", part)
        if re.search(r"[\-–]", part):
            lo, hi = (int(x) for x in re.split(r"\s*[\-–]\s*", part))
            if 0 < hi - lo < 20:
                numbers.extend(range(lo, hi + 1))
                continue
            numbers.extend((lo, hi))
        else:
            numbers.append(int(part))
    return numbers


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def is_refusal(text: str) -> bool:
    """The model said it does not know (the founding prompt's one allowed non-answer)."""
    return bool(_REFUSAL.search(text.replace("\u2019", "'")))


def inferred_citations(hits: Sequence[Hit]) -> list[Citation]:
    """The resources the model was given, best first, marked as inferred."""
    return [
        Citation(n, h.source, h.page, snippet(h.text), inferred=True)
        for n, h in enumerate(hits, start=1)
    ]
