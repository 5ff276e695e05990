"""Load, chunk, embed and store files. The same code serves ``python -m ingest`` and the
admin page.

Order of work, so that a crash at any moment leaves every document wholly there or wholly
absent (see ``retrieval.chroma_store`` for the mechanisms):

1. take the writer lock; if the last writer died mid-write, repair the store first;
2. per file: skip it when its content hash is already stored (unchanged); else load it in
   the worker process (with a time limit) and chunk it. Once the files chunked hold
   ``IngestConfig.embed_batch`` chunks (or at the last file) they are embedded in one call
   and written in one go: their new versions, each chunk with its document's chunk count,
   then their old versions deleted (Chroma is the source of truth). A one-page memo alone
   would be a call too small for the bulk embedder and a write to Chroma that costs about
   30 ms whatever it holds (BENCHMARKS.md, "Stop 31"). A batch is embedded in a thread of
   its own while the main thread writes the batch before it and chunks the files after it
   (``_EmbedAhead``); writes stay on the main thread, in file order. While a file is
   chunked, the worker already reads the next ones, up to ``READ_AHEAD`` files (reading
   writes nothing);
3. re-derive the BM25 index from Chroma when it no longer matches (new folder + atomic
   pointer swap: a failure leaves the previous index serving), taking the chunks just
   written from the ingest and, when the last writer left the saved version in line, the
   others from that version: only chunks updated in place (a corrected date) are read
   back (``Index.writer``, ``LiveBM25.sync``).

A re-run of the same command finishes interrupted work: complete documents are unchanged,
half-written ones were removed by the repair and are written again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from ingest.chunking import chunk_pages
from ingest.config import IngestConfig
from ingest.dates import TEXT_HEAD, EffectiveDate, effective_date, supersedes
from ingest.errors import IngestError
from ingest.loaders import loader_for, supported, unsupported_reason
from ingest.worker import LoaderWorker
from retrieval import Chunk, Index
from retrieval.chroma_store import NewDocument
from retrieval.files import sha256_file
from retrieval.late_interaction import embed_for_store

log = logging.getLogger(__name__)

# How many files the loader worker reads ahead of the one being chunked. One was not enough
# once files were embedded together: the files of the next call were then read one by one
# while the main thread waited, about 1 s of a 1,000-page ingest (BENCHMARKS.md, stop 34).
# Since stop 40 the main thread chunks on while a batch is embedded, so they are queued
# after every file.
READ_AHEAD = 4

Status = Literal["added", "updated", "unchanged", "failed", "skipped"]


@dataclass(frozen=True)
class FileResult:
    source: str
    status: Status
    chunks: int = 0
    reason: str = ""
    effective: str = ""  # the document's effective date (ISO) and where it came from
    effective_origin: str = ""

    def dated(self) -> str:
        """``dated 2026-09-08 (text)``, or "" when no date was set."""
        return f"dated {self.effective} ({self.effective_origin})" if self.effective else ""


@dataclass
class IngestReport:
    results: list[FileResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # problems of the run, not of one file
    repaired: list[str] = field(default_factory=list)  # half-written documents removed

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.errors

    def summary(self) -> str:
        chunks = sum(r.chunks for r in self.results if r.status in ("added", "updated"))
        parts = [
            f"{self.count(s)} {s}" for s in ("added", "updated", "unchanged", "failed", "skipped")
        ]
        return f"{', '.join(parts)}; {chunks} chunks written"


def discover(
    paths: Iterable[Path], source_names: dict[Path, str] | None = None
) -> Iterator[tuple[Path, str]]:
    """Files to ingest as (path, source name). A folder is walked; a file's source is its
    path relative to the folder given, or its own name when given directly, or the name
    ``source_names`` gives it (an upload stored under a server-made name keeps the name
    its user knows)."""
    names = {Path(p).resolve(): n for p, n in (source_names or {}).items()}
    seen: set[str] = set()
    for path in paths:
        if path.is_dir():
            found = (
                (f, f.relative_to(path).as_posix())
                for f in sorted(p for p in path.rglob("*") if p.is_file())
                if not any(part.startswith(".") for part in f.relative_to(path).parts)
            )
        else:
            found = iter([(path, names.get(path.resolve(), path.name))])
        for file, source in found:
            if source not in seen:  # one file given twice is ingested once
                seen.add(source)
                yield file, source


def file_hash(path: Path) -> str:
    """A document's id: the SHA-256 of its bytes."""
    return sha256_file(path)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class _StoreFailed(Exception):
    """Writing ``sources`` (written together) to the store failed."""

    def __init__(self, sources: list[str], cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.sources = sources


def ingest_paths(
    index: Index,
    paths: Iterable[Path],
    *,
    config: IngestConfig | None = None,
    progress: bool = False,
    lock_timeout: float = 30.0,
    lock: bool = True,
    added_by: str | None = None,
    source_names: dict[Path, str] | None = None,
    effective: date | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> IngestReport:
    """Ingest files and folders. ``effective``: the date every file given takes effect
    (else each file's own, see ``ingest.dates``; given to an unchanged file, it corrects
    the stored date without re-embedding). Missing paths raise ``IngestError`` before anything is
    written; a file that fails is reported with its reason and the others go on. Another
    writer holding the lock longer than ``lock_timeout`` raises ``StoreError``;
    ``lock=False`` when the caller already holds ``index.writer``. ``config``: chunk sizes
    and per-file limits (the defaults of ``IngestConfig`` when not given). ``on_result``:
    called with each file's result, in file order, as soon as it is settled (a file
    waiting to be embedded with others is settled when they are written)."""
    config = config or IngestConfig()
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise IngestError(f"No such file or folder: {', '.join(missing)}")
    held = index.writer(lock_timeout) if lock else contextlib.nullcontext()
    with held:
        return _ingest_locked(
            index, paths, config, progress, added_by, source_names, effective, on_result
        )


def _ingest_locked(
    index: Index,
    paths: list[Path],
    config: IngestConfig,
    progress: bool,
    added_by: str | None,
    source_names: dict[Path, str] | None,
    effective: date | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> IngestReport:
    # the folder is listed once the lock is ours: a writer that waited sees today's files
    files = list(discover(paths, source_names))
    report = IngestReport()
    store = index.store
    if store.needs_recovery():
        report.repaired = store.recover()
    worker = LoaderWorker(config.file_timeout_s)
    bar = tqdm(files, desc="Ingesting", unit="file", disable=not progress)
    # in file order: each file's result, or the file chunked and waiting to be embedded
    results: list[FileResult | _Chunked] = []
    waiting: list[tuple[int, _Chunked]] = []  # those waiting, with their place in results
    done = 0  # chunks written
    told = 0  # results handed to on_result
    written: dict[str, tuple] = {}  # the chunks written, as the BM25 index takes them

    def tell() -> None:
        nonlocal told
        while told < len(results) and isinstance(results[told], FileResult):
            if on_result is not None:
                on_result(results[told])  # type: ignore[arg-type]
            told += 1

    try:
        with store.writing(), _EmbedAhead(index, results, added_by, written) as embedding:
            ahead: dict[Path, _Seen] = {}  # files read ahead: what was found of them
            for i, (path, source) in enumerate(files):  # the bar stays open for the last batch
                bar.set_postfix_str(f"{source[-30:]} | {done} chunks")
                later = files[i + 1 : i + 1 + READ_AHEAD]
                result = _chunk_file(index, config, worker, path, source, effective, ahead, later)
                if isinstance(result, _Chunked):
                    waiting.append((len(results), result))
                results.append(result)
                for after in later:  # while the next files are chunked, embedded, written
                    _read_ahead(index, config, worker, *after, ahead)
                chunks = sum(len(f.chunks) for _, f in waiting)
                if waiting and (chunks >= config.embed_batch or not later):
                    bar.set_postfix_str(f"embedding {chunks} chunks | {done} chunks")
                    done += embedding.swap(waiting)
                    waiting = []
                tell()
                bar.update()
            done += embedding.swap([])  # the last batch
            bar.set_postfix_str(f"{done} chunks written")
            tell()
    except _StoreFailed as exc:
        results = _after_store_failure(results, files, exc)
        report.errors.append(
            f"Writing to the store failed ({exc}); half-written documents are removed "
            "at the next start. Fix the cause (disk space?) and run the command again."
        )
        tell()
    finally:
        worker.close()
        bar.close()
    report.results = [r for r in results if isinstance(r, FileResult)]
    # a date corrected writes no chunk but changes what BM25 holds
    changed = any(r.status in ("added", "updated") for r in report.results)
    error = sync_bm25(index, changed=changed or bool(report.repaired), known=written)
    if error:
        report.errors.append(error)
    return report


NOT_ATTEMPTED = "not attempted: the store could not be written"


def _after_store_failure(
    results: list[FileResult | _Chunked], files: list[tuple[Path, str]], exc: _StoreFailed
) -> list[FileResult | _Chunked]:
    """Every file's result once the store failed writing ``exc.sources``: those failed
    with the store's error, files written before keep their result, files chunked but not
    written and files not reached are not attempted."""

    def unwritten(r: _Chunked) -> FileResult:
        why = f"store error: {exc}" if r.source in exc.sources else NOT_ATTEMPTED
        return FileResult(r.source, "failed", reason=why)

    out: list[FileResult | _Chunked] = [
        unwritten(r) if isinstance(r, _Chunked) else r for r in results
    ]
    if not any(r.source in exc.sources for r in out):  # it failed in its own turn
        out += [FileResult(s, "failed", reason=f"store error: {exc}") for s in exc.sources]
    out += [FileResult(s, "failed", reason=NOT_ATTEMPTED) for _, s in files[len(out) :]]
    return out


def sync_bm25(
    index: Index, *, changed: bool, reuse: bool = True, known: dict[str, tuple] | None = None
) -> str | None:
    """Re-derive BM25 from Chroma when something changed or it disagrees with Chroma, taking
    the terms of the chunks the saved version holds from there unless ``reuse`` is False
    (and, under ``index.writer``, the rows of the chunks not changed since the last writer
    left it in line), and the chunks ``known`` (just written, by id) from there instead of
    reading them back.
    Returns a message for a person when it could not be saved (the old one keeps serving)."""
    try:
        # built aside, swapped in whole
        index.sync_bm25(rebuild=changed, reuse=reuse, known=known)
    except OSError as exc:
        return (
            f"The keyword (BM25) index could not be saved ({exc.strerror or exc}); the "
            "previous one keeps serving. Free some space, then run the command again or "
            "`python -m ingest --rebuild`."
        )
    return None


def _read_ahead(
    index: Index,
    config: IngestConfig,
    worker: LoaderWorker,
    path: Path,
    source: str,
    ahead: dict[Path, _Seen],
) -> None:
    """Queue a later file to be read in the worker while the ones before it are chunked,
    embedded and written, when it is one that will be read: the worker's core would sit
    idle otherwise. Only reads; a file that turns out otherwise is dealt with in its turn.
    What it found (the file's hash, the versions stored) goes in ``ahead``: nothing else
    writes that source before its turn."""
    if path in ahead:
        return  # looked at already
    try:
        size = path.stat().st_size
        if not supported(path) or size == 0 or size > config.max_file_mb * 1e6:
            return
        seen = ahead[path] = _Seen(file_hash(path), index.store.doc_ids_of(source))
        if seen.known == {seen.doc_id} and index.store.has_context(source):
            return  # unchanged: nothing to read
        worker.submit(loader_for(path), path)
    except Exception:  # only a head start: the file's own turn meets and reports any error
        return


@dataclass(frozen=True)
class _Seen:
    """A file's content hash and the doc_ids of the versions of its source stored."""

    doc_id: str
    known: set[str]


@dataclass
class _Chunked:
    """A file read, dated and chunked, waiting for its embedding and its write."""

    source: str
    known: bool  # another version of it is stored
    chunks: list[Chunk]
    pages: int | None
    dated: EffectiveDate
    supersedes: list[str]


def _chunk_file(
    index: Index,
    config: IngestConfig,
    worker: LoaderWorker,
    path: Path,
    source: str,
    effective: date | None,
    ahead: dict[Path, _Seen],
    later: list[tuple[Path, str]],
) -> FileResult | _Chunked:
    """One file, in its turn, up to its chunks; or its result, when it is unchanged,
    skipped or failed. ``later``: the next files, read ahead once this one is read;
    ``ahead``: what reading ahead found of files (this one's is taken from there)."""
    if not supported(path):
        return FileResult(source, "skipped", reason=unsupported_reason(path))
    try:
        size = path.stat().st_size
        if size == 0:
            return FileResult(source, "failed", reason="the file is empty")
        if size > config.max_file_mb * 1e6:
            return FileResult(
                source,
                "failed",
                reason=f"the file is {size / 1e6:.1f} MB, above the {config.max_file_mb:g} MB "
                "limit (setting max_file_mb)",
            )
        seen = ahead.pop(path, None) or _Seen(file_hash(path), index.store.doc_ids_of(source))
        doc_id, known = seen.doc_id, seen.known
        added: date | None = None
        if known == {doc_id}:
            if index.store.has_context(source):
                return _unchanged(index, source, effective)
            # stored before contextual chunks: indexed again, keeping the date a person
            # gave it or the day it was first added
            effective, added = _dates_kept(index, source, effective)
        pages = worker.load(loader_for(path), path)
        if later:  # the next file at once; the others once it is clear what comes now
            _read_ahead(index, config, worker, *later[0], ahead)
        head = "\n".join(p.text for p in pages[:3])[:TEXT_HEAD]
        dated = effective_date(
            source=source,
            text=head,
            given=effective,
            pdf_created=pages[0].created if pages else None,
            added=added or datetime.now(UTC),
        )
        chunks = chunk_pages(
            pages,
            source=source,
            doc_id=doc_id,
            size=config.chunk_size,
            overlap=config.chunk_overlap,
        )
        if not chunks:
            raise IngestError(f"{path.name}: no text found")
    except IngestError as exc:
        reason = str(exc).removeprefix(f"{source}: ").removeprefix(f"{path.name}: ")
        return FileResult(source, "failed", reason=reason)
    except OSError as exc:
        return FileResult(source, "failed", reason=f"cannot read the file ({exc.strerror or exc})")
    return _Chunked(
        source,
        known=bool(known),
        chunks=chunks,
        pages=len(pages) if pages[0].number is not None else None,
        dated=dated,
        supersedes=[s.to_text() for s in supersedes(head)],
    )


class _EmbedAhead:
    """Embeds one batch of files in a thread of its own while the main thread writes the
    batch before it and chunks the files after it: the embedder's cores are not left idle
    while Chroma is written and the next files are chunked (on a 16-core Xeon these took
    3.3 s of a 7.2 s ingest of 1,000 pages before, BENCHMARKS.md, stop 40). Every write
    stays on the main thread, in file order, one batch at a time, so a failed write stops
    the run with the batches after it unwritten, as before. On leaving, a batch still being
    embedded is waited for and dropped (its files are reported as not attempted)."""

    def __init__(
        self,
        index: Index,
        results: list[FileResult | _Chunked],
        added_by: str | None,
        written: dict[str, tuple],
    ) -> None:
        self._index = index
        self._results = results
        self._added_by = added_by
        self._written = written
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ingest-embed")
        self._pending: tuple[Future[list[_Vectors | str]], list[tuple[int, _Chunked]]] | None = None

    def __enter__(self) -> _EmbedAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def swap(self, batch: list[tuple[int, _Chunked]]) -> int:
        """Once the batch being embedded has its vectors, start embedding ``batch`` (none:
        only finish), then write the one before. Returns how many chunks were written."""
        before, self._pending = self._pending, None
        vectors = before[0].result() if before else []
        if batch:
            self._pending = (self._pool.submit(_embed, self._index, batch), batch)
        if before is None:
            return 0
        return _write(self._index, self._results, before[1], vectors, self._added_by, self._written)


@dataclass(frozen=True)
class _Vectors:
    """One file's chunk vectors, and their token vectors where the store keeps them."""

    embeddings: list[list[float]]
    tokens: list | None


def _embed(index: Index, waiting: list[tuple[int, _Chunked]]) -> list[_Vectors | str]:
    """The vectors of the chunks of the files ``waiting``, in one call; for each file its
    ``_Vectors``, or why it failed. When the embedder fails on the call, each file is
    embedded alone, so that only a file it fails on again is reported failed."""
    texts = [c.index_text for _, f in waiting for c in f.chunks]
    try:
        embeddings, tokens = embed_for_store(index.embedder, texts, depth=index.config.rerank_depth)
    except Exception as exc:  # the embedder's error: onnxruntime, OpenVINO, torch, memory
        if len(waiting) > 1:
            log.warning("embedding %d files together failed (%s); one at a time", len(waiting), exc)
            return [out for w in waiting for out in _embed(index, [w])]
        log.exception("embedding %s failed", waiting[0][1].source)
        return [f"its text could not be embedded ({type(exc).__name__}: {exc})"]
    out: list[_Vectors | str] = []
    start = 0
    for _, file in waiting:
        end = start + len(file.chunks)
        out.append(_Vectors(embeddings[start:end], None if tokens is None else tokens[start:end]))
        start = end
    return out


def _write(
    index: Index,
    results: list[FileResult | _Chunked],
    waiting: list[tuple[int, _Chunked]],
    vectors: list[_Vectors | str],
    added_by: str | None,
    written: dict[str, tuple],
) -> int:
    """Write the files ``waiting`` that were embedded (``vectors``, in the same order) to
    the store in one go, then put each file's result in its place in ``results``. Returns
    how many chunks were written. ``written``: gets the rows of the chunks written, by id
    (``NewDocument.rows``), for the closing BM25 sync."""
    docs, stored = [], []
    for (n, file), got in zip(waiting, vectors, strict=True):
        if isinstance(got, str):
            results[n] = FileResult(file.source, "failed", reason=got)
            continue
        stored.append((n, file))
        docs.append(
            NewDocument(
                file.chunks,
                got.embeddings,
                added_at=now_iso(),
                added_by=added_by,
                pages=file.pages,
                effective=file.dated.iso,
                effective_origin=file.dated.origin,
                supersedes=file.supersedes,
                tokens=got.tokens,
            )
        )
    try:
        index.store.put_documents(docs)
    except Exception as exc:  # chromadb and sqlite raise many types; the run stops here
        raise _StoreFailed([f.source for _, f in stored], exc) from exc
    written.update((row[0], row) for doc in docs for row in doc.rows())
    for n, file in stored:
        results[n] = FileResult(
            file.source,
            "updated" if file.known else "added",
            chunks=len(file.chunks),
            effective=file.dated.iso,
            effective_origin=file.dated.origin,
        )
    return sum(len(file.chunks) for _, file in stored)


def _dates_kept(
    index: Index, source: str, effective: date | None
) -> tuple[date | None, date | None]:
    """For a stored document indexed again: (the date given now, else the one a person gave
    it before; the day it was first added, when that is its date). Dates found in the
    document itself are found again."""
    stored, origin = index.store.effective_of(source)
    if effective is not None or not stored:
        return effective, None
    day = date.fromisoformat(stored)
    return (day, None) if origin == "given" else (None, day if origin == "added" else None)


def _unchanged(index: Index, source: str, effective: date | None) -> FileResult:
    """An unchanged file; a date given for it replaces the stored one (metadata only)."""
    if effective is None:
        return FileResult(source, "unchanged")
    stored = index.store.effective_of(source)
    if stored == (effective.isoformat(), "given"):
        return FileResult(source, "unchanged", effective=stored[0], effective_origin=stored[1])
    try:
        index.store.set_effective(source, effective.isoformat(), "given")
    except Exception as exc:
        raise _StoreFailed([source], exc) from exc
    return FileResult(
        source,
        "updated",
        reason="effective date set",
        effective=effective.isoformat(),
        effective_origin="given",
    )
