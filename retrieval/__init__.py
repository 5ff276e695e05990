"""Retrieval's front door: ``open_index(config)`` gives the store, the BM25 index and a
retriever over them. Everything it needs comes in a ``RetrievalConfig`` of plain values;
the errors it raises are in ``retrieval.errors``."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from retrieval.bm25_index import BM25Index
from retrieval.bm25_live import LiveBM25, WriterView
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
    # while a thread of this process holds the writer lock: that thread, and the BM25
    # version that was in line with the store as it took the lock
    _writer: int | None = field(default=None, init=False, repr=False)
    _in_line: str | None = field(default=None, init=False, repr=False)

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

    @contextlib.contextmanager
    def writer(self, timeout: float = 30.0) -> Iterator[None]:
        """One writer at a time, on this host and across hosts (see ``ChromaStore.writer``).
        Meanwhile the store notes what it writes, so that the writer's BM25 sync reads back
        only what it cannot know (``sync_bm25``); with a Chroma server, whose other hosts
        write too, it reads every chunk back."""
        with self.store.writer(timeout):
            if self.config.chroma_host:
                yield
                return
            self._in_line = self.live_bm25.take_in_line()
            self.store.track_changes()
            self._writer = threading.get_ident()
            try:
                yield
            finally:
                self._in_line, self._writer = None, None

    def sync_bm25(
        self,
        *,
        rebuild: bool = False,
        reuse: bool = True,
        known: Mapping[str, tuple] | None = None,
    ) -> None:
        """Bring the BM25 index in line with Chroma, the source of truth (``rebuild``: re-derive
        it even if the saved one matches; ``reuse``: with the saved version's terms of the
        chunks it already holds, and under ``writer`` the rows of those it did not change
        from the version that was in line as it started; ``known``: rows of chunks just
        written, not read back; see ``LiveBM25.sync``). Built aside and swapped in whole."""
        writing = self._writer == threading.get_ident()
        store = self.store
        view = (
            WriterView(self._in_line, store.changed_ids(), store.deleted_ids()) if writing else None
        )
        self.live_bm25.sync(store, rebuild=rebuild, reuse=reuse, known=known, writer=view)

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
