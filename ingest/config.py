"""What ingest needs to know, as plain values (``app`` maps its settings onto these)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IngestConfig:
    chunk_size: int = 800  # characters per chunk
    chunk_overlap: int = 120  # characters shared by neighbouring chunks
    max_file_mb: float = 50.0  # larger files are refused
    file_timeout_s: float = 120.0  # one file's reader process is killed after this

    def __post_init__(self) -> None:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
