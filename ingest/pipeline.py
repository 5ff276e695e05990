"""Load, chunk, embed and store files. The same code serves ``python -m ingest`` and the
admin page.

Order of writes, so that a crash leaves no half document behind for long: a file's chunks
and embeddings are computed first; then its old chunks are deleted and the new ones added
(Chroma is the source of truth); the BM25 index is re-derived from Chroma at the end.
A re-run of the same command finishes any interrupted work, since unchanged files are
recognised by their content hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from filelock import FileLock, Timeout
from tqdm import tqdm

from app.errors import IngestError, StoreError
from ingest.chunking import chunk_pages
from ingest.loaders import load, supported
from retrieval import Index

Status = Literal["added", "updated", "unchanged", "failed", "skipped"]


@dataclass(frozen=True)
class FileResult:
    source: str
    status: Status
    chunks: int = 0
    reason: str = ""


@dataclass
class IngestReport:
    results: list[FileResult] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    def summary(self) -> str:
        chunks = sum(r.chunks for r in self.results if r.status in ("added", "updated"))
        parts = [
            f"{self.count(s)} {s}" for s in ("added", "updated", "unchanged", "failed", "skipped")
        ]
        return f"{', '.join(parts)}; {chunks} chunks written"


def discover(paths: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """Files to ingest as (path, source name). A folder is walked; a file's source is its
    path relative to the folder given, or its own name when given directly."""
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if not any(part.startswith(".") for part in file.relative_to(path).parts):
                    yield file, file.relative_to(path).as_posix()
        else:
            yield path, path.name


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def writer_lock(index: Index, timeout: float = 30.0) -> FileLock:
    """One writer at a time across processes (CLI, admin page)."""
    index.settings.data_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(str(index.settings.lock_file), timeout=timeout)


def ingest_paths(
    index: Index,
    paths: Iterable[Path],
    *,
    progress: bool = False,
    lock_timeout: float = 30.0,
) -> IngestReport:
    """Ingest files and folders. Missing paths raise ``IngestError`` before anything is
    written; a file that fails to load is reported and the others go on."""
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise IngestError(f"No such file or folder: {', '.join(missing)}")
    files = list(discover(paths))
    report = IngestReport()
    try:
        with writer_lock(index, lock_timeout):
            bar = tqdm(files, desc="Ingesting", unit="file", disable=not progress)
            chunks_done = 0
            for path, source in bar:
                bar.set_postfix_str(f"{source[-30:]} | {chunks_done} chunks")
                result = _ingest_file(index, path, source)
                report.results.append(result)
                chunks_done += result.chunks if result.status in ("added", "updated") else 0
            bar.set_postfix_str(f"{chunks_done} chunks")
            bar.close()
            if (
                report.count("added")
                or report.count("updated")
                or index.bm25.is_stale()
                or not index.bm25.pointer()
            ):
                index.rebuild_bm25()
    except Timeout:
        raise StoreError(
            f"Another ingest is writing to {index.settings.data_dir} (lock {index.settings.lock_file}); "
            "wait for it to finish and try again."
        ) from None
    return report


def _ingest_file(index: Index, path: Path, source: str) -> FileResult:
    if not supported(path):
        return FileResult(
            source, "skipped", reason=f"unsupported file type {path.suffix or '(none)'}"
        )
    try:
        doc_id = file_hash(path)
        known = index.store.doc_ids_of(source)
        if known == {doc_id}:
            return FileResult(source, "unchanged")
        pages = load(path)
        chunks = chunk_pages(
            pages,
            source=source,
            doc_id=doc_id,
            size=index.settings.chunk_size,
            overlap=index.settings.chunk_overlap,
        )
        if not chunks:
            raise IngestError(f"{source}: no text found")
        embeddings = index.embedder.embed([c.text for c in chunks])
    except IngestError as exc:
        return FileResult(source, "failed", reason=str(exc).removeprefix(f"{path.name}: "))
    except OSError as exc:
        return FileResult(source, "failed", reason=f"cannot read the file ({exc.strerror or exc})")
    if known:
        index.store.delete_source(source)
    index.store.add(chunks, embeddings)
    return FileResult(source, "updated" if known else "added", chunks=len(chunks))
