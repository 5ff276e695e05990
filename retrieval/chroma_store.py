"""The Chroma store: the source of truth for chunks, their metadata and their embeddings.

Embedded (``PersistentClient`` under the data dir) by default; a Chroma server
(``HttpClient``) when ``chroma_host`` is set, through the same code. The mechanisms that
keep it whole live beside it: ``writer_lock`` (one writer at a time), ``recovery`` (complete
documents only, resumable rebuilds) and ``fresh_client`` (fresh reads across processes).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval import recovery
from retrieval.config import RetrievalConfig
from retrieval.context import context_of
from retrieval.errors import StoreError
from retrieval.files import read_or_none, write_atomic
from retrieval.fresh_client import GENERATION, shared_client
from retrieval.recovery import REBUILD_JOURNAL, DocState
from retrieval.types import Chunk, Embedder, Hit
from retrieval.writer_lock import writer_lock

log = logging.getLogger(__name__)

_BATCH = 1000
DIRTY = "chroma.dirty"

__all__ = ["DIRTY", "GENERATION", "REBUILD_JOURNAL", "ChromaStore", "DocumentInfo"]


def _chroma_embedding_function(embedder: Embedder) -> Any:
    """Wrap our embedder for Chroma, so Chroma never reaches for its own default model
    (which downloads weights at run time and fails offline)."""
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class OurEmbeddingFunction(EmbeddingFunction[Documents]):
        def __init__(self) -> None:
            self._embedder = embedder

        def __call__(self, input: Documents) -> Embeddings:
            return self._embedder.embed(list(input))

        @staticmethod
        def name() -> str:
            return "handbook_rag"

        def get_config(self) -> dict[str, Any]:
            return {"model": embedder.name}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> OurEmbeddingFunction:
            raise StoreError("this collection's embeddings are made by Handbook RAG's embedder")

        def default_space(self) -> str:
            return "cosine"

    return OurEmbeddingFunction()


@dataclass(frozen=True)
class DocumentInfo:
    source: str
    doc_id: str
    chunks: int
    pages: int
    added_at: str | None = None  # ISO 8601, UTC
    added_by: str | None = None

    @property
    def name(self) -> str:
        """The file's name as its user knows it (the same as ``source``)."""
        return self.source


class ChromaStore:
    """Chunks with their metadata and embeddings, in one Chroma collection."""

    def __init__(self, config: RetrievalConfig, embedder: Embedder) -> None:
        self.config = config
        self.data_dir = config.data_dir
        self.embedder = embedder
        self._ef = _chroma_embedding_function(embedder)
        self._shared = None if config.chroma_host else shared_client(config.chroma_dir)
        self._epoch = -1
        self._dirty_depth = 0
        try:
            if config.chroma_host:
                import chromadb
                from chromadb.config import Settings as ChromaSettings

                client = chromadb.HttpClient(
                    host=config.chroma_host,
                    port=config.chroma_port,
                    settings=ChromaSettings(anonymized_telemetry=False),
                )
                self._collection = self._open_collection(client)
            else:
                self.collection()
        except StoreError:
            raise
        except Exception as exc:  # chromadb raises many types; all mean the same to a user
            where = (
                f"{config.chroma_host}:{config.chroma_port}"
                if config.chroma_host
                else config.chroma_dir
            )
            raise StoreError(f"Could not open the Chroma store at {where}: {exc}") from exc
        if self.needs_recovery():
            try:
                with writer_lock(self.data_dir, timeout=0):
                    self.recover()
            except StoreError:
                log.info("A writer is running; it repairs the store itself")

    def _open_collection(self, client: Any) -> Any:
        return client.get_or_create_collection(
            self.config.collection,
            embedding_function=self._ef,
            configuration={"hnsw": {"space": "cosine"}},
        )

    def collection(self) -> Any:
        """The collection, re-opened when another process has written since we looked."""
        if self._shared is None:
            return self._collection
        generation = read_or_none(self._path(GENERATION))
        client, epoch = self._shared.get(generation)
        if epoch != self._epoch:
            self._collection = self._open_collection(client)
            self._epoch = epoch
        return self._collection

    def recreate_collection(self) -> Any:
        """Drop the collection and create it empty (a rebuild refills it)."""
        if self._shared is not None:
            client, _ = self._shared.get(read_or_none(self._path(GENERATION)))
        else:
            client = self._collection._client
        with contextlib.suppress(Exception):  # absent when a previous attempt died here
            client.delete_collection(self.config.collection)
        self._collection = self._open_collection(client)
        if self._shared is not None:
            self._shared.invalidate()
            self._epoch = self._shared.epoch
        self.wrote()
        return self._collection

    def _path(self, name: str) -> Path:
        return self.data_dir / name

    def wrote(self) -> None:
        """Stamp a new generation, so other processes re-open their clients."""
        if self._shared is None:
            return
        stamp = uuid.uuid4().hex
        self.data_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path(GENERATION), stamp, durable=False)
        self._shared.wrote(stamp)

    # ---- the dirty marker --------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Mark the store as being written. The marker stays if the block fails or the
        process dies, so the next open repairs the store."""
        if self._dirty_depth == 0:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(self._path(DIRTY), json.dumps({"pid": os.getpid()}))
        self._dirty_depth += 1
        try:
            yield
        except BaseException:
            self._dirty_depth -= 1
            raise
        self._dirty_depth -= 1
        if self._dirty_depth == 0:
            with contextlib.suppress(FileNotFoundError):
                self._path(DIRTY).unlink()

    def needs_recovery(self) -> bool:
        return self._path(DIRTY).exists() or self._path(REBUILD_JOURNAL).exists()

    # ---- writing -------------------------------------------------------------------------
    def add(
        self,
        chunks: Sequence[Chunk],
        embeddings: Sequence[Sequence[float]],
        extra: dict[str, str | int] | None = None,
    ) -> None:
        """Upsert chunks; ``extra`` is merged into every chunk's metadata."""
        col = self.collection()
        for i in range(0, len(chunks), _BATCH):
            part = chunks[i : i + _BATCH]
            col.upsert(
                ids=[c.id for c in part],
                documents=[c.text for c in part],
                metadatas=[{**c.metadata(), **(extra or {})} for c in part],
                embeddings=[list(e) for e in embeddings[i : i + _BATCH]],
            )
        self.wrote()

    def put_document(
        self,
        chunks: Sequence[Chunk],
        embeddings: Sequence[Sequence[float]],
        *,
        added_at: str,
        added_by: str | None = None,
        pages: int | None = None,
    ) -> int:
        """Store one document's chunks, then delete its older versions. All chunks must
        share one source and doc_id. Returns how many old chunks were deleted.

        The new version is written first, so the document stays searchable throughout; each
        chunk records how many chunks the version has, which is how ``repair`` tells a
        complete version from one cut short by a crash."""
        if not chunks:
            raise ValueError("a document needs at least one chunk")
        source = chunks[0].source
        extra: dict[str, str | int] = {"doc_chunks": len(chunks), "added_at": added_at}
        if added_by:
            extra["added_by"] = added_by
        if pages is not None:
            extra["doc_pages"] = pages
        self.add(chunks, embeddings, extra)
        got = self.collection().get(where={"source": source}, include=["metadatas"])
        new_ids = {c.id for c in chunks}
        # every other chunk of this source: older versions, and chunks of this version
        # indexed differently before (without title and headings)
        old = [cid for cid in got["ids"] if cid not in new_ids]
        self.delete_ids(old)
        return len(old)

    def delete_ids(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        col = self.collection()
        for i in range(0, len(ids), _BATCH):
            col.delete(ids=list(ids[i : i + _BATCH]))
        self.wrote()

    def delete_source(self, source: str) -> int:
        ids = self.collection().get(where={"source": source}, include=[])["ids"]
        self.delete_ids(ids)
        return len(ids)

    # ---- repair (see retrieval.recovery; call under writer_lock) -------------------------------
    def scan(self) -> dict[str, dict[str, DocState]]:
        return recovery.scan(self)

    def repair(self) -> list[str]:
        return recovery.repair(self)

    def verify(self) -> list[str]:
        return recovery.verify(self)

    def recover(self) -> list[str]:
        return recovery.recover(self)

    def rebuild(self) -> int:
        return recovery.rebuild(self)

    # ---- reading -------------------------------------------------------------------------
    def records(self, include: list[str]) -> Iterator[tuple[str, str | None, dict | None]]:
        offset = 0
        while True:
            got = self.collection().get(include=include, limit=_BATCH, offset=offset)
            if not got["ids"]:
                return
            texts = got.get("documents") or [None] * len(got["ids"])
            metas = got.get("metadatas") or [None] * len(got["ids"])
            yield from zip(got["ids"], texts, metas, strict=False)
            offset += len(got["ids"])

    def count(self) -> int:
        return self.collection().count()

    def doc_ids_of(self, source: str) -> set[str]:
        got = self.collection().get(where={"source": source}, include=["metadatas"])
        return {m["doc_id"] for m in got["metadatas"] if m}

    def has_context(self, source: str) -> bool:
        """Whether ``source`` was indexed with its title and headings (every chunk ingested
        since contextual chunks carries a title); older documents are indexed again."""
        got = self.collection().get(where={"source": source}, include=["metadatas"], limit=1)
        return any((m or {}).get("title") for m in got["metadatas"])

    def iter_chunks(self) -> Iterator[tuple[str, str, str, int | None, str]]:
        """Every stored chunk as (id, text, source, page, context), in batches; context is
        the title and heading it is indexed under (``retrieval.context``)."""
        for cid, text, meta in self.records(include=["documents", "metadatas"]):
            meta = meta or {}
            text = text or ""
            yield cid, text, meta["source"], meta.get("page"), context_of(text, meta)

    def all_ids(self) -> list[str]:
        ids: list[str] = []
        offset = 0
        while True:
            got = self.collection().get(include=[], limit=_BATCH * 10, offset=offset)["ids"]
            if not got:
                return ids
            ids.extend(got)
            offset += len(got)

    def documents(self) -> list[DocumentInfo]:
        """What is indexed, one row per file (its newest complete version)."""
        rows = []
        for source, versions in sorted(self.scan().items()):
            complete = {d: s for d, s in versions.items() if s.complete} or versions
            doc_id = max(complete, key=lambda d: (complete[d].added_at, d))
            s = complete[doc_id]
            rows.append(
                DocumentInfo(
                    source=source,
                    doc_id=doc_id,
                    chunks=len(s.ids),
                    pages=s.doc_pages if s.doc_pages is not None else len(s.pages),
                    added_at=s.added_at or None,
                    added_by=s.added_by,
                )
            )
        return rows

    def query(self, vector: Sequence[float], k: int) -> list[Hit]:
        """Nearest chunks by cosine similarity, best first."""
        col = self.collection()
        n = min(k, col.count())
        if n <= 0:
            return []
        got = col.query(
            query_embeddings=[list(vector)],
            n_results=n,
            include=["documents", "metadatas", "distances"],
        )
        hits = []
        for cid, text, meta, dist in zip(
            got["ids"][0],
            got["documents"][0],
            got["metadatas"][0],
            got["distances"][0],
            strict=False,
        ):
            sim = 1.0 - float(dist)  # Chroma's cosine distance is 1 - cosine similarity
            hits.append(Hit(cid, text, meta["source"], meta.get("page"), score=sim, similarity=sim))
        return hits

    def embeddings(self, ids: Sequence[str]) -> dict[str, list[float]]:
        if not ids:
            return {}
        got = self.collection().get(ids=list(ids), include=["embeddings"])
        return {cid: list(vec) for cid, vec in zip(got["ids"], got["embeddings"], strict=False)}
