"""What ingest needs to know, as plain values (``app`` maps its settings onto these)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IngestConfig:
    chunk_size: int = 800  # characters per chunk
    chunk_overlap: int = 120  # characters shared by neighbouring chunks
    max_file_mb: float = 50.0  # larger files are refused
    file_timeout_s: float = 120.0  # one file's reader process is killed after this
    # files are embedded in one call and written in one go once they hold this many chunks
    # (1: each file alone); 512 chunks' token vectors take about 150 MB while they wait
    # (the app's setting ingest_batch_chunks)
    embed_batch: int = 512

    def __post_init__(self) -> None:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        if self.embed_batch < 1:
            raise ValueError("embed_batch must be at least 1")
