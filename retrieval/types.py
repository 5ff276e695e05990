"""The values that cross the retrieval seam."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol

from retrieval.context import index_text

if TYPE_CHECKING:
    import numpy as np


def chunk_id(text: str, source: str, page: int | None) -> str:
    """Content hash: the same text at the same place always gets the same id."""
    h = hashlib.sha256()
    for part in (text, source, "" if page is None else str(page)):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")  # separator: ("ab", "c") and ("a", "bc") must differ
    return h.hexdigest()


@dataclass(frozen=True)
class Chunk:
    """A piece of a document as stored in both indexes."""

    text: str
    source: str  # the file's name as the user knows it
    page: int | None  # 1-based, as a PDF viewer numbers pages; None for text files
    doc_id: str  # sha256 of the whole file's bytes
    acl: tuple[str, ...] = ()  # who may see it; empty = everyone
    id: str = field(default="")
    title: str = ""  # the document's title, indexed with the chunk (never shown as its text)
    heading: str = ""  # the section heading the chunk sits under, indexed likewise

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", chunk_id(self.text, self.source, self.page))

    def metadata(self) -> dict[str, str | int]:
        meta: dict[str, str | int] = {"source": self.source, "doc_id": self.doc_id}
        if self.page is not None:
            meta["page"] = self.page
        if self.acl:
            meta["acl"] = ",".join(self.acl)
        if self.title:
            meta["title"] = self.title
        if self.heading:
            meta["heading"] = self.heading
        return meta

    @property
    def index_text(self) -> str:
        """What is embedded and BM25-indexed: title and heading, then the text."""
        return index_text(self.text, self.title, self.heading)


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk. ``score`` orders hits within one search (higher is better);
    ``similarity`` is the cosine similarity between question and chunk, comparable across
    searches, which is what the relevance floor reads (None when not computed).
    ``effective`` and ``supersedes`` are the document's, from the chunk's metadata."""

    id: str
    text: str
    source: str
    page: int | None
    score: float
    similarity: float | None = None
    effective: str | None = None  # the document's effective date, ISO (2026-09-08)
    supersedes: tuple[str, ...] = ()  # what the document says it replaces (ingest.dates)
    # the document's title > section heading the chunk is indexed under (retrieval.context):
    # what its sentences are about; never shown or quoted as the chunk's text
    context: str = ""

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "source": self.source,
            "page": self.page,
            "effective": self.effective,
            "score": round(self.score, 6),
            "text": self.text,
        }


class Tokens(NamedTuple):
    """A text's token vectors (unit rows, one per word piece, [CLS] and [SEP] left out) and
    the ids of those word pieces, in the same order: what late interaction compares and
    weighs (``retrieval.late_interaction``). ``pieces`` is ``None`` from an embedder that
    does not tell them; such a chunk is kept but not counted for the weights."""

    vectors: np.ndarray
    pieces: np.ndarray | None


class Retriever(Protocol):
    def search(self, query: str, k: int) -> list[Hit]:
        """At most k hits, best first."""
        ...


class Embedder(Protocol):
    name: str
    signature: str  # MODEL|BACKEND|PRECISION: what decides the vectors (embedder_check)

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One unit-length vector per text."""
        ...
