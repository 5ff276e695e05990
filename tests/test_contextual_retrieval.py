"""Contextual chunks and fusion: a chunk is found by its document's title and section heading,
while what is shown stays the chunk's own words; fusion orders hand-built rankings as its
formulas say."""

from __future__ import annotations

import numpy as np
import pytest

from ingest import ingest_paths
from ingest.chunking import chunk_pages
from ingest.context import document_title, heading_of, page_headings
from ingest.loaders import Page
from retrieval.bm25_index import BM25Index
from retrieval.context import index_text
from retrieval.fusion import convex_fusion, fuse_hybrid, min_max, reciprocal_rank_fusion

HEADER = "Acme GmbH - Staff Handbook - Edition 2026"
HANDBOOK = [
    Page(
        f"{HEADER}\n3 Probation\nNew staff are assessed during their first months. The\n"
        "assessment is done by the manager.\nExtension\nIt may be extended once, by at most\n"
        "three months, with a written reason.\nStaff Handbook - Page 1",
        1,
    ),
    Page(
        f"{HEADER}\nThe extension is recorded in the personnel file.\n4 Parking\n"
        "Spaces are rented monthly for EUR 35.\nStaff Handbook - Page 2",
        2,
    ),
    Page(f"{HEADER}\n5 Canteen\nLunch is served from noon.\nStaff Handbook - Page 3", 3),
]


def test_headings_are_short_title_lines_not_running_text_or_page_furniture():
    assert heading_of("3 Vacation and Annual Leave") == "3 Vacation and Annual Leave"
    assert heading_of("Requesting leave") == "Requesting leave"
    assert heading_of("## What changes") == "What changes"
    assert heading_of("5. MAY DAY") == "5. MAY DAY"
    assert heading_of("be treated ourselves.") is None  # ends a sentence
    assert heading_of("To: All employees") is None  # a memo's field
    assert heading_of("1 April 2010") is None  # a date, not section 1
    assert heading_of("Employees must refrain from any activity directed") is None
    assert heading_of("Carry-over", previous="x " * 60) is None  # wrapped running text
    found = [h for page in page_headings(HANDBOOK) for _, h in page]
    assert HEADER not in " ".join(found)  # the running header repeats on every page
    assert found == ["3 Probation", "3 Probation > Extension", "4 Parking", "5 Canteen"]


def test_chunks_carry_title_and_heading_but_keep_their_own_text():
    chunks = chunk_pages(HANDBOOK, source="hr/Staff_Handbook.pdf", doc_id="d", size=120, overlap=0)
    by_text = {c.text: c for c in chunks}
    extended = next(c for t, c in by_text.items() if "It may be extended" in t)
    assert extended.title == "Staff Handbook"
    assert extended.heading == "3 Probation > Extension"
    assert "Probation" not in extended.text  # shown and quoted: the chunk's own words
    assert extended.index_text == f"Staff Handbook > 3 Probation > Extension\n\n{extended.text}"
    # a section goes on over a page break
    carried = next(c for t, c in by_text.items() if "The extension is recorded" in t)
    assert carried.page == 2 and carried.heading == "3 Probation > Extension"
    # the same text at the same place keeps its id, whatever its context
    assert (
        extended.id
        == chunk_pages(
            HANDBOOK, source="hr/Staff_Handbook.pdf", doc_id="d", size=120, overlap=0, context=False
        )[[c.text for c in chunks].index(extended.text)].id
    )


def test_document_title_from_markdown_memo_subject_or_file_name():
    assert document_title([Page("# Remote work rules\n\nText.", None)], "m.md") == (
        "Remote work rules"
    )
    memo = Page("MEMO\nDate: 1 May 2026\nSubject: The office moves\n\nDear all,", None)
    assert document_title([memo], "memo.txt") == "The office moves"
    assert document_title([Page("1\n\nText", 1)], "x/Information_Security-Policy.pdf") == (
        "Information Security Policy"
    )


def test_index_text_does_not_repeat_the_heading_or_the_title():
    assert index_text("Text.", "T", "H") == "T > H\n\nText."
    assert index_text("H then more.", "T", "H") == "T\n\nH then more."
    assert index_text("## H then more.", "T", "T > H") == "T\n\n## H then more."
    assert index_text("Text.") == "Text."


def test_bm25_finds_a_chunk_by_its_heading_and_returns_its_own_text(tmp_path):
    # (id, text, source, page, effective, supersedes, context)
    docs = [
        ("a", "It may be extended once, by three months.", "h.pdf", 1, "2026-01-05", ("v1",))
        + ("Handbook > Probation",),
        ("b", "Spaces are rented monthly for EUR 35.", "h.pdf", 2, None, (), "Handbook > Parking"),
        ("c", "Lunch is served from noon until two.", "h.pdf", 3, None, (), "Handbook > Canteen"),
    ]
    index = BM25Index(tmp_path / "bm25")
    index.build(docs)
    index.save()
    loaded = BM25Index(tmp_path / "bm25")
    assert loaded.load()
    for idx in (index, loaded):
        hits = idx.search("can the probation be extended?", 3)
        assert hits[0].id == "a"
        assert hits[0].text == "It may be extended once, by three months."
        assert (hits[0].effective, hits[0].supersedes) == ("2026-01-05", ("v1",))
    # an index saved with another context weight is refused, so the caller rebuilds it
    assert not BM25Index(tmp_path / "bm25", context_weight=index.context_weight + 1).load()
    bare = BM25Index(tmp_path / "bare")
    bare.build([d[:4] for d in docs])  # no context: the heading's word is nowhere
    assert [h.id for h in bare.search("probation", 3)] == []


PARKING = "Spaces in the garage are rented monthly for EUR 35 through the portal. " * 7
INTRO = "Either parent may take it after the birth or the adoption of a child. " * 7
PARENTAL = "It lasts up to fourteen weeks and is paid in full by the company. " + (
    "Tell your manager as early as you can so that the team can plan ahead. " * 6
)


def test_page_found_by_its_heading_end_to_end(empty_index, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "handbook.md").write_text(
        f"# Staff handbook\n\n## Parking\n\n{PARKING}\n\n## Parental leave\n\n{INTRO}\n\n"
        f"{PARENTAL}\n"
    )
    (folder / "travel.md").write_text(
        "# Travel policy\n\nTrains are booked in second class for trips under four hours.\n"
    )
    ingest_paths(empty_index, [folder])
    # the answer's own words never say "parental leave": only its heading does
    for mode in ("bm25", "dense", "hybrid"):
        hits = empty_index.retriever(mode=mode, floor=-1).search(
            "How many weeks does parental leave last?", 3
        )
        assert hits[0].source == "handbook.md"
        assert hits[0].text == " ".join(PARENTAL.split())  # shown verbatim, no heading
        # ... and the hit says what it sits under (the answer check reads it as topic)
        assert hits[0].context == "Staff handbook > Parental leave", mode
    texts = [t for _, t, *_ in empty_index.store.iter_chunks()]
    assert not any(t.startswith("Staff handbook") for t in texts)


def test_rebuild_reembeds_the_contextual_text(empty_index, embedder, tmp_path):
    doc = tmp_path / "rules.md"
    doc.write_text("# Canteen rules\n\n## Opening hours\n\nIt opens at noon on weekdays.\n")
    ingest_paths(empty_index, [doc])
    (cid, text, *_, context), *_ = list(empty_index.store.iter_chunks())
    assert context
    expected = np.asarray(embedder.embed([f"{context}\n\n{text}"])[0])
    assert np.allclose(empty_index.store.embeddings([cid])[cid], expected, atol=1e-5)
    empty_index.store.rebuild()
    assert np.allclose(empty_index.store.embeddings([cid])[cid], expected, atol=1e-5)


# ---- fusion on hand-built rankings ----------------------------------------------------------
def test_weighted_rrf_lets_the_heavier_list_win_a_tie():
    plain = reciprocal_rank_fusion([["a", "b"], ["b", "a"]], k=60)
    assert [d for d, _ in plain] == ["a", "b"]  # a tie: first seen first
    weighted = reciprocal_rank_fusion([["a", "b"], ["b", "a"]], k=60, weights=[1.0, 2.0])
    assert [d for d, _ in weighted] == ["b", "a"]
    assert dict(weighted)["b"] == pytest.approx(1 / 62 + 2 / 61)
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"]], weights=[1.0, 1.0])


def test_convex_fusion_weighs_normalised_scores():
    dense = [("a", 0.80), ("b", 0.79), ("c", 0.30)]
    sparse = [("b", 12.0), ("c", 11.5), ("a", 2.0)]
    assert min_max([0.8, 0.79, 0.3]) == pytest.approx([1.0, 0.98, 0.0])
    fused = convex_fusion([dense, sparse], [0.5, 0.5])
    # b: nearly a's cosine and first for BM25; c: close to b for BM25 but far in meaning
    assert [d for d, _ in fused] == ["b", "a", "c"]
    assert [s for _, s in fused] == pytest.approx([0.5 * 0.98 + 0.5, 0.5, 0.5 * 0.95])
    # with more weight on BM25, c's near-top BM25 score overtakes a's cosine
    assert [d for d, _ in convex_fusion([dense, sparse], [0.3, 0.7])] == ["b", "c", "a"]
    assert [d for d, _ in convex_fusion([dense, sparse], [1.0, 0.0])] == ["a", "b", "c"]
    assert convex_fusion([[], []], [0.5, 0.5]) == []


def test_fuse_hybrid_at_equal_weight_is_plain_rrf():
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.4)]
    sparse = [("c", 9.0), ("a", 3.0)]
    plain = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=60)
    fused = fuse_hybrid(dense, sparse, method="rrf", dense_weight=0.5)
    assert [d for d, _ in fused] == [d for d, _ in plain] == ["a", "c", "b"]
    assert [s for _, s in fused] == pytest.approx([s for _, s in plain])
    with pytest.raises(ValueError, match="convex, rrf"):
        fuse_hybrid(dense, sparse, method="borda")
    with pytest.raises(ValueError):
        fuse_hybrid(dense, sparse, dense_weight=1.5)


def test_a_document_stored_without_context_is_indexed_again(empty_index, tmp_path):
    from ingest.pipeline import file_hash, now_iso
    from retrieval.chroma_store import NewDocument
    from retrieval.types import Chunk

    doc = tmp_path / "rules.md"
    doc.write_text("# Canteen rules\n\n## Opening hours\n\nIt opens at noon on weekdays.\n")
    old = Chunk(doc.read_text(), "rules.md", None, file_hash(doc))  # as stored before titles
    empty_index.store.put_documents(
        [
            NewDocument(
                [old],
                empty_index.embedder.embed([old.text]),
                added_at=now_iso(),
                effective="2026-03-01",
                effective_origin="given",
            )
        ]
    )
    assert not empty_index.store.has_context("rules.md")
    report = ingest_paths(empty_index, [doc])
    assert report.results[0].status == "updated"
    assert empty_index.store.has_context("rules.md")
    # the date a person gave it stays (it is not in the file)
    assert empty_index.store.effective_of("rules.md") == ("2026-03-01", "given")
    assert old.id not in empty_index.store.all_ids()
    assert ingest_paths(empty_index, [doc]).results[0].status == "unchanged"
    assert empty_index.store.verify() == []


def test_a_bm25_index_of_an_older_format_is_rebuilt_with_dates_and_context(tmp_path, caplog):
    import json
    import logging

    from retrieval.bm25_index import MANIFEST
    from retrieval.bm25_live import LiveBM25

    row = ("a", "It may be extended once.", "h.md", 1, "2026-01-05", ("v1",), "H > Probation")
    index = BM25Index(tmp_path / "bm25")
    index.build([row])
    index.save()
    folder = tmp_path / "bm25" / index.pointer()
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["format_version"] = 2  # as main or this branch wrote it before the merge
    (folder / MANIFEST).write_text(json.dumps(manifest))

    class Store:
        def all_ids(self):
            return ["a"]

        def iter_chunks(self):
            return iter([row])

        def change_marker(self):
            return None

    caplog.set_level(logging.INFO, logger="retrieval.bm25_index")
    assert not BM25Index(tmp_path / "bm25").load()
    assert "has format 2" in caplog.text and "rebuilt" in caplog.text
    live = LiveBM25(tmp_path / "bm25")
    (hit,) = live.ensure(Store()).search("probation", 3)  # found by its context line
    assert (hit.effective, hit.supersedes) == ("2026-01-05", ("v1",))
    assert BM25Index(tmp_path / "bm25").load()  # saved again in the current format
