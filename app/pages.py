"""A cited page as a reader wants it: the page's text, from its stored chunks, with the
quote found in it, so "open the source" shows more than a snippet."""

from __future__ import annotations

from dataclasses import dataclass

from retrieval import Index

MIN_OVERLAP = 12  # characters; shorter matches between chunk ends are coincidences


def merge_overlapping(texts: list[str]) -> str:
    """Join consecutive chunks, dropping the text each shares with the one before (the
    splitter's overlap). Chunks that share nothing are joined by a space."""
    out = ""
    for text in texts:
        if not out:
            out = text
            continue
        cut = 0
        for k in range(min(len(out), len(text)), MIN_OVERLAP - 1, -1):
            if out.endswith(text[:k]):
                cut = k
                break
        out = out + text[cut:] if cut else f"{out} {text}"
    return out


@dataclass(frozen=True)
class PageView:
    text: str
    quote_at: int | None  # where the quote starts in ``text``; None when not found


def page_view(index: Index, source: str, page: int | None, quote: str | None) -> PageView:
    text = merge_overlapping(index.store.page_chunks(source, page))
    at = text.find(quote) if quote else -1
    return PageView(text, at if at >= 0 else None)
