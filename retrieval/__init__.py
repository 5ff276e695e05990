"""Retrieval's front door: ``open_index(config)`` gives the store, the BM25 index and a
retriever over them. Everything it needs comes in a ``RetrievalConfig`` of plain values;
the errors it raises are in ``retrieval.errors``."""

from __future__ import annotations

from dataclasses import dataclass

from retrieval.bm25_index import BM25Index
from retrieval.chroma_store import ChromaStore
from retrieval.config import DEFAULT_EMBEDDING_MODEL, RetrievalConfig, RetrievalMode
from retrieval.errors import EmbedderError, RetrievalError, StoreError
from retrieval.hybrid import HybridRetriever
from retrieval.types import Chunk, Embedder, Hit, Retriever

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "Chunk",
    "EmbedderError",
    "Hit",
    "Index",
    "RetrievalConfig",
    "RetrievalError",
    "RetrievalMode",
    "Retriever",
    "StoreError",
    "open_index",
]


@dataclass
class Index:
    config: RetrievalConfig
    embedder: Embedder
    store: ChromaStore
    bm25: BM25Index

    def retriever(
        self, mode: RetrievalMode | None = None, floor: float | None = None
    ) -> HybridRetriever:
        """A retriever with the config's mode and relevance floor unless given
        (``floor=-1`` keeps every hit: cosine similarity is never below -1)."""
        return HybridRetriever(
            self.store,
            self.bm25,
            mode=mode or self.config.mode,
            candidates=self.config.candidates,
            rrf_k=self.config.rrf_k,
            fusion=self.config.fusion,
            dense_weight=self.config.dense_weight,
            floor=self.config.relevance_floor if floor is None else floor,
        )

    def rebuild_bm25(self) -> None:
        """Re-derive the BM25 index from Chroma, the source of truth."""
        self.bm25.build(list(self.store.iter_chunks()))
        self.bm25.save()


def open_index(config: RetrievalConfig, embedder: Embedder | None = None) -> Index:
    """Open (or create) the stores under ``config.data_dir``. Pass ``embedder`` to share
    one loaded model between indexes (tests do)."""
    if embedder is None:
        from retrieval.embedder import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder(config.embedding_model)
    return Index(config, embedder, ChromaStore(config, embedder), BM25Index(config.bm25_dir))
