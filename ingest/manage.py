"""List, remove and rebuild what is indexed. Every write takes the writer lock, marks the
store dirty while it writes, and re-derives BM25 from Chroma when done."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

from ingest.pipeline import discover, sync_bm25
from retrieval import Index, StoreError
from retrieval.chroma_store import DocumentInfo


def list_documents(index: Index) -> list[DocumentInfo]:
    """One row per indexed file: ``name`` (= ``source``), ``pages`` (PDF pages; 0 for
    formats without pages), ``chunks``, ``added_at`` (ISO 8601, UTC), ``added_by``,
    ``effective`` (ISO date) and ``effective_origin`` (see ``ingest.dates``)."""
    return index.store.documents()


def resolve_sources(index: Index, names: Iterable[str]) -> dict[str, str | None]:
    """Map what a person typed to stored sources: an exact source name, or a path whose
    end is a source (``docs/hr/leave.pdf`` finds ``hr/leave.pdf``; the longest match wins).
    A folder stands for the indexed sources its files were ingested under, keyed
    ``FOLDER/relative``. ``None``: not indexed."""
    stored = {d.source for d in index.store.documents()}
    out: dict[str, str | None] = {}
    for name in names:
        path = Path(name)
        if name not in stored and path.is_dir():
            found = {
                f"{path.as_posix()}/{source}": source
                for _, source in discover([path])
                if source in stored
            }
            out.update(found or {name: None})  # files never indexed are no error
            continue
        out[name] = _match(name, stored)
    return out


def _match(name: str, stored: set[str]) -> str | None:
    if name in stored:
        return name
    posix = Path(name).as_posix()
    ends = [s for s in stored if posix == s or posix.endswith("/" + s)]
    return max(ends, key=len) if ends else None


def remove_sources(
    index: Index, sources: Iterable[str], *, lock_timeout: float = 30.0
) -> list[str]:
    """Delete documents from Chroma and BM25. ``sources`` are source names or paths (see
    ``resolve_sources``); unknown ones are ignored. Returns the sources removed."""
    store = index.store
    with index.writer(lock_timeout):
        if store.needs_recovery():
            store.recover()
        targets = dict.fromkeys(s for s in resolve_sources(index, sources).values() if s)
        with store.writing():
            for source in targets:
                store.delete_source(source)
        error = sync_bm25(index, changed=bool(targets))
    if error:
        raise StoreError(error)
    return list(targets)


def rebuild(index: Index, *, lock_timeout: float = 30.0) -> int:
    """Re-create both indexes from the stored documents: Chroma re-embeds every stored text
    with the current embedder (resumable after a crash), then BM25 is re-derived from it.
    Returns the number of chunks."""
    store = index.store
    with index.writer(lock_timeout):
        if store.needs_recovery():
            store.recover()
        n = store.rebuild()
        error = sync_bm25(index, changed=True, reuse=False)  # every chunk tokenized anew
    if error:
        raise StoreError(error)
    return n


def set_effective(
    index: Index, name: str, effective: date, *, lock_timeout: float = 30.0
) -> str | None:
    """Correct a document's effective date (origin "given") on every chunk of it, in
    Chroma's metadata and then in BM25; nothing is re-embedded. ``name`` is a source name
    or a path ending in one (see ``resolve_sources``). Returns the source, or None when it
    is not indexed."""
    store = index.store
    with index.writer(lock_timeout):
        if store.needs_recovery():
            store.recover()
        source = _match(name, {d.source for d in store.documents()})
        if source is None:
            return None
        with store.writing():
            store.set_effective(source, effective.isoformat(), "given")
        error = sync_bm25(index, changed=True)
    if error:
        raise StoreError(error)
    return source
