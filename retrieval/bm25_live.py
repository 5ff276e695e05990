"""The BM25 index that searches read, replaced whole, never changed in place.

A ``BM25Index`` holds segments of term counts and the list of chunks their rows stand for;
a search reads scores from one and texts, sources and pages from the other. Rebuilding the object a
search is reading could pair one version's scores with another's chunks (an IndexError,
or one chunk's text under another's source and page: a wrong citation). So a new version
is built or loaded into a new ``BM25Index`` and published by one reference assignment;
a search takes ``live.current`` once, at its start, and reads that object throughout.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from retrieval.bm25_index import LOAD_TRIES, BM25Index
from retrieval.files import write_atomic

log = logging.getLogger(__name__)

# In the index's directory: the name of the saved version that the last writer left in line
# with the store, every chunk's row as the store holds it. Taken away (durably) as the next
# writer starts, before it changes anything, so a writer that dies mid-way leaves none; a
# version saved since (a reader's) has another name. See ``LiveBM25.take_in_line``.
IN_LINE = "IN_LINE"


class ChunkSource(Protocol):
    """What the BM25 index is derived from (``ChromaStore``)."""

    def all_ids(self) -> list[str]: ...

    def iter_chunks(self, ids: Sequence[str] | None = None): ...  # noqa: ANN201 - build's rows

    def change_marker(self) -> int | None: ...

    def count(self) -> int: ...

    def writer_active(self) -> bool: ...


@dataclass(frozen=True)
class WriterView:
    """What the writer (holding the writer lock) knows of the store against the saved BM25
    version: ``in_line``, the name of the version that was in line with the store when it
    took the lock (None: not known to be); ``changed``, the ids it has written, updated or
    deleted since, and ``deleted``, those of them gone from the store (None: it cannot
    tell, as after a rebuild of the collection)."""

    in_line: str | None
    changed: frozenset[str] | None
    deleted: frozenset[str] | None = None


class LiveBM25:
    """The current ``BM25Index`` of one data dir, shared by every retriever of an index.
    Every version it builds or loads scores as ``current`` does (``BM25Index.empty_like``)."""

    def __init__(self, directory: Path, current: BM25Index | None = None) -> None:
        self.directory = Path(directory)
        self.current = current if current is not None else BM25Index(self.directory)
        self._synced = current is not None
        self._marker: int | None = None  # the store's change counter at the last sync
        # the version serves though it holds other chunks than the store, while a writer works
        self._awaiting_writer = False
        self._lock = threading.Lock()  # one sync at a time; searches never wait for it

    def is_stale(self, store: ChunkSource) -> bool:
        """True when the index on disk was swapped by another process, or (Chroma server)
        a writer on any host has changed the chunks since the last sync, or the writer that
        was at work then let go of the lock without saving a version (it died)."""
        if not self._synced or self.current.is_stale():
            return True
        if self._awaiting_writer and not store.writer_active():
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
        writer: WriterView | None = None,
    ) -> BM25Index:
        """Bring the index in line with the store, aside, then publish it: load the saved
        version, or rebuild from the store when asked, or when the saved one is missing,
        damaged, or holds other ids than the store. A rebuild takes the terms of the chunks
        the saved version already tokenized from there (``reuse``; the index is the same,
        made sooner). ``known``: rows of chunks as the store holds them, by id, which are
        not read again (the chunks an ingest has just written, under the writer lock); the
        store's ids still decide which chunks are indexed. ``writer``: given by the writer
        (``Index.writer``). With ``reuse``, when the version that was in line with the store
        as it started is still the saved one, it extends that version in place
        (``BM25Index.extend``): its changed chunks removed, their rows as the store now holds
        them appended as one segment, nothing else read (BENCHMARKS.md, "One file into a large
        store"); else it rebuilds taking the rows of the chunks it did not change from there
        instead of reading every chunk back (about 10 s of a 20 s sync at 100,000 chunks,
        BENCHMARKS.md stop 37). The version it publishes is recorded as in line
        (``IN_LINE``). A reader whose saved version holds other chunks than the store
        loads the newer one when a writer saved one meanwhile, and serves it while a writer
        is at work (``_writer_at_work``), instead of rebuilding. ``if_stale``: nothing to do if another thread
        brought it in line while this one waited for it. A failed save publishes nothing
        (the previous version keeps serving) and raises ``OSError``."""
        with self._lock:
            if if_stale and not self.is_stale(store):
                return self.current
            marker = store.change_marker()  # read first: a write after it shows as stale
            fresh = self.current.empty_like()
            if rebuild and reuse and writer is not None:
                extended = self._extend(fresh, store, known, writer)
                if extended is not None:
                    # loaded here (the app): only the new segment is read; else (the CLI)
                    # loaded when a search asks for it
                    loaded = self.current.version == writer.in_line and fresh.load()
                    if loaded:
                        self.current = fresh  # the one assignment a search can observe
                    self._marker, self._synced = marker, loaded
                    self._awaiting_writer = False
                    write_atomic(self.directory / IN_LINE, extended)
                    return self.current
            in_line = awaiting = False
            if not rebuild:
                fresh, in_line, awaiting = self._load_saved(store, writer)
            if not (in_line or awaiting):
                saved = self._unchanged_rows(writer, reuse)
                chunks = _rows(store, known, saved)
                log.info(
                    "Rebuilding the BM25 index from Chroma (%d chunks, %d read back)",
                    len(chunks),
                    len(chunks) - len(known or {}) - len(saved or {}),
                )
                fresh.build(chunks, reuse=reuse)
                fresh.save()
                settled = True
            else:  # the saved version: in line if it was as the writer started, and still is
                settled = (
                    writer is not None
                    and writer.in_line == fresh.version
                    and writer.changed == frozenset()
                )
            self.current = fresh  # the one assignment a search can observe
            self._marker, self._synced, self._awaiting_writer = marker, True, awaiting
            if writer is not None and settled and fresh.version is not None:
                write_atomic(self.directory / IN_LINE, fresh.version)
            return fresh

    def _load_saved(
        self, store: ChunkSource, writer: WriterView | None
    ) -> tuple[BM25Index, bool, bool]:
        """The saved version, loaded aside; whether it holds the store's chunks; whether it
        serves though it does not, a writer being at work (``_writer_at_work``). A version
        a writer saved while this one was compared with the store is loaded instead (up to
        ``LOAD_TRIES`` versions)."""
        tries = 1
        while True:
            fresh = self.current.empty_like()
            if not fresh.load():
                return fresh, False, False
            if fresh.matches(store.all_ids()):
                return fresh, True, False
            # asked first: a writer saves its version before it lets go of the lock
            if _writer_at_work(store, writer):
                return fresh, False, True
            if not fresh.is_stale() or tries == LOAD_TRIES:
                return fresh, False, False
            tries += 1  # a writer saved a newer version since this one was loaded: that one

    def _extend(
        self,
        fresh: BM25Index,
        store: ChunkSource,
        known: Mapping[str, tuple] | None,
        writer: WriterView,
    ) -> str | None:
        """Extend the version that was in line as the writer started (``BM25Index.extend``),
        when it is still the saved one and the writer knows what it changed; the new
        version's name, or None (then it rebuilds)."""
        if writer.in_line is None or writer.changed is None or writer.deleted is None:
            return None
        if fresh.pointer() != writer.in_line:  # a reader saved another since
            return None
        kept = writer.changed - writer.deleted
        known = known or {}
        rows = [row for cid, row in known.items() if cid in kept]
        others = sorted(cid for cid in kept if cid not in known)  # updated in place
        if others:
            rows += list(store.iter_chunks(others))
        return fresh.extend(writer.in_line, rows, writer.changed, expect=store.count())

    def _unchanged_rows(self, writer: WriterView | None, reuse: bool) -> dict[str, object] | None:
        """The rows of the chunks the writer did not change, from the saved version that
        was in line with the store when it started, when that one is still the saved one;
        None when there are none to trust (every chunk is read from the store)."""
        if not reuse or writer is None or writer.in_line is None or writer.changed is None:
            return None
        if self.current.pointer() != writer.in_line:  # a reader saved another since
            return None
        docs = self.current.saved_docs(writer.in_line)
        if docs is None:
            return None
        return {cid: doc for cid, doc in docs.items() if cid not in writer.changed}

    def take_in_line(self) -> str | None:
        """For a writer, as it takes the writer lock: the name of the saved version the
        last writer left in line with the store, when it is still the saved one (else
        None). The record goes, durably, before this writer changes anything: if it dies
        mid-way, the next one reads every chunk back."""
        path = self.directory / IN_LINE
        try:
            named = path.read_text().strip()
        except OSError:
            return None
        path.unlink(missing_ok=True)
        _sync_dir(self.directory)
        return named if named and named == self.current.pointer() else None

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


def _writer_at_work(store: ChunkSource, writer: WriterView | None) -> bool:
    """For a reader whose saved version holds other chunks than the store: whether a writer
    is at work, whose sync will save the version in line with what it writes. The saved
    one serves meanwhile (without the newest chunks, for seconds): rebuilding it from the
    store instead would cost the reader a read of every chunk (about 13 s at 100,000), and
    the writer its extension in place (``BM25Index.extend``), which needs the version it
    started from to be still the saved one."""
    return writer is None and store.writer_active()


def _rows(
    store: ChunkSource, known: Mapping[str, tuple] | None, saved: Mapping[str, object] | None = None
) -> list:
    """The store's chunks as ``BM25Index.build``'s rows, in the store's order (the order a
    full read gives, so the index is the same): those in ``known`` as given, those in
    ``saved`` (rows of a saved version that are still the store's) from there, and only
    the others read from the store."""
    if not known and saved is None:
        return list(store.iter_chunks())
    known, saved = known or {}, saved or {}
    ids = store.all_ids()
    read = {
        row[0]: row
        for row in store.iter_chunks([cid for cid in ids if cid not in known and cid not in saved])
    }
    rows = (known.get(cid) or saved.get(cid) or read.get(cid) for cid in ids)
    return [row for row in rows if row is not None]  # None: deleted while we read


def _sync_dir(directory: Path) -> None:
    """Make a file's removal from ``directory`` survive a power cut."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
