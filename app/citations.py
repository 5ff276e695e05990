"""Citations the code can vouch for.

The model only writes numbers like ``[2]``; what a number means comes from the retrieved
chunks' own metadata. A number that names no resource is dropped, from the citations and from
the text. When the model cites nothing, the resources it was given are listed, marked as
inferred, so every answer still shows where it came from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from retrieval.types import Hit

# [1], [1, 2], [1][2], [1-3] and "[Resource 1]"
_CITE = re.compile(
    r"\[\s*(?:resources?\s*)?(\d+(?:\s*[,;\-–]\s*(?:resources?\s*)?\d+)*)\s*\]", re.I
)
_REFUSAL = re.compile(r"\bi\s+(?:don'?t|do\s+not)\s+know\b", re.I)
SNIPPET_CHARS = 240


@dataclass(frozen=True)
class Citation:
    n: int
    source: str
    page: int | None
    snippet: str
    inferred: bool = False

    def to_json(self) -> dict:
        return {
            "n": self.n,
            "source": self.source,
            "page": self.page,
            "snippet": self.snippet,
            "inferred": self.inferred,
        }


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


def resolve_citations(text: str, hits: Sequence[Hit]) -> tuple[str, list[Citation]]:
    """Return the answer text with unknown ``[n]`` removed, and the citations it makes.

    Valid numbers are 1..len(hits), the order of the resources in the prompt.
    """
    cited: list[int] = []

    def keep_valid(match: re.Match[str]) -> str:
        valid = [n for n in _numbers(match.group(1)) if 1 <= n <= len(hits)]
        for n in valid:
            if n not in cited:
                cited.append(n)
        return "".join(f"[{n}]" for n in dict.fromkeys(valid))

    cleaned = _CITE.sub(keep_valid, text)
    cleaned = re.sub(r"[ \t]+([.,;:])", r"\1", cleaned)  # "fact [9]." -> "fact."
    cleaned = re.sub(r"[ \t]{2,}", " ", cleaned).strip()
    citations = [
        Citation(n, hits[n - 1].source, hits[n - 1].page, snippet(hits[n - 1].text))
        for n in sorted(cited)
    ]
    return cleaned, citations


def inferred_citations(hits: Sequence[Hit]) -> list[Citation]:
    """The resources the model was given, best first, marked as inferred."""
    return [
        Citation(n, h.source, h.page, snippet(h.text), inferred=True)
        for n, h in enumerate(hits, start=1)
    ]
