"""Turn a file into pages of text. One function per format; each raises ``IngestError``
naming the file and the reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.errors import IngestError


@dataclass(frozen=True)
class Page:
    text: str
    number: int | None  # 1-based page of a PDF; None for formats without pages


def load_pdf(path: Path) -> list[Page]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError(f"{path.name}: the PDF is encrypted with a password")
        pages = [Page(p.extract_text() or "", i) for i, p in enumerate(reader.pages, start=1)]
    except IngestError:
        raise
    except (PdfReadError, ValueError, OSError, KeyError, TypeError) as exc:
        raise IngestError(f"{path.name}: not a readable PDF ({exc})") from exc
    if not any(p.text.strip() for p in pages):
        raise IngestError(f"{path.name}: no text found; OCR is not supported")
    return pages


def load_text(path: Path) -> list[Page]:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise IngestError(f"{path.name}: looks like a binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")  # old Windows files; never reject text
    if not text.strip():
        raise IngestError(f"{path.name}: the file is empty")
    return [Page(text, None)]


LOADERS: dict[str, Callable[[Path], list[Page]]] = {
    ".pdf": load_pdf,
    ".txt": load_text,
    ".md": load_text,
    ".markdown": load_text,
}


def supported(path: Path) -> bool:
    return path.suffix.lower() in LOADERS


def load(path: Path) -> list[Page]:
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise IngestError(
            f"{path.name}: unsupported file type {path.suffix or '(none)'}; "
            f"supported: {', '.join(sorted(LOADERS))}"
        )
    try:
        return loader(path)
    except OSError as exc:
        raise IngestError(f"{path.name}: cannot read the file ({exc.strerror or exc})") from exc
