"""Retrieval's front door: ``open_index(settings)`` gives the store, the BM25 index and a
retriever over them."""

from __future__ import annotations

from dataclasses import dataclass

from app.settings import RetrievalMode, Settings
from retrieval.bm25_index import BM25Index
from retrieval.chroma_store import ChromaStore
from retrieval.hybrid import HybridRetriever
from retrieval.types import Chunk, Embedder, Hit, Retriever

__all__ = ["Chunk", "Hit", "Index", "Retriever", "open_index"]


@dataclass
class Index:
    settings: Settings
    embedder: Embedder
    store: ChromaStore
    bm25: BM25Index

    def retriever(
        self, mode: RetrievalMode | None = None, floor: float | None = None
    ) -> HybridRetriever:
        """A retriever with the settings' mode and relevance floor unless given
        (``floor=-1`` keeps every hit: cosine similarity is never below -1)."""
        return HybridRetriever(
            self.store,
            self.bm25,
            mode=mode or self.settings.retrieval_mode,
            candidates=self.settings.candidates,
            rrf_k=self.settings.rrf_k,
            floor=self.settings.relevance_floor if floor is None else floor,
        )

    def rebuild_bm25(self) -> None:
        """Re-derive the BM25 index from Chroma, the source of truth."""
        self.bm25.build(list(self.store.iter_chunks()))
        self.bm25.save()


def open_index(settings: Settings, embedder: Embedder | None = None) -> Index:
    """Open (or create) the stores under ``settings.data_dir``. Pass ``embedder`` to share
    one loaded model between indexes (tests do)."""
    if embedder is None:
        from retrieval.embedder import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder(settings.embedding_model)
    return Index(settings, embedder, ChromaStore(settings, embedder), BM25Index(settings.bm25_dir))
