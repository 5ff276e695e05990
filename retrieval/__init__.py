"""Retrieval's front door: ``open_index(config)`` gives the store, the BM25 index and a
retriever over them. Everything it needs comes in a ``RetrievalConfig`` of plain values;
the errors it raises are in ``retrieval.errors``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from retrieval.bm25_index import BM25Index
from retrieval.bm25_live import LiveBM25
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
    live_bm25: LiveBM25  # the BM25 index searches read, swapped whole (see bm25_live)

    @property
    def bm25(self) -> BM25Index:
        """The BM25 index serving now. Read it, never change it: build a new one aside."""
        return self.live_bm25.current

    def retriever(
        self, mode: RetrievalMode | None = None, floor: float | None = None
    ) -> HybridRetriever:
        """A retriever with the config's mode and relevance floor unless given
        (``floor=-1`` keeps every hit: cosine similarity is never below -1)."""
        return HybridRetriever(
            self.store,
            self.live_bm25,
            mode=mode or self.config.mode,
            candidates=self.config.candidates,
            rrf_k=self.config.rrf_k,
            fusion=self.config.fusion,
            dense_weight=self.config.dense_weight,
            floor=self.config.relevance_floor if floor is None else floor,
            rerank_depth=self.config.rerank_depth,
            page_weight=self.config.rerank_page_weight,
        )

    def writer(self, timeout: float = 30.0):  # noqa: ANN201 - a context manager
        """One writer at a time, on this host and across hosts (see ``ChromaStore.writer``)."""
        return self.store.writer(timeout)

    def sync_bm25(
        self,
        *,
        rebuild: bool = False,
        reuse: bool = True,
        known: Mapping[str, tuple] | None = None,
    ) -> None:
        """Bring the BM25 index in line with Chroma, the source of truth (``rebuild``: re-derive
        it even if the saved one matches; ``reuse``: with the saved version's terms of the
        chunks it already holds; ``known``: rows of chunks just written, not read back, see
        ``LiveBM25.sync``). Built aside and swapped in whole."""
        self.live_bm25.sync(self.store, rebuild=rebuild, reuse=reuse, known=known)

    def rebuild_bm25(self) -> None:
        """Re-derive the BM25 index from Chroma, the source of truth, every chunk tokenized
        again (nothing taken from the saved version)."""
        self.sync_bm25(rebuild=True, reuse=False)


def open_index(
    config: RetrievalConfig, embedder: Embedder | None = None, *, check_embedder: bool = True
) -> Index:
    """Open (or create) the stores under ``config.data_dir``. Pass ``embedder`` to share
    one loaded model between indexes (tests do). A store whose vectors another embedder made
    is refused (``EmbedderError``) unless ``check_embedder=False`` (the rebuild, which
    re-embeds everything)."""
    if embedder is None:
        from retrieval.embedders import make_embedder

        embedder = make_embedder(
            config.embedding_model,
            config.embedding_backend,  # type: ignore[arg-type]  # checked by make_embedder
            config.embedding_cache or config.data_dir / "models" / "embeddings",
            quantize=config.embedding_int8,
            bulk_bf16=config.embedding_bulk_bf16,
        )
    store = ChromaStore(config, embedder, check_embedder=check_embedder)
    return Index(config, embedder, store, LiveBM25(config.bm25_dir))
