"""The Chroma store: the source of truth for chunks, their metadata and their embeddings.

Embedded (``PersistentClient`` under the data dir) by default; a Chroma server
(``HttpClient``) when ``chroma_host`` is set, through the same code.

Durability, in four small mechanisms:

- **One writer at a time**: ``writer_lock`` (a file lock under the data dir, with a sidecar
  that names the holder so a second writer can say who it waited for).
- **Complete documents only**: every chunk carries ``doc_chunks``, the number of chunks its
  document has. A document is complete when Chroma holds that many chunks of its
  ``(source, doc_id)``; ``repair`` deletes the chunks of incomplete documents, and of older
  versions superseded by a complete newer one. Writers set a ``chroma.dirty`` marker while
  they write and remove it when done; a store opened while the marker is there (after a
  crash) is repaired first, if no writer is running.
- **Resumable rebuild**: ``rebuild`` first writes every chunk to a journal file (atomically),
  then re-creates the collection from it; a crash in between is finished on the next open.
- **Fresh reads across processes**: an embedded ``PersistentClient`` keeps its vector index
  in memory and does not see another process's writes. Writers stamp a new
  ``chroma.generation`` after each write; a reader that sees a new stamp re-opens its client.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import StoreError
from app.settings import Settings
from retrieval.types import Chunk, Embedder, Hit

log = logging.getLogger(__name__)

_BATCH = 1000
_EMBED_BATCH = 256
DIRTY = "chroma.dirty"
GENERATION = "chroma.generation"
REBUILD_JOURNAL = "rebuild.jsonl"


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


@dataclass
class _DocState:
    """What a scan found of one version of one document."""

    ids: list[str] = field(default_factory=list)
    expected: int | None = None  # doc_chunks; None for chunks written before it existed
    pages: set[int] = field(default_factory=set)
    doc_pages: int | None = None
    added_at: str = ""
    added_by: str | None = None

    @property
    def complete(self) -> bool:
        return self.expected is None or len(self.ids) >= self.expected


# ---- files under the data dir -----------------------------------------------------------------
def _write_atomic(path: Path, text: str, *, durable: bool = True) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def holder_file(settings: Settings) -> Path:
    return settings.lock_file.with_name(settings.lock_file.name + ".holder")


def _describe_holder(settings: Settings) -> str:
    try:
        h = json.loads(holder_file(settings).read_text(encoding="utf-8"))
        return f"pid {h['pid']} on {h['host']} running `{h['command']}` since {h['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def writer_lock(settings: Settings, timeout: float = 30.0) -> Iterator[None]:
    """One writer at a time across processes (CLI, admin page, recovery at start).

    Waits up to ``timeout`` seconds, then raises ``StoreError`` naming the holder. The lock
    is an OS file lock: it is released when its process dies, even by ``kill -9``.
    """
    from filelock import FileLock, Timeout

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.lock_file), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise StoreError(
            f"Another writer is using {settings.data_dir}: {_describe_holder(settings)}. "
            f"Waited {timeout:g} s; wait for it to finish and try again."
        ) from None
    try:
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300],
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        _write_atomic(holder_file(settings), json.dumps(holder), durable=False)
        yield
    finally:
        with contextlib.suppress(OSError):
            holder_file(settings).unlink()
        lock.release()


# ---- one embedded client per directory and process ----------------------------------------------
class _SharedClient:
    """The process's ``PersistentClient`` for one directory, re-opened when another process
    has written (a new generation stamp). The old client is not stopped: a query running on
    it in another thread finishes; it is freed when no collection refers to it any more."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.client: Any = None
        self.generation: str | None = None
        self.epoch = 0

    def get(self, generation: str | None) -> tuple[Any, int]:
        with self.lock:
            if self.client is None or generation != self.generation:
                import chromadb
                from chromadb.api.shared_system_client import SharedSystemClient
                from chromadb.config import Settings as ChromaSettings

                if self.client is not None:
                    # chromadb caches one system per path; drop ours so the next client
                    # reads the files afresh
                    ident = getattr(self.client, "_identifier", str(self.path))
                    SharedSystemClient._identifier_to_system.pop(ident, None)
                    SharedSystemClient._identifier_to_refcount.pop(ident, None)
                self.path.mkdir(parents=True, exist_ok=True)
                self.client = chromadb.PersistentClient(
                    path=str(self.path), settings=ChromaSettings(anonymized_telemetry=False)
                )
                self.generation = generation
                self.epoch += 1
            return self.client, self.epoch

    def wrote(self, generation: str) -> None:
        """This process wrote: its own client is current."""
        with self.lock:
            self.generation = generation

    def invalidate(self) -> None:
        """The collection was re-created: every store re-fetches it."""
        with self.lock:
            self.epoch += 1


_SHARED: dict[str, _SharedClient] = {}
_SHARED_LOCK = threading.Lock()


def _shared_client(path: Path) -> _SharedClient:
    key = str(path.resolve())
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = _SharedClient(path)
        return _SHARED[key]


class ChromaStore:
    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self._ef = _chroma_embedding_function(embedder)
        self._shared = None if settings.chroma_host else _shared_client(settings.chroma_dir)
        self._epoch = -1
        self._dirty_depth = 0
        try:
            if settings.chroma_host:
                import chromadb
                from chromadb.config import Settings as ChromaSettings

                client = chromadb.HttpClient(
                    host=settings.chroma_host,
                    port=settings.chroma_port,
                    settings=ChromaSettings(anonymized_telemetry=False),
                )
                self._collection = self._open_collection(client)
            else:
                self._col()
        except StoreError:
            raise
        except Exception as exc:  # chromadb raises many types; all mean the same to a user
            where = (
                f"{settings.chroma_host}:{settings.chroma_port}"
                if settings.chroma_host
                else settings.chroma_dir
            )
            raise StoreError(f"Could not open the Chroma store at {where}: {exc}") from exc
        if self.needs_recovery():
            try:
                with writer_lock(settings, timeout=0):
                    self.recover()
            except StoreError:
                log.info("A writer is running; it repairs the store itself")

    def _open_collection(self, client: Any) -> Any:
        return client.get_or_create_collection(
            self.settings.collection,
            embedding_function=self._ef,
            configuration={"hnsw": {"space": "cosine"}},
        )

    def _col(self) -> Any:
        """The collection, re-opened when another process has written since we looked."""
        if self._shared is None:
            return self._collection
        generation = _read(self._path(GENERATION))
        client, epoch = self._shared.get(generation)
        if epoch != self._epoch:
            self._collection = self._open_collection(client)
            self._epoch = epoch
        return self._collection

    def _path(self, name: str) -> Path:
        return self.settings.data_dir / name

    def _wrote(self) -> None:
        if self._shared is None:
            return
        stamp = uuid.uuid4().hex
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(self._path(GENERATION), stamp, durable=False)
        self._shared.wrote(stamp)

    # ---- the dirty marker --------------------------------------------------------------------
    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Mark the store as being written. The marker stays if the block fails or the
        process dies, so the next open repairs the store."""
        if self._dirty_depth == 0:
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            _write_atomic(self._path(DIRTY), json.dumps({"pid": os.getpid()}))
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
        col = self._col()
        for i in range(0, len(chunks), _BATCH):
            part = chunks[i : i + _BATCH]
            col.upsert(
                ids=[c.id for c in part],
                documents=[c.text for c in part],
                metadatas=[{**c.metadata(), **(extra or {})} for c in part],
                embeddings=[list(e) for e in embeddings[i : i + _BATCH]],
            )
        self._wrote()

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
        source, doc_id = chunks[0].source, chunks[0].doc_id
        extra: dict[str, str | int] = {"doc_chunks": len(chunks), "added_at": added_at}
        if added_by:
            extra["added_by"] = added_by
        if pages is not None:
            extra["doc_pages"] = pages
        self.add(chunks, embeddings, extra)
        got = self._col().get(where={"source": source}, include=["metadatas"])
        new_ids = {c.id for c in chunks}
        old = [
            cid
            for cid, meta in zip(got["ids"], got["metadatas"], strict=False)
            if cid not in new_ids and (meta or {}).get("doc_id") != doc_id
        ]
        self.delete_ids(old)
        return len(old)

    def delete_ids(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        col = self._col()
        for i in range(0, len(ids), _BATCH):
            col.delete(ids=list(ids[i : i + _BATCH]))
        self._wrote()

    def delete_source(self, source: str) -> int:
        ids = self._col().get(where={"source": source}, include=[])["ids"]
        self.delete_ids(ids)
        return len(ids)

    # ---- repair ------------------------------------------------------------------------------
    def scan(self) -> dict[str, dict[str, _DocState]]:
        """Every stored version of every document: ``{source: {doc_id: state}}``."""
        docs: dict[str, dict[str, _DocState]] = {}
        for cid, _, meta in self._records(include=["metadatas"]):
            meta = meta or {}
            state = docs.setdefault(str(meta.get("source", "")), {}).setdefault(
                str(meta.get("doc_id", "")), _DocState()
            )
            state.ids.append(cid)
            if "doc_chunks" in meta:
                state.expected = int(meta["doc_chunks"])
            if meta.get("page") is not None:
                state.pages.add(int(meta["page"]))
            if "doc_pages" in meta:
                state.doc_pages = int(meta["doc_pages"])
            state.added_at = max(state.added_at, str(meta.get("added_at", "")))
            if meta.get("added_by"):
                state.added_by = str(meta["added_by"])
        return docs

    def repair(self) -> list[str]:
        """Delete the chunks of incomplete documents and of versions superseded by a newer
        complete one. Call under ``writer_lock``. Returns what was removed, for the log."""
        removed: list[str] = []
        doomed: list[str] = []
        for source, versions in self.scan().items():
            complete = {d: s for d, s in versions.items() if s.complete}
            keep = max(complete, key=lambda d: (complete[d].added_at, d)) if complete else None
            for doc_id, state in versions.items():
                if doc_id == keep:
                    continue
                why = "superseded" if state.complete else f"{len(state.ids)}/{state.expected}"
                removed.append(f"{source} ({doc_id[:12]}, {why})")
                doomed.extend(state.ids)
        self.delete_ids(doomed)
        return removed

    def verify(self) -> list[str]:
        """Problems that would make a document half-searchable: an incomplete version, two
        versions of one source, chunks the vector index cannot find. Empty when healthy."""
        problems = []
        for source, versions in sorted(self.scan().items()):
            if len(versions) > 1:
                problems.append(f"{source}: {len(versions)} versions stored")
            for doc_id, state in versions.items():
                if not state.complete:
                    problems.append(
                        f"{source} ({doc_id[:12]}): {len(state.ids)} of {state.expected} chunks"
                    )
        col = self._col()
        n = col.count()
        if n:
            ids = set(self.all_ids())
            dim = len(col.get(limit=1, include=["embeddings"])["embeddings"][0])
            found = set(
                col.query(query_embeddings=[[1.0] * dim], n_results=n, include=[])["ids"][0]
            )
            if found != ids:
                problems.append(
                    f"vector index: {len(ids - found)} chunks not searchable, "
                    f"{len(found - ids)} unknown ids"
                )
        return problems

    def recover(self) -> list[str]:
        """Finish an interrupted rebuild, delete half-written documents, clear the marker.
        Call under ``writer_lock``."""
        for tmp in self.settings.data_dir.glob(f".{REBUILD_JOURNAL}.*.tmp"):
            tmp.unlink(missing_ok=True)
        if self._path(REBUILD_JOURNAL).exists():
            self._finish_rebuild()
        with self.writing():  # a crash during the repair leaves the marker for the next one
            removed = self.repair()
        if removed:
            log.warning("Removed half-written documents: %s", "; ".join(removed))
        return removed

    # ---- rebuild -----------------------------------------------------------------------------
    def rebuild(self) -> int:
        """Re-create the collection from its stored texts and metadata, re-embedding every
        chunk with the current embedder (after a model change, or to shed a damaged vector
        index). Call under ``writer_lock``. Resumable: see ``recover``."""
        journal = self._path(REBUILD_JOURNAL)
        lines = (
            json.dumps({"id": cid, "text": text, "meta": meta}, ensure_ascii=False)
            for cid, text, meta in self._records(include=["documents", "metadatas"])
        )
        tmp = journal.with_name(f".{journal.name}.{uuid.uuid4().hex[:8]}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, journal)
        return self._finish_rebuild()

    def _finish_rebuild(self) -> int:
        journal = self._path(REBUILD_JOURNAL)
        records = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
        with self.writing():
            if self._shared is not None:
                client, _ = self._shared.get(_read(self._path(GENERATION)))
            else:
                client = self._collection._client
            with contextlib.suppress(Exception):  # absent when a previous attempt died here
                client.delete_collection(self.settings.collection)
            self._collection = self._open_collection(client)
            if self._shared is not None:
                self._shared.invalidate()
                self._epoch = self._shared.epoch
            self._wrote()
            col = self._collection
            for i in range(0, len(records), _EMBED_BATCH):
                part = records[i : i + _EMBED_BATCH]
                col.upsert(
                    ids=[r["id"] for r in part],
                    documents=[r["text"] for r in part],
                    metadatas=[r["meta"] for r in part],
                    embeddings=self.embedder.embed([r["text"] for r in part]),
                )
            self._wrote()
        journal.unlink()
        return len(records)

    # ---- reading -------------------------------------------------------------------------
    def _records(self, include: list[str]) -> Iterator[tuple[str, str | None, dict | None]]:
        offset = 0
        while True:
            got = self._col().get(include=include, limit=_BATCH, offset=offset)
            if not got["ids"]:
                return
            texts = got.get("documents") or [None] * len(got["ids"])
            metas = got.get("metadatas") or [None] * len(got["ids"])
            yield from zip(got["ids"], texts, metas, strict=False)
            offset += len(got["ids"])

    def count(self) -> int:
        return self._col().count()

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), _BATCH):
            found.update(self._col().get(ids=list(ids[i : i + _BATCH]), include=[])["ids"])
        return found

    def doc_ids_of(self, source: str) -> set[str]:
        got = self._col().get(where={"source": source}, include=["metadatas"])
        return {m["doc_id"] for m in got["metadatas"] if m}

    def iter_chunks(self) -> Iterator[tuple[str, str, str, int | None]]:
        """Every stored chunk as (id, text, source, page), in batches."""
        for cid, text, meta in self._records(include=["documents", "metadatas"]):
            meta = meta or {}
            yield cid, text or "", meta["source"], meta.get("page")

    def all_ids(self) -> list[str]:
        ids: list[str] = []
        offset = 0
        while True:
            got = self._col().get(include=[], limit=_BATCH * 10, offset=offset)["ids"]
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
        col = self._col()
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
        got = self._col().get(ids=list(ids), include=["embeddings"])
        return {cid: list(vec) for cid, vec in zip(got["ids"], got["embeddings"], strict=False)}
