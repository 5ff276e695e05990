"""The Chroma store: the source of truth for chunks, their metadata and their embeddings.

Embedded (``PersistentClient`` under the data dir) by default; a Chroma server
(``HttpClient``) when ``chroma_host`` is set, through the same code. The mechanisms that
keep it whole live beside it: ``writer_lock`` (one writer at a time on a host) and
``lease`` (one writer at a time across hosts sharing a server), ``recovery`` (complete
documents only, resumable rebuilds), ``fresh_client`` (fresh reads across processes) and
``store_state`` (which collection is serving, and a change counter every host can read).

A rebuild fills a new collection beside the serving one and then switches the pointer,
so searches running meanwhile read the old collection whole; a read that meets a
collection dropped under it re-reads the pointer and runs again on the new one. "Meets"
covers what Chroma 1.x does when another process drops the collection during a read: it
raises "does not exist" or "Missing metadata segment", or the read comes back torn (a
query's ids without their records, a ``get`` or a count with nothing), see ``_read``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval import recovery
from retrieval.config import RetrievalConfig
from retrieval.context import context_of
from retrieval.embedder_check import check_embedder as check
from retrieval.errors import StoreError
from retrieval.files import read_or_none, write_atomic
from retrieval.fresh_client import GENERATION, shared_client
from retrieval.late_interaction import Tokens, TokenStore
from retrieval.lease import ChromaLease
from retrieval.recovery import REBUILD_JOURNAL, DocState
from retrieval.store_state import (
    ChromaState,
    FileState,
    StoreState,
    is_chunk_collection,
    is_dropped,
    is_not_found,
    next_collection,
)
from retrieval.types import Chunk, Embedder, Hit
from retrieval.writer_lock import is_held, writer_lock

log = logging.getLogger(__name__)

_BATCH = 1000
# chunks read by id in one call: well under SQLite's 32,766 variables, which Chroma's reads
# of more ids at once exceed
_READ_BATCH = 5000
DIRTY = "chroma.dirty"
EMBEDDER_KEY = "handbook_rag:embedder"  # collection metadata: the signature of the vectors
# A chunk's text is kept in its metadata under this key, not as a Chroma document: Chroma
# builds a full-text (trigram) index over documents, which nothing here searches and which
# took about 40 % of the ingest's upserts (BENCHMARKS.md, stop 28). Chunks written before
# stop 28 still have theirs as the document; reads take either (``_texts``).
TEXT_KEY = "text"
# how often a replica on a Chroma server re-reads the shared state (serving collection,
# change counter): the longest it serves a switched-away collection or a stale BM25 index
SERVER_REFRESH_S = 1.0

__all__ = ["DIRTY", "GENERATION", "REBUILD_JOURNAL", "ChromaStore", "DocumentInfo"]


def _looks_torn(got: Any) -> bool:
    """A read's result as Chroma gives it when the collection was dropped during the read:
    nothing (a count of 0, no ids), or ids whose records are gone. Cheap; true also of an
    empty store's reads, so ``_read`` asks the pointer before it believes it."""
    if isinstance(got, int):
        return got == 0
    if not isinstance(got, dict):
        return False
    ids, metas = got.get("ids"), got.get("metadatas")
    if ids and isinstance(ids[0], list):  # a query's: one list per query vector
        ids, metas = ids[0], metas[0] if metas else None
    return not ids or (metas is not None and None in metas)


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


def _texts(got: dict[str, Any]) -> Iterator[tuple[str, str | None, dict | None]]:
    """(id, text, metadata) of each chunk of a Chroma ``get`` result that included
    documents and metadatas; the text from the metadata (``TEXT_KEY``), or from the document
    for a chunk written before it moved there; the metadata without the text."""
    ids = got["ids"]
    docs = got.get("documents") or [None] * len(ids)
    metas = got.get("metadatas") or [None] * len(ids)
    for cid, doc, meta in zip(ids, docs, metas, strict=False):
        if meta is not None and TEXT_KEY in meta:
            meta = dict(meta)
            doc = meta.pop(TEXT_KEY)
        yield cid, doc, meta


def _lines(value: object) -> tuple[str, ...]:
    return tuple(line for line in str(value).splitlines() if line) if value else ()


# a stored chunk as the BM25 index takes it: (id, text, source, page, effective, supersedes,
# context)
ChunkRow = tuple[str, str, str, int | None, str | None, tuple[str, ...], str]


def chunk_row(cid: str, text: str, meta: dict) -> ChunkRow:
    """A chunk's BM25 row from its text and its metadata (without the text)."""
    return (
        cid,
        text,
        meta["source"],
        meta.get("page"),
        meta.get("effective"),
        _lines(meta.get("supersedes")),
        context_of(text, meta),
    )


@dataclass(frozen=True)
class DocumentInfo:
    source: str
    doc_id: str
    chunks: int
    pages: int
    added_at: str | None = None  # ISO 8601, UTC
    added_by: str | None = None
    effective: str | None = None  # ISO date (2026-09-08)
    effective_origin: str | None = None  # where it came from (see ingest.dates)
    supersedes: tuple[str, ...] = ()  # what the document says it replaces

    @property
    def name(self) -> str:
        """The file's name as its user knows it (the same as ``source``)."""
        return self.source


@dataclass(frozen=True)
class NewDocument:
    """A document's new version, as ``ChromaStore.put_documents`` stores it: its chunks (one
    source, one doc_id), their vectors and token vectors (``tokens``, or None), and what
    every chunk of it records about the document."""

    chunks: Sequence[Chunk]
    embeddings: Sequence[Sequence[float]]
    added_at: str
    added_by: str | None = None
    pages: int | None = None
    effective: str | None = None
    effective_origin: str | None = None
    supersedes: Sequence[str] = ()
    tokens: Sequence[Tokens] | None = None

    def metadata(self) -> dict[str, str | int]:
        """The document's fields, on each of its chunks; ``doc_chunks`` is how ``repair``
        knows the version whole."""
        extra: dict[str, str | int] = {"doc_chunks": len(self.chunks), "added_at": self.added_at}
        if self.added_by:
            extra["added_by"] = self.added_by
        if self.pages is not None:
            extra["doc_pages"] = self.pages
        if self.effective:
            extra["effective"] = self.effective
            extra["effective_origin"] = self.effective_origin or "given"
        if self.supersedes:
            extra["supersedes"] = "\n".join(self.supersedes)
        return extra

    def rows(self) -> list[ChunkRow]:
        """Its chunks as ``ChromaStore.iter_chunks`` reads them back once written, made from
        the metadata ``put_documents`` writes: the ingest's closing BM25 sync takes them
        from here instead of reading back what it has just written (``LiveBM25.sync``)."""
        doc = self.metadata()
        return [chunk_row(c.id, c.text, {**c.metadata(), **doc}) for c in self.chunks]


def _any_source(sources: Sequence[str]) -> dict[str, Any]:
    """A ``where`` matching chunks of any of ``sources``."""
    if len(sources) == 1:
        return {"source": sources[0]}
    return {"source": {"$in": list(sources)}}


class ChromaStore:
    """Chunks with their metadata and embeddings, in one Chroma collection."""

    def __init__(
        self, config: RetrievalConfig, embedder: Embedder, *, check_embedder: bool = True
    ) -> None:
        self.config = config
        self.data_dir = config.data_dir
        self.embedder = embedder
        # the chunks' token vectors for late interaction, per embedder (they are its output)
        made_by = getattr(embedder, "signature", None) or embedder.name
        key = hashlib.sha256(made_by.encode()).hexdigest()[:12]
        self.tokens = TokenStore(config.data_dir / "tokens" / f"{key}.sqlite")
        self._ef = _chroma_embedding_function(embedder)
        self._shared = None if config.chroma_host else shared_client(config.chroma_dir)
        self._base = config.collection
        self._epoch = -1
        self._dirty_depth = 0
        self._lease: ChromaLease | None = None
        self._checked = float("-inf")  # server: when the shared state was last read
        self._generation: int | None = None  # server: the change counter seen then
        self._active: str | None = None
        self._unannounced = False
        # the ids written, updated or deleted since ``track_changes`` (None: any, after a
        # rebuild), and of those the ones deleted last
        self._changed: set[str] | None = set()
        self._deleted: set[str] = set()
        self._state: StoreState
        try:
            if config.chroma_host:
                import chromadb
                from chromadb.config import Settings as ChromaSettings

                self._client = chromadb.HttpClient(
                    host=config.chroma_host,
                    port=config.chroma_port,
                    settings=ChromaSettings(anonymized_telemetry=False),
                )
                self._state = ChromaState(self._client, self._base)
                self._lease = ChromaLease(self._client, self._base, self.where)
            else:
                self._state = FileState(self.data_dir, self._base)
            self.collection()
        except StoreError:
            raise
        except Exception as exc:  # chromadb raises many types; all mean the same to a user
            raise StoreError(f"Could not open the Chroma store at {self.where}: {exc}") from exc
        if check_embedder and self._signature:  # a test's stand-in may have none
            check(self.recorded_embedder(), self._signature)
        if self.needs_recovery():
            try:
                with self.writer(timeout=0):
                    self.recover()
            except StoreError:
                log.info("A writer is running; it repairs the store itself")

    # ---- which embedder made the vectors (see retrieval.embedder_check) ----------------------
    @property
    def _signature(self) -> str | None:
        return getattr(self.embedder, "signature", None)

    def recorded_embedder(self) -> str | None:
        """The signature stored with the vectors; None for an empty store. A store written
        before signatures were recorded was written by the torch path."""
        col = self.collection()
        recorded = (col.metadata or {}).get(EMBEDDER_KEY)
        if recorded is None and col.count() > 0:
            return f"{self.embedder.name}|torch|fp32"
        return recorded

    def _record_embedder(self, col: Any) -> None:
        sig = self._signature
        if sig and (col.metadata or {}).get(EMBEDDER_KEY) != sig:
            meta = {k: v for k, v in (col.metadata or {}).items() if k != "hnsw:space"}
            col.modify(metadata={**meta, EMBEDDER_KEY: sig})

    @property
    def where(self) -> str:
        if self.config.chroma_host:
            return f"{self.config.chroma_host}:{self.config.chroma_port}"
        return str(self.config.chroma_dir)

    # ---- which collection serves -----------------------------------------------------------
    def _client_now(self) -> Any:
        if self._shared is None:
            return self._client
        client, _ = self._shared.get(self._stamp)
        return client

    def _create(self, client: Any, name: str) -> Any:
        """Open or create ``name``; a new collection records the embedder as it is made (a
        later metadata change could race with readers opening the collection)."""
        sig = self._signature
        return client.get_or_create_collection(
            name,
            embedding_function=self._ef,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={EMBEDDER_KEY: sig} if sig else None,
        )

    def _open_active(self, client: Any) -> Any:
        """The serving collection. Opened, never created, unless the pointer still names it
        after a miss: a reader must not re-create a collection a rebuild just dropped."""
        name = self._state.read()["active"]
        try:
            col = client.get_collection(name, embedding_function=self._ef)
        except Exception as exc:
            if not is_not_found(exc):
                raise
            again = self._state.read()["active"]
            col = self._create(client, again) if again == name else self._open_active(client)
        self._active = col.name
        return col

    def collection(self) -> Any:
        """The serving collection, re-opened when another process has written since we
        looked (embedded) or the shared pointer moved (server, checked once a second)."""
        if self._shared is None:
            now = time.monotonic()
            if now - self._checked >= SERVER_REFRESH_S:
                state = self._state.read()
                self._generation = int(state["generation"])
                if state["active"] != self._active:
                    self._collection = self._open_active(self._client)
                self._checked = now
            return self._collection
        client, epoch = self._shared.get(self._stamp)
        if epoch != self._epoch:
            self._collection = self._open_active(client)
            self._epoch = epoch
        return self._collection

    def _read(self, op: Callable[[Any], Any]) -> Any:
        """Run a read on the serving collection; if a rebuild dropped it meanwhile (the read
        failed as a dropped collection fails, or came back torn while the pointer has
        moved on), follow the pointer to the new one and run it again."""
        try:
            col = self.collection()
            got = op(col)
            if not _looks_torn(got) or self.active_name() == col.name:
                return got
        except Exception as exc:
            if not is_dropped(exc):
                raise
        if self._shared is None:
            self._checked = float("-inf")
        else:
            self._epoch = -1
        return op(self.collection())

    def active_name(self) -> str:
        return self._state.read()["active"]

    def begin_rebuild(self) -> Any:
        """A new, empty collection beside the serving one, for a rebuild to fill. Call
        under the writer lock; ``switch_to`` makes it serve."""
        client = self._client_now()
        name = next_collection(self._base, self.active_name())
        with contextlib.suppress(Exception):  # debris of an attempt that died here
            client.delete_collection(name)
        return self._create(client, name)  # records the embedder the rebuild re-embeds with

    def switch_to(self, col: Any) -> None:
        """Make ``col`` the serving collection for every process and host, then drop the
        ones it replaces. A search still reading an old one re-runs on ``col``."""
        self._state.write(active=col.name)
        self._changed = None  # every chunk written anew
        self._collection, self._active = col, col.name
        if self._shared is not None:
            self._shared.invalidate()  # other stores in this process follow the pointer
            self._epoch = self._shared.epoch
        self.wrote()
        client = self._client_now()
        for found in client.list_collections():
            name = getattr(found, "name", found)
            if is_chunk_collection(self._base, name) and name != col.name:
                with contextlib.suppress(Exception):
                    client.delete_collection(name)

    def _path(self, name: str) -> Path:
        return self.data_dir / name

    def _stamp(self) -> str | None:
        """The generation the last writer on this data dir stamped (embedded store)."""
        return read_or_none(self._path(GENERATION))

    def wrote(self) -> None:
        """Stamp a new generation, so other processes re-open their clients (embedded);
        remember to tell other hosts when the writer is done (server)."""
        self._unannounced = True
        if self._shared is None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # stamped and claimed under the lock searches read it under: a search in another
        # thread (the chat's sessions while the admin page ingests) must not take our own
        # stamp for another process's write and re-open the client
        self._shared.wrote(
            lambda stamp: write_atomic(self._path(GENERATION), stamp, durable=False),
            uuid.uuid4().hex,
        )

    # ---- one writer at a time -------------------------------------------------------------
    @contextlib.contextmanager
    def writer(self, timeout: float = 30.0) -> Iterator[None]:
        """Hold the right to write: the data dir's lock file (processes on this host) and,
        with a Chroma server, its lease (hosts sharing it). Waits up to ``timeout``
        seconds for each, then raises ``StoreError`` naming the holder. On leaving, other
        hosts are told that the chunks changed (their BM25 indexes follow)."""
        with writer_lock(self.data_dir, timeout):
            if self._lease is None:
                yield
                return
            with self._lease.held(timeout):
                self._unannounced = False
                try:
                    yield
                finally:
                    if self._unannounced:
                        self._state.write(generation=int(self._state.read()["generation"]) + 1)
                        self._unannounced = False

    def writer_active(self) -> bool:
        """Whether a writer on this host (this process included) holds the writer lock."""
        return is_held(self.data_dir)

    def change_marker(self) -> int | None:
        """What moves when a writer on any host has changed the chunks: the server's
        change counter (read at most once a second). None for the embedded store, whose
        BM25 index is shared on disk and swapped under its readers' eyes instead."""
        if self._shared is not None:
            return None
        self.collection()
        return self._generation

    # ---- what a writer changed -------------------------------------------------------------
    def track_changes(self) -> None:
        """From now on, note the ids of the chunks written, updated or deleted
        (``changed_ids``), and of those deleted and not written since (``deleted_ids``)."""
        self._changed, self._deleted = set(), set()

    def changed_ids(self) -> frozenset[str] | None:
        """The ids of the chunks written, updated or deleted since ``track_changes``; None
        when any may have been (the collection was rebuilt)."""
        return None if self._changed is None else frozenset(self._changed)

    def deleted_ids(self) -> frozenset[str] | None:
        """Of ``changed_ids``, those deleted last (gone from the store); None as there."""
        return None if self._changed is None else frozenset(self._deleted)

    def _noted(self, ids: Sequence[str], *, deleted: bool = False) -> None:
        if self._changed is not None:
            self._changed.update(ids)
            if deleted:
                self._deleted.update(ids)
            else:
                self._deleted.difference_update(ids)

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
        extra: dict[str, str | int] | Sequence[dict[str, str | int]] | None = None,
    ) -> None:
        """Upsert chunks; ``extra`` is merged into every chunk's metadata (one dict), or
        into each chunk's own (one dict a chunk)."""
        extras = [extra or {}] * len(chunks) if not isinstance(extra, Sequence) else extra
        col = self.collection()
        if col.count() == 0:
            self._record_embedder(col)
        self._noted([c.id for c in chunks])  # before: a write that fails half-way counts
        for i in range(0, len(chunks), _BATCH):
            part = chunks[i : i + _BATCH]
            self.upsert_into(
                col,
                [c.id for c in part],
                [c.text for c in part],
                [{**c.metadata(), **x} for c, x in zip(part, extras[i : i + _BATCH], strict=True)],
                [list(e) for e in embeddings[i : i + _BATCH]],
            )
        self.wrote()

    @staticmethod
    def upsert_into(
        col: Any,
        ids: Sequence[str],
        texts: Sequence[str],
        metas: Sequence[dict],
        embeddings: Sequence[Sequence[float]],
    ) -> None:
        """Write chunks into ``col``, each text in its metadata (``TEXT_KEY``)."""
        col.upsert(
            ids=list(ids),
            metadatas=[{**m, TEXT_KEY: t} for m, t in zip(metas, texts, strict=True)],
            embeddings=embeddings,
        )

    def put_tokens(self, chunks: Sequence[Chunk], tokens: Sequence[Tokens] | None) -> None:
        """Keep the chunks' token vectors and word pieces (late interaction) beside Chroma,
        once it has the chunks; nothing when ``None``."""
        if tokens is not None:
            self.tokens.put(zip((c.id for c in chunks), tokens, strict=True))

    def put_documents(self, docs: Sequence[NewDocument]) -> int:
        """Store new versions of documents of different sources, with one write to Chroma
        and one to the token store (``NewDocument.tokens``, see ``put_tokens``), then
        delete their older versions. Returns how many old chunks were deleted.

        The new versions are written first, so each document stays searchable throughout;
        each chunk records how many chunks its version has, which is how ``repair`` tells a
        complete version from one cut short by a crash, whatever else the write held.
        Writing many small documents at once matters: each write to Chroma costs about
        30 ms besides its chunks (BENCHMARKS.md, "Stop 31")."""
        if not docs:
            return 0
        if not all(d.chunks for d in docs):
            raise ValueError("a document needs at least one chunk")
        sources = [d.chunks[0].source for d in docs]
        if len(set(sources)) < len(sources):
            raise ValueError("one version of a source at a time")
        chunks = [c for d in docs for c in d.chunks]
        self.add(
            chunks,
            [e for d in docs for e in d.embeddings],
            [x for d in docs for x in [d.metadata()] * len(d.chunks)],
        )
        kept = [d for d in docs if d.tokens is not None]  # one commit for all of them
        if kept:
            chunks_kept = [c for d in kept for c in d.chunks]
            self.put_tokens(chunks_kept, [t for d in kept for t in d.tokens or ()])
        new_ids = {c.id for c in chunks}
        got = self.collection().get(where=_any_source(sources), include=[])
        # every other chunk of these sources: older versions, and chunks of these versions
        # indexed differently before (without title and headings)
        old = [cid for cid in got["ids"] if cid not in new_ids]
        self.delete_ids(old)
        return len(old)

    def delete_ids(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        col = self.collection()
        self._noted(ids, deleted=True)  # before: a delete that fails half-way counts
        for i in range(0, len(ids), _BATCH):
            col.delete(ids=list(ids[i : i + _BATCH]))
        self.tokens.delete(list(ids))
        self.wrote()

    def effective_of(self, source: str) -> tuple[str | None, str | None]:
        """A document's stored effective date and its origin ((None, None) if none)."""
        got = self.collection().get(where={"source": source}, limit=1, include=["metadatas"])
        meta = (got["metadatas"] or [None])[0] or {}
        return meta.get("effective"), meta.get("effective_origin")

    def set_effective(self, source: str, effective: str, origin: str = "given") -> int:
        """Record a document's effective date on every chunk of it (metadata only: the
        embeddings stay). Returns how many chunks were updated; 0 when not indexed."""
        col = self.collection()
        ids = col.get(where={"source": source}, include=[])["ids"]
        meta = {"effective": effective, "effective_origin": origin}
        self._noted(ids)
        for i in range(0, len(ids), _BATCH):
            part = ids[i : i + _BATCH]
            col.update(ids=part, metadatas=[dict(meta) for _ in part])
        if ids:
            self.wrote()
        return len(ids)

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
    def records(
        self, include: list[str], ids: Sequence[str] | None = None
    ) -> Iterator[tuple[str, str | None, dict | None]]:
        """Every stored chunk (or those of ``ids`` still stored) as (id, text, metadata), in
        batches; ``include`` names what is wanted (``"documents"``: the text,
        ``"metadatas"``: the rest), and what is not wanted is None. The text is never in the
        metadata returned."""
        wanted = ["documents", "metadatas"] if "documents" in include else ["metadatas"]
        # by id, not by offset: Chroma walks past every skipped row, so paging a 100,000-chunk
        # store by offset took 20-30 s, by id 5 s (BENCHMARKS.md, stop 28)
        ids = self.all_ids() if ids is None else list(ids)
        for start in range(0, len(ids), _READ_BATCH):
            part = ids[start : start + _READ_BATCH]
            got = self._read(lambda c: c.get(ids=part, include=wanted))  # noqa: B023
            for cid, text, meta in _texts(got):
                yield (
                    cid,
                    text if "documents" in include else None,
                    meta if "metadatas" in include else None,
                )

    def count(self) -> int:
        return self._read(lambda c: c.count())

    def doc_ids_of(self, source: str) -> set[str]:
        got = self._read(lambda c: c.get(where={"source": source}, include=["metadatas"]))
        return {m["doc_id"] for m in got["metadatas"] if m}

    def has_context(self, source: str) -> bool:
        """Whether ``source`` was indexed with its title and headings (every chunk ingested
        since contextual chunks carries a title); older documents are indexed again."""
        got = self._read(lambda c: c.get(where={"source": source}, include=["metadatas"], limit=1))
        return any((m or {}).get("title") for m in got["metadatas"])

    def page_chunks(self, source: str, page: int | None) -> list[str]:
        """The texts of the chunks of one page of ``source`` (of the whole file when
        ``page`` is None), in the order they were written, which is the page's order."""
        where: dict = {"source": source}
        if page is not None:
            where = {"$and": [{"source": source}, {"page": page}]}
        got = self._read(lambda c: c.get(where=where, include=["documents", "metadatas"]))
        return [t for _, t, _ in _texts(got) if t]

    def iter_chunks(self, ids: Sequence[str] | None = None) -> Iterator[ChunkRow]:
        """Every stored chunk (or those of ``ids`` still stored) as (id, text, source, page,
        effective, supersedes, context), in batches (``BM25Index.build``'s rows); context is
        the title and heading it is indexed under (``retrieval.context``)."""
        for cid, text, meta in self.records(include=["documents", "metadatas"], ids=ids):
            if meta is None or text is None:  # deleted while we read
                continue
            yield chunk_row(cid, text, meta)

    def all_ids(self) -> list[str]:
        return self._read(lambda c: c.get(include=[]))["ids"]

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
                    effective=s.effective,
                    effective_origin=s.effective_origin,
                    supersedes=s.supersedes,
                )
            )
        return rows

    def query(
        self, vector: Sequence[float], k: int, *, sources: Sequence[str] | None = None
    ) -> list[Hit]:
        """Nearest chunks by cosine similarity, best first (of ``sources`` only, if given)."""
        where = {"source": {"$in": list(sources)}} if sources else None

        def nearest(col: Any) -> Any:
            if k <= 0:
                return None
            # no count() first: Chroma returns what it has when asked for more, and counting
            # costs a 100k-chunk store as much as the search (bench.retrieval_bench)
            return col.query(
                query_embeddings=[list(vector)],
                n_results=k,
                where=where,
                include=["documents", "metadatas", "distances"],
            )

        got = self._read(nearest)
        if got is None:
            return []
        hits = []
        first = {key: got[key][0] for key in ("ids", "documents", "metadatas")}
        for (cid, text, meta), dist in zip(_texts(first), got["distances"][0], strict=False):
            if meta is None or text is None:
                # a chunk deleted or written at this instant: the vector index has it, its
                # record is (or is not yet) gone; it is not a whole chunk, so not a hit
                continue
            sim = 1.0 - float(dist)  # Chroma's cosine distance is 1 - cosine similarity
            hits.append(
                Hit(
                    cid,
                    text,
                    meta["source"],
                    meta.get("page"),
                    score=sim,
                    similarity=sim,
                    effective=meta.get("effective"),
                    supersedes=_lines(meta.get("supersedes")),
                    context=context_of(text, meta),
                )
            )
        return hits

    def embeddings(self, ids: Sequence[str]) -> dict[str, list[float]]:
        if not ids:
            return {}
        got = self._read(lambda c: c.get(ids=list(ids), include=["embeddings"]))
        return {cid: list(vec) for cid, vec in zip(got["ids"], got["embeddings"], strict=False)}
