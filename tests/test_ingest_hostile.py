"""Hostile files, made here: each is refused with a one-line reason (or read, where the
issue says so) while the rest go on, and the good files' chunks are left as they were."""

from __future__ import annotations

import io
import random
import shutil
import time
import zlib
from pathlib import Path

import pytest

from app.settings import SAMPLE_DOCS_DIR
from app.wiring import ingest_config, open_index, retrieval_config
from ingest import ingest_paths, list_documents
from ingest.loaders import LOADERS, Page, decode_text, looks_binary
from retrieval.bm25_index import BM25Index
from tests.conftest import make_settings, run_module

GOOD_TEXT = "Bicycle couriers are reimbursed for tyre repairs up to 40 euros a month.\n"


def load_slowly(path: Path) -> list[Page]:
    """A loader that hangs: the time limit must stop it (the worker imports it by name)."""
    time.sleep(600)
    return [Page("never", None)]


def raw_pdf(objects: list[bytes]) -> bytes:
    """A minimal PDF from object bodies, with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def bomb_pdf(inflated_mb: int = 100) -> bytes:
    """One page whose content stream is 100 KB of FlateDecode that inflates to 100 MB,
    past pypdf's 75 MB limit."""
    z = zlib.compressobj(9)
    data = b"".join(z.compress(b" " * (1 << 20)) for _ in range(inflated_mb)) + z.flush()
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            f"<< /Length {len(data)} /Filter /FlateDecode >>\nstream\n".encode()
            + data
            + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def text_pdf(*pages: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def image_only_pdf() -> bytes:
    """What a scanner makes: a page that is one picture, no text layer."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (400, 200), "white")
    ImageDraw.Draw(img).text((20, 80), "Scanned page: overtime rules", fill="black")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(img, x=10, y=10, w=150)
    return bytes(pdf.output())


def encrypted_pdf(user_password: str) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=SAMPLE_DOCS_DIR / "employee_handbook.pdf")
    # RC4 needs no extra package; AES would need 'cryptography'
    writer.encrypt(user_password, owner_password="owner-secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture
def hostile(tmp_path) -> Path:
    folder = tmp_path / "hostile"
    folder.mkdir()
    handbook = (SAMPLE_DOCS_DIR / "employee_handbook.pdf").read_bytes()
    rng = random.Random(4)
    files = {
        "a_good.txt": GOOD_TEXT.encode(),
        "b_good.pdf": text_pdf(
            "Parking permits for the Leipzig garage are issued by the front desk.",
            "Lost parking permits cost 15 euros to replace.",
        ),
        "encrypted.pdf": encrypted_pdf("secret"),
        "owner_only.pdf": encrypted_pdf(""),  # opens with the empty password
        "truncated.pdf": handbook[: len(handbook) // 2],
        "not_a_pdf.pdf": b"<html><body>Hello, I am a web page</body></html>",
        "bomb.pdf": bomb_pdf(),
        "scanned.pdf": image_only_pdf(),
        "empty.txt": b"",
        "latin1.txt": "Die Größe der Übungsräume: Käse und Brötchen im Foyer.\n".encode("latin-1"),
        "utf16.txt": "Zürich office: the café opens at 08:00.\n".encode("utf-16"),
        "random.txt": bytes(rng.getrandbits(8) for _ in range(4096)),
        "huge.txt": b"Overtime must be approved in advance. " * 20000,  # ~760 KB
        "m_stuck.slow": b"whatever",
        "notes.xyz": b"unsupported",
        "old.doc": b"\xd0\xcf\x11\xe0 an old Word file",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


EXPECTED_FAILURES = {
    "encrypted.pdf": "the PDF is encrypted with a password",
    "truncated.pdf": "not a readable PDF (truncated or damaged",
    "not_a_pdf.pdf": "not a readable PDF (it does not start with %PDF-)",
    "bomb.pdf": "decompression bomb",
    "scanned.pdf": "no text found; OCR is not supported",
    "empty.txt": "the file is empty",
    "random.txt": "looks like a binary file",
    "huge.txt": "above the 0.5 MB limit (setting max_file_mb)",
    "m_stuck.slow": "took longer than 3 s to read and was stopped",
}


def test_hostile_corpus(hostile, tmp_path, embedder, monkeypatch):
    monkeypatch.setitem(LOADERS, ".slow", load_slowly)
    settings = make_settings(tmp_path / "store", max_file_mb=0.5, file_timeout_s=3)
    index = open_index(settings, embedder=embedder)
    limits = ingest_config(settings)  # max_file_mb 0.5, file_timeout_s 3

    # the good files first, to see that the hostile run leaves them as they were
    good = tmp_path / "good"
    good.mkdir()
    for name in ("a_good.txt", "b_good.pdf"):
        shutil.copy(hostile / name, good / name)
    assert ingest_paths(index, [good], config=limits).ok
    before = sorted(index.store.all_ids())

    started = time.monotonic()
    report = ingest_paths(index, [hostile], config=limits)
    elapsed = time.monotonic() - started
    by_source = {r.source: r for r in report.results}

    for name, reason in EXPECTED_FAILURES.items():
        r = by_source[name]
        assert r.status == "failed" and reason in r.reason, (name, r)
        assert "\n" not in r.reason and len(r.reason) < 300, r.reason
    assert by_source["notes.xyz"].status == "skipped"
    assert by_source["notes.xyz"].reason == "unsupported file type .xyz"
    assert by_source["old.doc"].reason == "unsupported file type .doc (save it as .docx)"
    assert by_source["a_good.txt"].status == by_source["b_good.pdf"].status == "unchanged"
    for name in ("owner_only.pdf", "latin1.txt", "utf16.txt"):
        assert by_source[name].status == "added", by_source[name]
    assert not report.ok
    assert elapsed < 60, "the stuck file must be stopped at its time limit"

    # good files untouched; the handled ones stored whole; both indexes agree
    docs = {d.source: d for d in list_documents(index)}
    assert set(docs) == {"a_good.txt", "b_good.pdf", "owner_only.pdf", "latin1.txt", "utf16.txt"}
    assert docs["owner_only.pdf"].pages == 10 and docs["b_good.pdf"].pages == 2
    assert set(before) <= set(index.store.all_ids())
    assert index.store.verify() == []
    bm25 = BM25Index(retrieval_config(settings).bm25_dir)
    assert bm25.load() and len(bm25) == index.store.count()

    hits = index.retriever(mode="bm25", floor=-1).search("Größe Übungsräume Brötchen", 1)
    assert hits[0].source == "latin1.txt" and "Größe der Übungsräume" in hits[0].text
    hits = index.retriever(mode="bm25", floor=-1).search("Zürich café", 1)
    assert hits[0].source == "utf16.txt" and "café" in hits[0].text

    # a second run: the bad files fail again, nothing else moves
    again = {r.source: r.status for r in ingest_paths(index, [hostile], config=limits).results}
    assert all(again[name] == "failed" for name in EXPECTED_FAILURES)
    assert sorted(index.store.all_ids()) == sorted(set(index.store.all_ids()))
    assert index.store.verify() == []


def test_cli_names_each_bad_file_and_exits_non_zero(hostile, tmp_path):
    """The same through the command, one line per bad file; the summary counts them."""
    for name in ("m_stuck.slow", "huge.txt", "bomb.pdf", "random.txt", "owner_only.pdf"):
        (hostile / name).unlink()  # the CLI has no test hook; keep it quick
    proc = run_module("ingest", str(hostile), "--quiet", data_dir=tmp_path / "store")
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith(("failed:", "skip"))]
    assert "failed: encrypted.pdf: the PDF is encrypted with a password" in lines
    assert "failed: scanned.pdf: no text found; OCR is not supported" in lines
    assert "failed: empty.txt: the file is empty" in lines
    assert "skipped: notes.xyz: unsupported file type .xyz" in lines
    assert len(lines) == 7, lines  # 5 failed + 2 skipped, one line each
    assert "4 added, 0 updated, 0 unchanged, 5 failed, 2 skipped" in proc.stdout


def test_text_decoding_and_binary_detection():
    assert decode_text("naïve".encode()) == "naïve"
    assert decode_text("\ufeffBOM".encode()) == "BOM"
    assert decode_text("Grüße".encode("utf-16")) == "Grüße"
    assert decode_text("Grüße – €5".encode("cp1252")) == "Grüße – €5"
    assert decode_text(b"\x81 undefined in cp1252") == "\ufffd undefined in cp1252"
    assert not looks_binary("Grüße".encode("utf-16"))
    assert looks_binary(b"%PDF\x00\x01\x02")
    assert looks_binary(bytes(range(1, 32)) * 10)
    assert not looks_binary(b"tab\tseparated\r\nlines\x0cpage")
