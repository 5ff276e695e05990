"""Ingest's front door, shared by ``python -m ingest`` and the admin page:

- ``ingest_paths(index, paths, added_by=..., source_names=...)``: load, chunk, embed, store;
- ``remove_sources(index, sources)``: delete documents from both indexes;
- ``list_documents(index)``: what is indexed (source, pages, chunks, when, by whom);
- ``rebuild(index)``: re-create both indexes from the stored documents;
- ``set_effective(index, source, date)``: correct a document's effective date.

Imported lazily, so that the loader worker process (``ingest.worker``) starts without
loading Chroma or the embedder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.manage import (
        list_documents,
        rebuild,
        remove_sources,
        resolve_sources,
        set_effective,
    )
    from ingest.pipeline import FileResult, IngestReport, ingest_paths

__all__ = [
    "FileResult",
    "IngestReport",
    "ingest_paths",
    "list_documents",
    "rebuild",
    "remove_sources",
    "resolve_sources",
    "set_effective",
]

_HOME = {
    "FileResult": "ingest.pipeline",
    "IngestReport": "ingest.pipeline",
    "ingest_paths": "ingest.pipeline",
    "list_documents": "ingest.manage",
    "rebuild": "ingest.manage",
    "remove_sources": "ingest.manage",
    "resolve_sources": "ingest.manage",
    "set_effective": "ingest.manage",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        import importlib

        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'ingest' has no attribute {name!r}")
