"""Effective dates: each origin parsed (pure), stored on every chunk, carried by both
indexes into Hit, corrected without re-embedding."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ingest.dates import (
    ImpossibleDate,
    Supersedes,
    date_in_front_matter,
    date_in_name,
    date_in_text,
    effective_date,
    parse_date,
    pdf_date,
    supersedes,
)
from ingest.errors import IngestError

MEMO = """# Memo: New remote work rules

**Date:** 8 September 2026
**Subject:** More remote work (supersedes Employee Handbook section 6)

This memo supersedes section 6 ("Remote Work") of the Employee Handbook 2026 wherever
the two differ.
"""


# ---- each origin, pure ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2026-09-01", date(2026, 9, 1)),
        (" 2026-09 ", date(2026, 9, 1)),
        ("8 September 2026", date(2026, 9, 8)),
        ("8th Sept. 2026", date(2026, 9, 8)),
        ("September 8, 2026", date(2026, 9, 8)),
        ("08.09.2026", date(2026, 9, 8)),
        ("2024-02-29", date(2024, 2, 29)),
    ],
)
def test_typed_dates(typed, expected):
    assert parse_date(typed) == expected


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("2026-02-30", "February 2026 has 28 days"),
        ("2025-02-29", "February 2025 has 28 days"),
        ("31 April 2026", "April 2026 has 30 days"),
        ("2026-13-01", "no month 13"),
    ],
)
def test_impossible_dates_say_why(typed, why):
    with pytest.raises(ImpossibleDate, match=why):
        parse_date(typed)


def test_not_a_date_names_the_form_to_use():
    with pytest.raises(ValueError, match="2026-09-01"):
        parse_date("next Tuesday")


def test_date_line_in_the_text():
    assert date_in_text(MEMO) == date(2026, 9, 8)
    assert date_in_text("MEMO\n\nDate:    22 June 2026\nFrom: Jonas") == date(2026, 6, 22)
    # an Effective: line wins over the Date: line, wherever it is in the head
    both = "Date: 1 August 2026\nEffective date: 2026-10-01\n"
    assert date_in_text(both) == date(2026, 10, 1)
    # a date in running text is not the document's date; a label without a date is skipped
    assert date_in_text("From 1 October 2026 you may work from home.") is None
    assert date_in_text("Date: to be announced\nDated: 3 March 2026") == date(2026, 3, 3)


def test_front_matter():
    md = "---\ntitle: Travel\ndate: 2026-03-04\neffective: 2026-04-01\n---\n# Travel\n"
    assert date_in_front_matter(md) == date(2026, 4, 1)
    assert date_in_front_matter("---\ndate: '2026-03-04'\n---\nx") == date(2026, 3, 4)
    assert date_in_front_matter("# no front matter\ndate: 2026-03-04") is None


def test_file_name():
    assert date_in_name("memo_2026-09_remote_work.md") == date(2026, 9, 1)
    assert date_in_name("hr/memo_2026-09-08_remote.md") == date(2026, 9, 8)
    assert date_in_name("minutes_20260115.pdf") == date(2026, 1, 15)
    assert date_in_name("2020-archive/policy.pdf") is None  # folders are not the file
    assert date_in_name("policy_v3.pdf") is None
    with pytest.raises(ImpossibleDate, match="February 2026 has 28 days"):
        date_in_name("memo_2026-02-30_x.md")


def test_pdf_metadata():
    assert pdf_date("D:20260101000000Z") == date(2026, 1, 1)
    assert pdf_date("D:20251224093000+01'00'") == date(2025, 12, 24)
    assert pdf_date("D:2026") == date(2026, 1, 1)
    assert pdf_date("garbage") is None and pdf_date(None) is None
    assert pdf_date("D:20260231") is None  # junk metadata costs the date, not the file


def test_origins_in_order():
    added = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    given = effective_date(source="memo_2026-09_x.md", text=MEMO, given=date(2026, 9, 1))
    assert (given.iso, given.origin) == ("2026-09-01", "given")
    found = effective_date(source="memo_2026-09_x.md", text=MEMO)
    assert (found.iso, found.origin) == ("2026-09-08", "text")
    front = effective_date(source="x.md", text="---\ndate: 2026-05-05\n---\nDate: 1 May 2026")
    assert front.origin == "front matter" and front.iso == "2026-05-05"
    named = effective_date(source="memo_2026-09_x.md", text="no date here")
    assert (named.iso, named.origin) == ("2026-09-01", "file name")
    pdf = effective_date(source="h.pdf", text="no date", pdf_created="D:20260101000000Z")
    assert (pdf.iso, pdf.origin) == ("2026-01-01", "pdf metadata")
    fallback = effective_date(source="h.txt", text="no date", added=added)
    assert (fallback.iso, fallback.origin) == ("2026-11-23", "added")


def test_impossible_date_in_a_document_names_the_file():
    with pytest.raises(IngestError) as err:
        effective_date(source="memo_feb.md", text="Date: 30 February 2026\n\nHello")
    message = str(err.value)
    assert message.startswith("memo_feb.md: ")
    assert "February 2026 has 28 days" in message and "--effective" in message
    # a date given by the admin is used as is: the document's typo no longer matters
    ok = effective_date(source="memo_feb.md", text="Date: 30 February 2026", given=date(2026, 2, 1))
    assert ok.origin == "given"


def test_supersedes_is_read_from_the_head():
    assert supersedes(MEMO) == [Supersedes("employee handbook", "6", "Remote Work")]
    assert supersedes('This memo withdraws section 9.2 ("Refresh cycle") of the IT Policy.') == [
        Supersedes("it policy", "9.2", "Refresh cycle")
    ]
    # "replaces all earlier versions" names no other document
    assert supersedes("This edition replaces all earlier versions.") == []
    ref = supersedes(MEMO)[0]
    assert Supersedes.from_text(ref.to_text()) == ref


# ---- stored, carried, corrected -----------------------------------------------------------
def test_dates_are_stored_and_reach_hits_from_both_indexes(empty_index, tmp_path):
    from ingest import ingest_paths, list_documents

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "memo_2026-09_remote.md").write_text(MEMO + "\nYou may work from home 3 days.\n")
    (docs / "notes_2026-07.txt").write_text("Bicycles are parked in the courtyard racks.\n")
    (docs / "plain.txt").write_text("The canteen opens at 11:30 every working day.\n")
    report = ingest_paths(empty_index, [docs])
    assert [r.dated() for r in report.results] == [
        "dated 2026-09-08 (text)",
        "dated 2026-07-01 (file name)",
        f"dated {datetime.now(UTC).date().isoformat()} (added)",
    ]
    rows = {d.source: d for d in list_documents(empty_index)}
    memo = rows["memo_2026-09_remote.md"]
    assert (memo.effective, memo.effective_origin) == ("2026-09-08", "text")
    assert memo.supersedes == ('employee handbook | section 6 | "Remote Work"',)

    for mode in ("dense", "bm25", "hybrid"):
        hits = empty_index.retriever(mode, floor=-1).search("work from home days", 3)
        top = next(h for h in hits if h.source == "memo_2026-09_remote.md")
        assert top.effective == "2026-09-08", mode
        assert top.supersedes == memo.supersedes, mode


def test_a_date_is_corrected_without_re_embedding(empty_index, tmp_path):
    from ingest import ingest_paths, set_effective

    doc = tmp_path / "canteen.txt"
    doc.write_text("The canteen opens at 11:30 every working day.\n")
    ingest_paths(empty_index, [doc])
    store = empty_index.store
    ids = store.all_ids()
    before = store.embeddings(ids)
    calls = []
    real_embed = store.embedder.embed
    store.embedder.embed = lambda texts: calls.append(texts) or real_embed(texts)
    try:
        assert set_effective(empty_index, str(doc), date(2026, 3, 1)) == "canteen.txt"
        assert set_effective(empty_index, "unknown.txt", date(2026, 3, 1)) is None
        # the same file again with a date given: the date changes, nothing is re-read
        again = ingest_paths(empty_index, [doc], effective=date(2026, 4, 1))
    finally:
        store.embedder.embed = real_embed
    assert calls == []
    assert (again.results[0].status, again.results[0].reason) == ("updated", "effective date set")
    assert store.all_ids() == ids and store.embeddings(ids) == before
    assert store.effective_of("canteen.txt") == ("2026-04-01", "given")
    hit = empty_index.retriever("bm25", floor=-1).search("canteen opens", 1)[0]
    assert hit.effective == "2026-04-01"  # BM25 was re-derived with the new date


def test_impossible_date_fails_that_file_only(empty_index, tmp_path):
    from ingest import ingest_paths

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bad_memo.md").write_text("Date: 2026-02-30\n\nThe canteen closes early.\n")
    (docs / "good.txt").write_text("Date: 2026-02-27\n\nThe canteen opens at 11:30.\n")
    report = ingest_paths(empty_index, [docs])
    bad, good = report.results
    assert bad.status == "failed" and "2026-02-30 is not a date" in bad.reason
    assert not bad.reason.startswith("bad_memo.md")  # the CLI puts the name in front
    assert (good.status, good.effective) == ("added", "2026-02-27")
