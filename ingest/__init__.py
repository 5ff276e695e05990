"""Ingest's front door: ``ingest_paths(index, paths)`` loads, chunks, embeds and stores."""

from ingest.pipeline import FileResult, IngestReport, ingest_paths

__all__ = ["FileResult", "IngestReport", "ingest_paths"]
