"""Split pages into chunks. A chunk never spans two pages, so every chunk has one page.

Each chunk also carries its document's title and the section heading it sits under
(``ingest.context``): they are indexed with it, never shown as its text.
"""

from __future__ import annotations

from functools import lru_cache

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingest.context import document_title, heading_at, page_headings
from ingest.loaders import Page
from retrieval.types import Chunk


@lru_cache(maxsize=8)
def _splitter(size: int, overlap: int) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=overlap,
        separators=["\n\n", "\n", ". ", " ", ""],
        keep_separator="end",
    )


def chunk_pages(
    pages: list[Page],
    *,
    source: str,
    doc_id: str,
    size: int = 800,
    overlap: int = 120,
    context: bool = True,
) -> list[Chunk]:
    """Chunks of at most ``size`` characters, page by page. ``context=False`` leaves title
    and heading empty (the index then sees the bare text, as before contextual chunks)."""
    splitter = _splitter(size, overlap)
    title = document_title(pages, source) if context else ""
    headings = page_headings(pages) if context else [[] for _ in pages]
    chunks: list[Chunk] = []
    seen: set[str] = set()
    carried = ""  # the last heading of the pages before: a section goes on over a page break
    for page, on_page in zip(pages, headings, strict=True):
        cursor = 0
        for piece in splitter.split_text(page.text):
            start = page.text.find(piece, cursor)
            if start < 0:  # the splitter strips pieces; fall back to where we are
                start = cursor
            cursor = start + 1
            text = " ".join(piece.split())  # PDF extraction leaves ragged whitespace
            if not text:
                continue
            chunk = Chunk(
                text=text,
                source=source,
                page=page.number,
                doc_id=doc_id,
                title=title,
                # the section the chunk is mostly about: in effect at its middle
                heading=heading_at(on_page, start + len(piece) // 2, carried),
            )
            if chunk.id not in seen:  # a repeated identical paragraph is stored once
                seen.add(chunk.id)
                chunks.append(chunk)
        if on_page:
            carried = on_page[-1][1]
    return chunks
