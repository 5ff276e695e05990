"""Dense, BM25 and hybrid search over one store, behind ``Retriever.search(query, k)``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from retrieval import late_interaction
from retrieval.bm25_index import BM25Index
from retrieval.bm25_live import LiveBM25
from retrieval.chroma_store import ChromaStore
from retrieval.config import Fusion, RetrievalMode
from retrieval.fusion import fuse_hybrid
from retrieval.late_interaction import gives_tokens
from retrieval.types import Embedder, Hit, Tokens

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
    combination of normalised scores, or reciprocal rank fusion), the fused top
    ``rerank_depth`` re-scored token by token where the store has their token vectors
    (``retrieval.late_interaction``; 0 = off), then the relevance floor.

    ``mode`` picks one side alone for comparison. Every hit carries its cosine similarity.
    A search reads one BM25 version throughout (``LiveBM25``: a new one is published whole)
    and dense hits straight from Chroma; ids are content hashes, so a hit's text, source
    and page are always those Chroma stores (or stored) for its id.
    """

    def __init__(
        self,
        store: ChromaStore,
        bm25: LiveBM25 | BM25Index,
        *,
        mode: RetrievalMode = "hybrid",
        candidates: int = 20,
        rrf_k: int = 60,
        fusion: Fusion = "convex",
        dense_weight: float = 0.5,
        floor: float | None = None,
        rerank_depth: int = 0,
        rerank_weight: float = late_interaction.WEIGHT,
        page_weight: float = late_interaction.PAGE_WEIGHT,
    ) -> None:
        self.store = store
        self.live = bm25 if isinstance(bm25, LiveBM25) else LiveBM25(bm25.directory, bm25)
        self.mode, self.candidates, self.rrf_k, self.floor = mode, candidates, rrf_k, floor
        self.fusion, self.dense_weight = fusion, dense_weight
        self.rerank_depth, self.rerank_weight = rerank_depth, rerank_weight
        self.page_weight = page_weight
        if mode != "dense":
            self.live.ensure(store)

    @property
    def bm25(self) -> BM25Index:
        return self.live.current

    @property
    def embedder(self) -> Embedder:
        """The model that embeds questions (and the stored chunks)."""
        return self.store.embedder

    def sync_bm25(self) -> None:
        """Make the BM25 index agree with Chroma: load it, or rebuild it from Chroma when it
        is missing, damaged, or holds other ids than Chroma does."""
        self.live.sync(self.store)

    def search(self, query: str, k: int, *, vector: list[float] | None = None) -> list[Hit]:
        """At most ``k`` hits, best first. ``vector``: the query's embedding when the caller
        already has it (one question searched twice is embedded once)."""
        if not query.strip() or k <= 0:
            return []
        # one BM25 version for the whole search; another process (the CLI, the admin page,
        # a replica on another host) may have changed the index: pick that up first
        bm25 = self.live.ensure(self.store) if self.mode != "dense" else self.live.current
        late = self.mode == "hybrid" and self.rerank_depth > 1 and gives_tokens(self.embedder)
        query_tokens = None
        if vector is None and late:  # the question's token vectors from the same pass
            vectors, tokens = self.embedder.embed_with_tokens([query])  # type: ignore[attr-defined]
            vector, query_tokens = vectors[0], tokens[0]
        elif vector is None:
            vector = self.store.embedder.embed([query])[0]
        n = max(self.candidates, k)
        dense = self.store.query(vector, n) if self.mode != "bm25" else []
        # the question's word pairs only where late interaction follows (BM25Index.search)
        sparse = bm25.search(query, n, pairs=late) if self.mode != "dense" else []

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
            if late:
                fused = self._late_interaction(query, fused, query_tokens, by_id, bm25)
            hits = [replace(by_id[i], score=score) for i, score in fused]
            hits = self._with_similarity(hits, vector)
        return apply_floor(hits, self.floor)[:k]

    def search_in(
        self, query: str, sources: Sequence[str], k: int, *, vector: list[float] | None = None
    ) -> list[Hit]:
        """The ``k`` chunks of the documents ``sources`` closest in meaning to ``query``
        (dense; no floor): another passage of a document the search already found."""
        if not sources or k <= 0:
            return []
        if vector is None:
            vector = self.store.embedder.embed([query])[0]
        return self.store.query(vector, k, sources=sources)

    def _late_interaction(
        self,
        query: str,
        fused: list[tuple[str, float]],
        query_tokens: Tokens | None,
        by_id: dict[str, Hit],
        bm25: BM25Index,
    ) -> list[tuple[str, float]]:
        """The fused top ``rerank_depth`` re-scored token by token
        (``retrieval.late_interaction``), the question's word pieces weighted by their
        rarity in the store, the first few with their pages (``page_weight``), when the store
        has all their token vectors."""
        head = [i for i, _ in fused[: self.rerank_depth]]
        members: dict[str, tuple[str, ...]] = {}
        if self.page_weight:
            for i in head[: late_interaction.PAGE_DEPTH]:
                page = bm25.page_members(by_id[i].source, by_id[i].page)
                if late_interaction.page_to_compare(page):
                    members[i] = page
        wanted = set(head).union(*members.values())
        stored = self.store.tokens.packed(sorted(wanted))
        if any(i not in stored for i in head):
            return fused
        if query_tokens is None:
            query_tokens = self.embedder.tokens([query])[0]  # type: ignore[attr-defined]
        vectors, pieces = query_tokens
        return late_interaction.rerank(
            fused,
            vectors,
            stored,
            depth=self.rerank_depth,
            weight=self.rerank_weight,
            query_weights=self.store.tokens.weights(pieces) if pieces is not None else None,
            pages=members,
            page_weight=self.page_weight,
        )

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
                h = replace(h, similarity=sim)
            out.append(h)
        return out
