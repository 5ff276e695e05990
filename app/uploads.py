"""Files uploaded on the admin page: checked, stored under names the server makes, and
ingested with the user's original name kept as the document's ``source``.

Nothing the browser sends becomes a path. A file is kept as
``UPLOAD_DIR/<sha256 of content, 24 hex><-sha256 of name, 8 hex>.<allowed extension>``; its
original name, cleaned for display, lives in a JSON sidecar beside it and in the index. Names
that only a crafted request sends (a path, control characters such as NUL, more than 255
characters) are refused outright, as are other types and files over the size limit: a refused
file is never written and the index is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import IngestError
from app.settings import Settings

if TYPE_CHECKING:
    from ingest import FileResult, IngestReport
    from retrieval import Index

MAX_NAME_CHARS = 255  # the longest file name most filesystems allow
DISPLAY_CHARS = 120  # names shown in the table and used as the source are cut to this
LOCK_TIMEOUT = 10.0  # seconds an upload waits for a running ingest before saying why


class UploadRefused(IngestError):
    """An upload was not accepted; the message names the file and says why."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: refused: {reason}")
        self.name, self.reason = name, reason


@dataclass(frozen=True)
class Upload:
    """A file as the browser sent it."""

    name: str
    data: bytes


def _is_control(ch: str) -> bool:
    # Cc (NUL, newlines, ESC), Cf (bidi overrides that disguise an extension), Cs, Co, Cn
    return unicodedata.category(ch).startswith("C")


def display_name(name: str) -> str:
    """A name safe to show and to use as a source: the last path part only, control
    characters removed, blanks collapsed, at most ``DISPLAY_CHARS`` characters (the
    extension kept)."""
    base = re.split(r"[/\\]", name)[-1]
    base = "".join(ch for ch in base if not _is_control(ch))
    base = " ".join(base.split()).strip(" .")
    if len(base) > DISPLAY_CHARS:
        stem, dot, ext = base.rpartition(".")
        ext = f".{ext}" if dot and len(ext) <= 10 else ""
        stem = stem if ext else base
        base = stem[: DISPLAY_CHARS - len(ext) - 1].rstrip() + "…" + ext
    return base or "upload"


def _extension(name: str) -> str:
    _, dot, ext = name.rpartition(".")
    return ext.lower() if dot else ""


def check_upload(name: str, size: int, settings: Settings) -> str:
    """The display name of an acceptable upload; ``UploadRefused`` with the reason if not."""
    shown = display_name(name)
    if any(_is_control(ch) for ch in name):
        raise UploadRefused(shown, "the file name contains control characters")
    if "/" in name or "\\" in name:
        raise UploadRefused(shown, "the file name contains a folder path")
    if len(name) > MAX_NAME_CHARS:
        raise UploadRefused(
            shown, f"the file name has {len(name)} characters; at most {MAX_NAME_CHARS} are allowed"
        )
    if not name.strip(" ."):
        raise UploadRefused(shown, "the file has no name")
    ext = _extension(name)
    if ext not in settings.upload_types:
        raise UploadRefused(
            shown,
            f"{'.' + ext if ext else 'a name without an extension'} is not accepted; "
            f"accepted: {', '.join('.' + t for t in settings.upload_types)}",
        )
    if size <= 0:
        raise UploadRefused(shown, "the file is empty")
    limit = settings.upload_max_mb * 1024 * 1024
    if size > limit:
        raise UploadRefused(
            shown,
            f"the file has {size / 1024 / 1024:.1f} MB; the limit is {settings.upload_max_mb} MB",
        )
    return shown


def store_upload(upload_dir: Path, data: bytes, source: str, *, added_by: str = "") -> Path:
    """Write ``data`` under a name made here and record ``source`` beside it."""
    upload_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()[:24]
    tag = hashlib.sha256(source.encode("utf-8")).hexdigest()[:8]
    path = upload_dir / f"{digest}-{tag}.{_extension(source) or 'bin'}"
    _write_atomic(path, data)
    meta = {
        "source": source,
        "added_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "added_by": added_by,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }
    _write_atomic(_sidecar(path), json.dumps(meta, ensure_ascii=False).encode("utf-8"))
    return path


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _write_atomic(path: Path, data: bytes) -> None:
    # a reader never sees half a file: write beside it, then rename over
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)
    _sidecar(path).unlink(missing_ok=True)


def stored_uploads(upload_dir: Path) -> dict[Path, dict]:
    """Every kept upload and its sidecar record."""
    found: dict[Path, dict] = {}
    if not upload_dir.is_dir():
        return found
    for meta_path in sorted(upload_dir.glob("*.json")):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found[meta_path.with_name(meta_path.name.removesuffix(".json"))] = meta
    return found


def ingest_uploads(
    index: Index,
    settings: Settings,
    uploads: Sequence[Upload],
    *,
    added_by: str = "",
    lock_timeout: float = LOCK_TIMEOUT,
    on_result: Callable[[FileResult], None] | None = None,
    effective: date | None = None,
) -> IngestReport:
    """Check and keep each upload, then ingest the accepted ones in one run (one lock, their
    chunks embedded and written together, one BM25 update); returns an ``IngestReport`` with
    one result per upload, in their order (refused ones as "failed" with the reason).
    ``on_result`` is called with each file's result as it is settled, for a progress line.
    ``effective``: the date the files take effect (else each file's own: see
    ``ingest.dates``). A running ingest that holds the writer lock longer than
    ``lock_timeout`` raises ``StoreError``; uploads already done stay. Two uploads of one
    name are ingested one after the other, so the later one is the version kept."""
    from ingest import FileResult, IngestReport

    results: list[FileResult | None] = []
    rounds: list[dict[str, tuple[int, bytes]]] = []  # each: source -> (place, content)
    for upload in uploads:
        try:
            source = check_upload(upload.name, len(upload.data), settings)
        except UploadRefused as exc:
            results.append(FileResult(exc.name, "failed", reason=f"refused: {exc.reason}"))
            if on_result is not None:
                on_result(results[-1])
            continue
        batch = next((r for r in rounds if source not in r), None)
        if batch is None:
            batch = {}
            rounds.append(batch)
        batch[source] = (len(results), upload.data)
        results.append(None)
    report = IngestReport()
    stored: set[Path] = set()  # kept files an earlier round ingested
    for batch in rounds:
        kept = {
            source: (place, store_upload(settings.uploads_dir, data, source, added_by=added_by))
            for source, (place, data) in batch.items()
        }
        try:
            done = _ingest_round(
                index, settings, kept, results, added_by, lock_timeout, effective, on_result
            )
        except BaseException:
            for place, path in kept.values():  # what was not ingested is not kept
                if results[place] is None and path not in stored:
                    _discard(path)
            raise
        stored |= {path for _, path in kept.values()}
        report.errors += done.errors
        report.repaired += done.repaired
    report.results = [r for r in results if r is not None]
    return report


# ---- through ingest's front door ---------------------------------------------------------


def _ingest_round(
    index: Index,
    settings: Settings,
    batch: dict[str, tuple[int, Path]],
    results: list,
    added_by: str,
    lock_timeout: float,
    effective: date | None,
    on_result: Callable[[FileResult], None] | None,
) -> IngestReport:
    """Ingest uploads of distinct names in one run; each result goes to its upload's place
    in ``results``. A file ingest refused or failed is not kept; one it stored replaces
    the kept copies of that name."""
    import ingest
    from app.wiring import ingest_config

    def settled(result: FileResult) -> None:
        place, path = batch[result.source]
        if result.status in ("failed", "skipped"):
            _discard(path)
            result = ingest.FileResult(result.source, "failed", reason=result.reason)
        else:  # the index holds this version now: older kept copies of it can go
            for old, meta in stored_uploads(settings.uploads_dir).items():
                if meta.get("source") == result.source and old != path:
                    _discard(old)
        results[place] = result
        if on_result is not None:
            on_result(result)

    report = ingest.ingest_paths(
        index,
        [path for _, path in batch.values()],
        config=ingest_config(settings),
        lock_timeout=lock_timeout,
        added_by=added_by or None,
        source_names={path: source for source, (_, path) in batch.items()},
        effective=effective,
        on_result=settled,
    )
    for source, (place, _) in batch.items():
        if results[place] is None:  # never reached: the run stopped before it
            settled(ingest.FileResult(source, "failed", reason="not attempted"))
    return report


def remove_documents(
    index: Index, settings: Settings, sources: Sequence[str], *, lock_timeout: float = LOCK_TIMEOUT
) -> list[str]:
    """Remove documents from the index, then their kept uploads. Returns the sources
    removed."""
    import ingest

    removed = ingest.remove_sources(index, list(sources), lock_timeout=lock_timeout)
    gone = set(removed)
    for path, meta in stored_uploads(settings.uploads_dir).items():
        if meta.get("source") in gone:
            _discard(path)
    return removed


def list_documents(index: Index) -> list:
    """What is indexed, one row per file (see ``ingest.list_documents``)."""
    import ingest

    return ingest.list_documents(index)


def rebuild(index: Index, *, lock_timeout: float = LOCK_TIMEOUT) -> int:
    """Re-create both indexes from the stored documents; returns the number of chunks."""
    import ingest

    return ingest.rebuild(index, lock_timeout=lock_timeout)


def set_effective(
    index: Index, source: str, effective: date, *, lock_timeout: float = LOCK_TIMEOUT
) -> str | None:
    """Correct a document's effective date (nothing is re-embedded); None if not indexed."""
    import ingest

    return ingest.set_effective(index, source, effective, lock_timeout=lock_timeout)
