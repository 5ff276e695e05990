"""Dense, BM25 and hybrid search over one store, behind ``Retriever.search(query, k)``."""

from __future__ import annotations

import logging
import threading

import numpy as np

from retrieval.bm25_index import BM25Index
from retrieval.chroma_store import ChromaStore
from retrieval.config import Fusion, RetrievalMode
from retrieval.fusion import fuse_hybrid
from retrieval.types import Hit

log = logging.getLogger(__name__)


def apply_floor(hits: list[Hit], floor: float | None) -> list[Hit]:
    """Keep hits whose question-chunk cosine similarity reaches ``floor``.

    Fused and BM25 scores are only comparable within one search, so the floor reads the
    cosine similarity, which means the same thing for every question.
    """
    if floor is None:
        return hits
    return [h for h in hits if h.similarity is not None and h.similarity >= floor]


class HybridRetriever:
    """Dense top-n and BM25 top-n fused (``retrieval.fusion.fuse_hybrid``: a convex
    combination of normalised scores, or reciprocal rank fusion), then the relevance floor.

    ``mode`` picks one side alone for comparison. Every hit carries its cosine similarity.
    """

    def __init__(
        self,
        store: ChromaStore,
        bm25: BM25Index,
        *,
        mode: RetrievalMode = "hybrid",
        candidates: int = 20,
        rrf_k: int = 60,
        fusion: Fusion = "convex",
        dense_weight: float = 0.5,
        floor: float | None = None,
    ) -> None:
        self.store, self.bm25 = store, bm25
        self.mode, self.candidates, self.rrf_k, self.floor = mode, candidates, rrf_k, floor
        self.fusion, self.dense_weight = fusion, dense_weight
        self._lock = threading.Lock()
        self.sync_bm25()

    def sync_bm25(self) -> None:
        """Make the BM25 index agree with Chroma: load it, or rebuild it from Chroma when it
        is missing, damaged, or holds other ids than Chroma does."""
        with self._lock:
            loaded = self.bm25.load()
            chroma_ids = self.store.all_ids()
            if loaded and self.bm25.matches(chroma_ids):
                return
            log.info("Rebuilding the BM25 index from Chroma (%d chunks)", len(chroma_ids))
            self.bm25.build(list(self.store.iter_chunks()))
            self.bm25.save()

    def search(self, query: str, k: int) -> list[Hit]:
        if not query.strip() or k <= 0:
            return []
        if self.mode != "dense" and self.bm25.is_stale():
            # another process (the CLI, the admin page) changed the index: pick it up
            self.sync_bm25()
        vector = self.store.embedder.embed([query])[0]
        n = max(self.candidates, k)
        dense = self.store.query(vector, n) if self.mode != "bm25" else []
        sparse = self.bm25.search(query, n) if self.mode != "dense" else []

        if self.mode == "dense":
            hits = dense
        elif self.mode == "bm25":
            hits = self._with_similarity(sparse, vector)
        else:
            by_id = {h.id: h for h in sparse}
            by_id.update({h.id: h for h in dense})  # dense hits carry their similarity
            fused = fuse_hybrid(
                [(h.id, h.score) for h in dense],
                [(h.id, h.score) for h in sparse],
                method=self.fusion,
                dense_weight=self.dense_weight,
                rrf_k=self.rrf_k,
            )
            hits = [
                Hit(i, by_id[i].text, by_id[i].source, by_id[i].page, score, by_id[i].similarity)
                for i, score in fused
            ]
            hits = self._with_similarity(hits, vector)
        return apply_floor(hits, self.floor)[:k]

    def _with_similarity(self, hits: list[Hit], vector: list[float]) -> list[Hit]:
        """Fill in the cosine similarity of hits that came from BM25 alone."""
        missing = [h.id for h in hits if h.similarity is None]
        if not missing:
            return hits
        stored = self.store.embeddings(missing)
        q = np.asarray(vector, dtype=np.float32)
        out = []
        for h in hits:
            if h.similarity is None and h.id in stored:
                sim = float(np.dot(q, np.asarray(stored[h.id], dtype=np.float32)))
                h = Hit(h.id, h.text, h.source, h.page, h.score, sim)
            out.append(h)
        return out
