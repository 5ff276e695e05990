"""Split pages into chunks. A chunk never spans two pages, so every chunk has one page."""

from __future__ import annotations

from functools import lru_cache

from langchain_text_splitters import RecursiveCharacterTextSplitter

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
    pages: list[Page], *, source: str, doc_id: str, size: int = 800, overlap: int = 120
) -> list[Chunk]:
    splitter = _splitter(size, overlap)
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for page in pages:
        for piece in splitter.split_text(page.text):
            text = " ".join(piece.split())  # PDF extraction leaves ragged whitespace
            if not text:
                continue
            chunk = Chunk(text=text, source=source, page=page.number, doc_id=doc_id)
            if chunk.id not in seen:  # a repeated identical paragraph is stored once
                seen.add(chunk.id)
                chunks.append(chunk)
    return chunks
