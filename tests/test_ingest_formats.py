"""DOCX and HTML are read as text (markup gone, <title> first), stored under the right
source, and searchable; the admin page's hooks (added_by, source_names) are kept; a PDF's
ligature glyphs are stored as the letters they stand for."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import ingest_paths, list_documents, rebuild, remove_sources, resolve_sources
from ingest.loaders import html_to_text, load_docx, load_html, load_pdf

HTML = """<!DOCTYPE html>
<html><head><meta charset="windows-1252"><title>Travel policy 2026</title>
<style>body { color: red; } .secret { display: none }</style>
<script>var tracking = "do not index this script";</script></head>
<body><nav><a href="/">Home</a> | <a href="/hr">HR</a></nav>
<h1>Business travel</h1>
<p>Train tickets are booked through the <b>travel desk</b>; first class is allowed
for journeys longer than four hours.</p>
<table><tr><th>Meal</th><th>Daily allowance</th></tr><tr><td>Lunch</td><td>14 EUR</td></tr></table>
<p>Caf\xe9 receipts are not reimbursed.</p>
</body></html>
""".encode("cp1252")


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Equipment policy", level=1)
    document.add_paragraph("Every developer receives a second monitor on request.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Device", "Replacement cycle"
    table.cell(1, 0).text, table.cell(1, 1).text = "Ergonomic chair", "every seven years"
    document.add_paragraph("Broken keyboards are swapped at the IT counter on floor 2.")
    document.save(str(path))
    return path


@pytest.fixture
def docs(tmp_path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    make_docx(folder / "equipment.docx")
    (folder / "travel.html").write_bytes(HTML)
    return folder


def test_html_text_without_markup_title_first(docs):
    (page,) = load_html(docs / "travel.html")
    lines = page.text.splitlines()
    assert lines[0] == "Travel policy 2026"
    assert page.number is None
    assert "<" not in page.text and "tracking" not in page.text and "color" not in page.text
    assert "Café receipts" in page.text  # the <meta charset> was honoured
    assert "Lunch | 14 EUR" in page.text
    assert "Train tickets are booked through the travel desk; first class" in " ".join(lines)
    assert html_to_text("<p>a</p><p>b</p>") == "a\n\nb"


def test_docx_paragraphs_and_tables_in_order(docs):
    (page,) = load_docx(docs / "equipment.docx")
    text = page.text
    assert text.index("Equipment policy") < text.index("second monitor") < text.index("keyboards")
    assert "Ergonomic chair | every seven years" in text


def test_docx_and_html_searchable_with_their_source(empty_index, docs):
    report = ingest_paths(empty_index, [docs], added_by="alice")
    assert report.ok and report.count("added") == 2
    retriever = empty_index.retriever(floor=-1)
    assert retriever.search("how often is an ergonomic chair replaced", 1)[0].source == (
        "equipment.docx"
    )
    assert retriever.search("daily lunch allowance when travelling", 1)[0].source == "travel.html"
    rows = {d.name: d for d in list_documents(empty_index)}
    assert set(rows) == {"equipment.docx", "travel.html"}
    assert rows["travel.html"].added_by == "alice" and rows["travel.html"].pages == 0
    assert rows["travel.html"].added_at.startswith("20")


def test_upload_keeps_the_users_name_and_round_trips(empty_index, tmp_path, docs):
    """The admin page stores an upload under a server-made name; the source is the
    user's own name, and removing by that name removes it from both indexes."""
    stored = tmp_path / "uploads" / "3f9a1c.html"
    stored.parent.mkdir()
    stored.write_bytes(HTML)
    report = ingest_paths(empty_index, [stored], source_names={stored: "Travel Policy.html"})
    assert [r.source for r in report.results] == ["Travel Policy.html"]
    assert [d.source for d in list_documents(empty_index)] == ["Travel Policy.html"]

    # the same bytes under the same name: unchanged; edited bytes: updated in place
    again = ingest_paths(empty_index, [stored], source_names={stored: "Travel Policy.html"})
    assert again.results[0].status == "unchanged"
    stored.write_bytes(HTML.replace(b"14 EUR", b"16 EUR"))
    again = ingest_paths(empty_index, [stored], source_names={stored: "Travel Policy.html"})
    assert again.results[0].status == "updated"
    texts = " ".join(t for _, t, *_ in empty_index.store.iter_chunks())
    assert "16 EUR" in texts and "14 EUR" not in texts
    assert empty_index.store.verify() == []

    ingest_paths(empty_index, [docs])
    assert resolve_sources(empty_index, [str(docs / "travel.html"), "nope.pdf"]) == {
        str(docs / "travel.html"): "travel.html",
        "nope.pdf": None,
    }
    assert remove_sources(empty_index, ["Travel Policy.html", "nope.pdf"]) == ["Travel Policy.html"]
    for mode in ("dense", "bm25", "hybrid"):
        hits = empty_index.retriever(mode=mode, floor=-1).search("lunch allowance 16 EUR", 10)
        assert all(h.source != "Travel Policy.html" for h in hits), mode
    assert {d.source for d in list_documents(empty_index)} == {"equipment.docx", "travel.html"}

    # rebuild re-embeds from the stored texts and keeps every chunk, id and metadata
    before = {d.source: (d.doc_id, d.chunks, d.added_at) for d in list_documents(empty_index)}
    assert rebuild(empty_index) == empty_index.store.count()
    after = {d.source: (d.doc_id, d.chunks, d.added_at) for d in list_documents(empty_index)}
    assert after == before
    hits = empty_index.retriever(floor=-1).search("ergonomic chair replacement", 1)
    assert hits[0].source == "equipment.docx"


def ligature_pdf() -> bytes:
    """One page whose font maps code 1 to the "fl" ligature (U+FB02) in its ToUnicode map,
    as typeset PDFs do: pypdf extracts "con\ufb02ict"."""
    cmap = (
        b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /Lig def "
        b"1 begincodespacerange <00> <FF> endcodespacerange 1 beginbfchar <01> <FB02> "
        b"endbfchar 1 beginbfrange <20> <7E> <0020> endbfrange endcmap CMapName currentdict "
        b"/CMap defineresource pop end end"
    )
    content = b"BT /F1 12 Tf 72 720 Td (A con\x01ict of interest must be declared.) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(cmap) + cmap + b"\nendstream",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


def test_pdf_ligatures_are_spelled_out_and_found(empty_index, tmp_path):
    from pypdf import PdfReader

    path = tmp_path / "ethics.pdf"
    path.write_bytes(ligature_pdf())
    assert "con\ufb02ict" in PdfReader(path).pages[0].extract_text()  # what pypdf gives
    assert load_pdf(path)[0].text == "A conflict of interest must be declared."
    assert ingest_paths(empty_index, [path]).ok
    (hit,) = empty_index.retriever(floor=-1, mode="bm25").search("conflict", 1)
    assert hit.source == "ethics.pdf" and "conflict" in hit.text


def test_pdf_text_is_read_by_pdfium_with_pypdf_as_the_fallback(monkeypatch):
    import pypdfium2 as pdfium
    from pypdf import PdfReader

    from ingest.loaders import pdf_text

    handbook = Path(__file__).parents[1] / "data" / "samples" / "employee_handbook.pdf"
    reader = PdfReader(handbook)
    pypdf_pages = [pdf_text(p.extract_text() or "") for p in reader.pages]
    opened = []
    real = pdfium.PdfDocument
    monkeypatch.setattr(pdfium, "PdfDocument", lambda *a, **k: opened.append(a) or real(*a, **k))
    pages = load_pdf(handbook)
    assert opened  # PDFium read the text
    assert [p.number for p in pages] == list(range(1, len(reader.pages) + 1))
    # the same words on every page, lines ending in "\n" as pypdf's do
    assert [p.text.split() for p in pages] == [t.split() for t in pypdf_pages]
    assert not any("\r" in p.text for p in pages)

    def unreadable(*args, **kwargs):
        raise pdfium.PdfiumError("Failed to load document (PDFium: Data format error).")

    monkeypatch.setattr(pdfium, "PdfDocument", unreadable)
    assert [p.text for p in load_pdf(handbook)] == pypdf_pages  # pypdf's text, not an error
