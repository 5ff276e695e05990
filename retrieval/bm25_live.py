"""The BM25 index that searches read, replaced whole, never changed in place.

A ``BM25Index`` holds a bm25s model and the list of chunks its rows stand for; a search
reads scores from one and texts, sources and pages from the other. Rebuilding the object a
search is reading could pair one version's scores with another's chunks (an IndexError,
or one chunk's text under another's source and page: a wrong citation). So a new version
is built or loaded into a new ``BM25Index`` and published by one reference assignment;
a search takes ``live.current`` once, at its start, and reads that object throughout.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from retrieval.bm25_index import BM25Index

log = logging.getLogger(__name__)


class ChunkSource(Protocol):
    """What the BM25 index is derived from (``ChromaStore``)."""

    def all_ids(self) -> list[str]: ...

    def iter_chunks(self, ids: Sequence[str] | None = None): ...  # noqa: ANN201 - build's rows

    def change_marker(self) -> int | None: ...


class LiveBM25:
    """The current ``BM25Index`` of one data dir, shared by every retriever of an index.
    Every version it builds or loads scores as ``current`` does (``BM25Index.empty_like``)."""

    def __init__(self, directory: Path, current: BM25Index | None = None) -> None:
        self.directory = Path(directory)
        self.current = current if current is not None else BM25Index(self.directory)
        self._synced = current is not None
        self._marker: int | None = None  # the store's change counter at the last sync
        self._lock = threading.Lock()  # one sync at a time; searches never wait for it

    def is_stale(self, store: ChunkSource) -> bool:
        """True when the index on disk was swapped by another process, or (Chroma server)
        a writer on any host has changed the chunks since the last sync."""
        if not self._synced or self.current.is_stale():
            return True
        marker = store.change_marker()
        return marker is not None and marker != self._marker

    def sync(
        self,
        store: ChunkSource,
        *,
        rebuild: bool = False,
        reuse: bool = True,
        if_stale: bool = False,
        known: Mapping[str, tuple] | None = None,
    ) -> BM25Index:
        """Bring the index in line with the store, aside, then publish it: load the saved
        version, or rebuild from the store when asked, or when the saved one is missing,
        damaged, or holds other ids than the store. A rebuild takes the terms of the chunks
        the saved version already tokenized from there (``reuse``; the index is the same,
        made sooner). ``known``: rows of chunks as the store holds them, by id, which are
        not read again (the chunks an ingest has just written, under the writer lock); the
        store's ids still decide which chunks are indexed. ``if_stale``: nothing to do if
        another thread brought it in line while this one waited for it. A failed save
        publishes nothing (the previous version keeps serving) and raises ``OSError``."""
        with self._lock:
            if if_stale and not self.is_stale(store):
                return self.current
            marker = store.change_marker()  # read first: a write after it shows as stale
            fresh = self.current.empty_like()
            if rebuild or not (fresh.load() and fresh.matches(store.all_ids())):
                chunks = _rows(store, known)
                log.info("Rebuilding the BM25 index from Chroma (%d chunks)", len(chunks))
                fresh.build(chunks, reuse=reuse)
                fresh.save()
            self.current = fresh  # the one assignment a search can observe
            self._marker, self._synced = marker, True
            return fresh

    def ensure(self, store: ChunkSource) -> BM25Index:
        """The current index, synced first if it is stale. One thread syncs: a search that
        comes meanwhile keeps the version there is instead of waiting for the new one (which
        can take seconds at 100,000 chunks) and then loading it again; only before the
        first version is there do searches wait for it. A sync that cannot save (a full
        disk) leaves the previous version serving rather than failing the search."""
        if self.is_stale(store):
            if self._synced and self._lock.locked():
                return self.current  # another thread is bringing it in line
            try:
                self.sync(store, if_stale=True)
            except OSError as exc:
                log.warning("BM25 index not refreshed (%s); the previous one keeps serving", exc)
        return self.current


def _rows(store: ChunkSource, known: Mapping[str, tuple] | None) -> list[tuple]:
    """The store's chunks as ``BM25Index.build``'s rows, those in ``known`` not read again,
    in the store's order (the order a full read gives, so the index is the same)."""
    if not known:
        return list(store.iter_chunks())
    ids = store.all_ids()
    read = {row[0]: row for row in store.iter_chunks([cid for cid in ids if cid not in known])}
    return [known[cid] if cid in known else read[cid] for cid in ids if cid in known or cid in read]
