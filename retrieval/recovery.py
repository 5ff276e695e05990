"""Crash recovery for the Chroma store: complete documents only, resumable rebuilds.

- **Complete documents only**: every chunk carries ``doc_chunks``, the number of chunks its
  document has. A document is complete when Chroma holds that many chunks of its
  ``(source, doc_id)``; ``repair`` deletes the chunks of incomplete documents, and of older
  versions superseded by a complete newer one. Writers set a dirty marker while they write
  (``ChromaStore.writing``); a store opened while the marker is there (after a crash) is
  repaired first, if no writer is running.
- **Resumable rebuild**: ``rebuild`` first writes every chunk to a journal file (atomically),
  then fills a new collection from it beside the serving one and switches to it (searches
  never see an empty or half-filled collection); a crash in between is finished on the
  next open, and the half-filled collection it left is replaced.

Every function here is called under the store's writer lock (``ChromaStore.writer``).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from retrieval.context import stored_index_text
from retrieval.late_interaction import embed_for_store

if TYPE_CHECKING:
    from retrieval.chroma_store import ChromaStore

log = logging.getLogger(__name__)

REBUILD_JOURNAL = "rebuild.jsonl"
_EMBED_BATCH = 256


@dataclass
class DocState:
    """What a scan found of one version of one document."""

    ids: list[str] = field(default_factory=list)
    expected: int | None = None  # doc_chunks; None for chunks written before it existed
    pages: set[int] = field(default_factory=set)
    doc_pages: int | None = None
    added_at: str = ""
    added_by: str | None = None
    effective: str | None = None
    effective_origin: str | None = None
    supersedes: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.expected is None or len(self.ids) >= self.expected


def scan(store: ChromaStore) -> dict[str, dict[str, DocState]]:
    """Every stored version of every document: ``{source: {doc_id: state}}``."""
    docs: dict[str, dict[str, DocState]] = {}
    for cid, _, meta in store.records(include=["metadatas"]):
        meta = meta or {}
        state = docs.setdefault(str(meta.get("source", "")), {}).setdefault(
            str(meta.get("doc_id", "")), DocState()
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
        if meta.get("effective"):
            state.effective = str(meta["effective"])
            state.effective_origin = str(meta.get("effective_origin") or "") or None
        if meta.get("supersedes"):
            state.supersedes = tuple(s for s in str(meta["supersedes"]).splitlines() if s)
    return docs


def newest_complete(versions: dict[str, DocState]) -> str | None:
    """The doc_id of the version that stays: the newest complete one."""
    complete = {d: s for d, s in versions.items() if s.complete}
    return max(complete, key=lambda d: (complete[d].added_at, d)) if complete else None


def repair(store: ChromaStore) -> list[str]:
    """Delete the chunks of incomplete documents and of versions superseded by a newer
    complete one. Returns what was removed, for the log."""
    removed: list[str] = []
    doomed: list[str] = []
    for source, versions in scan(store).items():
        keep = newest_complete(versions)
        for doc_id, state in versions.items():
            if doc_id == keep:
                continue
            why = "superseded" if state.complete else f"{len(state.ids)}/{state.expected}"
            removed.append(f"{source} ({doc_id[:12]}, {why})")
            doomed.extend(state.ids)
    store.delete_ids(doomed)
    return removed


def verify(store: ChromaStore) -> list[str]:
    """Problems that would make a document half-searchable: an incomplete version, two
    versions of one source, chunks the vector index cannot find. Empty when healthy."""
    problems = []
    for source, versions in sorted(scan(store).items()):
        if len(versions) > 1:
            problems.append(f"{source}: {len(versions)} versions stored")
        for doc_id, state in versions.items():
            if not state.complete:
                problems.append(
                    f"{source} ({doc_id[:12]}): {len(state.ids)} of {state.expected} chunks"
                )
    col = store.collection()
    n = col.count()
    if n:
        ids = set(store.all_ids())
        dim = len(col.get(limit=1, include=["embeddings"])["embeddings"][0])
        found = set(col.query(query_embeddings=[[1.0] * dim], n_results=n, include=[])["ids"][0])
        if found != ids:
            problems.append(
                f"vector index: {len(ids - found)} chunks not searchable, "
                f"{len(found - ids)} unknown ids"
            )
    return problems


def recover(store: ChromaStore) -> list[str]:
    """Finish an interrupted rebuild, delete half-written documents, clear the marker."""
    for tmp in store.data_dir.glob(f".{REBUILD_JOURNAL}.*.tmp"):
        tmp.unlink(missing_ok=True)
    if (store.data_dir / REBUILD_JOURNAL).exists():
        _finish_rebuild(store)
    with store.writing():  # a crash during the repair leaves the marker for the next one
        removed = repair(store)
    if removed:
        log.warning("Removed half-written documents: %s", "; ".join(removed))
    return removed


def rebuild(store: ChromaStore) -> int:
    """Re-create the collection from its stored texts and metadata, re-embedding every
    chunk with the current embedder (after a model change, or to shed a damaged vector
    index). Resumable: see ``recover``."""
    journal = store.data_dir / REBUILD_JOURNAL
    lines = (
        json.dumps({"id": cid, "text": text, "meta": meta}, ensure_ascii=False)
        for cid, text, meta in store.records(include=["documents", "metadatas"])
    )
    tmp = journal.with_name(f".{journal.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, journal)
    return _finish_rebuild(store)


def _finish_rebuild(store: ChromaStore) -> int:
    journal = store.data_dir / REBUILD_JOURNAL
    records = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    with store.writing():
        # filled beside the serving collection, which searches keep reading until the switch
        col = store.begin_rebuild()
        for i in range(0, len(records), _EMBED_BATCH):
            part = records[i : i + _EMBED_BATCH]
            vectors, tokens = embed_for_store(
                store.embedder,
                [stored_index_text(r["text"], r["meta"]) for r in part],
                depth=store.config.rerank_depth,
            )
            if tokens is not None:
                store.tokens.put(zip((r["id"] for r in part), tokens, strict=True))
            store.upsert_into(
                col,
                [r["id"] for r in part],
                [r["text"] for r in part],
                [r["meta"] for r in part],
                vectors,
            )
        store.switch_to(col)
    journal.unlink()
    return len(records)
