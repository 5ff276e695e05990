"""Turn a file into pages of text. One function per format; each raises ``IngestError``
naming the file and the reason.

The loaders run in a child process (``ingest.worker``) so that a file that hangs or
explodes in memory cannot take the ingest down with it; they therefore import their
parsers lazily and keep no state. ``LOADERS`` maps a suffix to its loader: add an entry to
support a format (tests add a slow one to exercise the time limit).
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import IngestError


@dataclass(frozen=True)
class Page:
    text: str
    number: int | None  # 1-based page of a PDF; None for formats without pages
    # the date the file's own metadata gives (a PDF's /CreationDate, as written there), on
    # the first page only; ingest.dates reads it when the text names no date
    created: str | None = None


Loader = Callable[[Path], list[Page]]

# Acrobat only requires %%EOF within the last 1024 bytes (PDF Reference 1.7, implementation
# note 18); a file without it was cut short, and pypdf would silently return fewer pages.
_PDF_TAIL = 1024
# A DOCX is a zip: refuse one that unpacks to more than this (a zip bomb).
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
# C0 control characters other than tab, newline, vertical tab, form feed, carriage return:
# text hardly ever has them, random binary has about 11 %.
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_BINARY_RATIO = 0.05


# ---- PDF -----------------------------------------------------------------------------------
# Typeset PDFs draw "fi", "fl", "ffi"... as one ligature glyph, and pypdf returns it as one
# character (U+FB01 "\ufb01"): "con\ufb02ict" matches no search for "conflict", in BM25, in
# the answer check, and is embedded as another word. 139 of the 1,029 chunks of the public
# policies set had one. They are spelled out as the letters they stand for.
_LIGATURES = {c: unicodedata.normalize("NFKC", chr(c)) for c in range(0xFB00, 0xFB07)}


def pdf_text(text: str) -> str:
    """A PDF page's extracted text with typographic ligatures spelled out."""
    return text.translate(_LIGATURES)


def load_pdf(path: Path) -> list[Page]:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import DependencyError, LimitReachedError, PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings are ours to report
    with open(path, "rb") as f:
        head = f.read(1024)
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - _PDF_TAIL))
        tail = f.read()
    if b"%PDF-" not in head:
        raise IngestError(f"{path.name}: not a readable PDF (it does not start with %PDF-)")
    if b"%%EOF" not in tail:
        raise IngestError(
            f"{path.name}: not a readable PDF (truncated or damaged: no end-of-file marker)"
        )
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):  # many PDFs only restrict editing
            raise IngestError(f"{path.name}: the PDF is encrypted with a password")
        for page in reader.pages:  # inflated by pypdf, within its limits: a bomb stops here
            page.get_contents()
        texts = _pdfium_texts(path, len(reader.pages))
        if texts is None:  # PDFium cannot read what pypdf can: pypdf's text, slower
            texts = [p.extract_text() or "" for p in reader.pages]
        pages = [Page(pdf_text(t), i) for i, t in enumerate(texts, start=1)]
        if pages:
            pages[0] = Page(pages[0].text, 1, _pdf_created(reader))
    except IngestError:
        raise
    except LimitReachedError as exc:
        raise IngestError(
            f"{path.name}: refused: exceeds pypdf's safety limits, a likely decompression "
            f"bomb ({exc})"
        ) from exc
    except DependencyError as exc:
        raise IngestError(
            f"{path.name}: the PDF is encrypted with AES, which needs the 'cryptography' "
            f"package ({exc})"
        ) from exc
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise IngestError(f"{path.name}: not a readable PDF ({exc})") from exc
    except RecursionError as exc:
        raise IngestError(f"{path.name}: not a readable PDF (nested too deeply)") from exc
    if not any(p.text.strip() for p in pages):
        raise IngestError(f"{path.name}: no text found; OCR is not supported")
    return pages


def _pdfium_texts(path: Path, pages: int) -> list[str] | None:
    """Each page's text by PDFium, which reads the same words as pypdf's ``extract_text``
    in about a twentieth of its CPU time (the seven public policy PDFs, 290 pages: 0.75 s
    against 13.4 s). Lines end in "\n" (PDFium writes "\r\n"); a word that PDFium joined
    across a line break keeps its hyphen (PDFium marks it U+FFFE). None when PDFium cannot
    open the file or counts other pages than pypdf."""
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(path)
    except pdfium.PdfiumError:
        return None
    try:
        if len(doc) != pages:
            return None
        out = []
        for page in doc:
            textpage = page.get_textpage()
            out.append(textpage.get_text_range().replace("\r\n", "\n").replace("\ufffe", "-"))
            textpage.close()
            page.close()
        return out
    finally:
        doc.close()


def _pdf_created(reader) -> str | None:
    """The raw /CreationDate (else /ModDate) of the document information dictionary."""
    try:
        info = reader.metadata or {}
        value = info.get("/CreationDate") or info.get("/ModDate")
    except Exception:  # a damaged info dictionary costs the date, not the file
        return None
    return str(value) if value else None


# ---- plain text and Markdown ---------------------------------------------------------------
def looks_binary(data: bytes) -> bool:
    """True for bytes that are not text in any encoding we read (a UTF-16 file has NULs
    but starts with its BOM)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return False
    sample = data[:8192]
    if b"\x00" in sample:
        return True
    return len(_CONTROL.findall(sample)) > _BINARY_RATIO * len(sample)


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, else cp1252: text is never
    rejected for its encoding. cp1252 leaves five bytes undefined; those become U+FFFD."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # old Windows and latin-1 files


def load_text(path: Path) -> list[Page]:
    data = path.read_bytes()
    if looks_binary(data):
        raise IngestError(f"{path.name}: looks like a binary file, not text")
    text = decode_text(data)
    if not text.strip():
        raise IngestError(f"{path.name}: the file is empty")
    return [Page(text, None)]


# ---- DOCX ----------------------------------------------------------------------------------
def load_docx(path: Path) -> list[Page]:
    try:
        with zipfile.ZipFile(path) as z:
            unpacked = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise IngestError(f"{path.name}: not a readable DOCX file (not a zip archive)") from exc
    if unpacked > MAX_UNPACKED_BYTES:
        raise IngestError(
            f"{path.name}: refused: unpacks to {unpacked / 2**20:.0f} MB, a likely "
            f"decompression bomb"
        )
    import docx
    from docx.table import Table

    try:
        document = docx.Document(str(path))
        blocks: list[str] = []
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                for row in item.rows:
                    cells = [c.text.strip() for c in row.cells]
                    # merged cells repeat their text in each cell they span
                    cells = [c for i, c in enumerate(cells) if c and (i == 0 or c != cells[i - 1])]
                    if cells:
                        blocks.append(" | ".join(cells))
            elif item.text.strip():
                blocks.append(item.text.strip())
    except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors...
        raise IngestError(f"{path.name}: not a readable DOCX file ({exc})") from exc
    if not blocks:
        raise IngestError(f"{path.name}: no text found")
    return [Page("\n\n".join(blocks), None)]


# ---- HTML ----------------------------------------------------------------------------------
_DROP = ["script", "style", "noscript", "template", "svg", "iframe", "object", "head"]
_BLOCKS = [
    "p", "div", "section", "article", "main", "header", "footer", "aside", "nav",
    "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "dl", "dt", "dd",
    "table", "tr", "pre", "blockquote", "br", "hr", "figcaption", "caption",
]  # fmt: skip


def html_to_text(data: bytes | str) -> str:
    """The visible text of an HTML page, ``<title>`` first, one blank line between blocks."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "lxml")  # detects the encoding from the BOM or <meta charset>
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup.find_all(_DROP):
        tag.decompose()
    for tag in soup.find_all(_BLOCKS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    for cell in soup.find_all(["td", "th"]):
        cell.insert_after(" | ")
    body = soup.get_text()
    lines = (" ".join(line.split()) for line in body.splitlines())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return f"{title}\n\n{text}".strip() if title else text


def load_html(path: Path) -> list[Page]:
    try:
        text = html_to_text(path.read_bytes())
    except OSError:
        raise
    except Exception as exc:  # lxml and bs4 are lenient; anything left is a broken file
        raise IngestError(f"{path.name}: not a readable HTML file ({exc})") from exc
    if not text.strip():
        raise IngestError(f"{path.name}: no text found")
    return [Page(text, None)]


LOADERS: dict[str, Loader] = {
    ".pdf": load_pdf,
    ".txt": load_text,
    ".md": load_text,
    ".markdown": load_text,
    ".docx": load_docx,
    ".html": load_html,
    ".htm": load_html,
}

# formats people try that we do not read, with what to do instead
_HINTS = {
    ".doc": "save it as .docx",
    ".rtf": "save it as .docx or .txt",
    ".odt": "save it as .docx",
    ".pptx": "export it as PDF",
    ".xlsx": "export it as PDF or CSV text",
}


def supported(path: Path) -> bool:
    return path.suffix.lower() in LOADERS


def unsupported_reason(path: Path) -> str:
    suffix = path.suffix.lower()
    hint = f" ({_HINTS[suffix]})" if suffix in _HINTS else ""
    return f"unsupported file type {path.suffix or '(none)'}{hint}"


def loader_for(path: Path) -> Loader:
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise IngestError(
            f"{path.name}: {unsupported_reason(path)}; supported: {', '.join(sorted(LOADERS))}"
        )
    return loader


def load(path: Path) -> list[Page]:
    """Load in this process (no time limit); ``ingest.worker`` runs the same in a child."""
    loader = loader_for(path)
    try:
        return loader(path)
    except OSError as exc:
        raise IngestError(f"{path.name}: cannot read the file ({exc.strerror or exc})") from exc
