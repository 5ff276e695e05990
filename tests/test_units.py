"""Pure pieces: chunk ids, RRF, prompt text, citation mapping, refusal detection."""

from __future__ import annotations

import pytest

from app.citations import is_refusal
from ingest.chunking import chunk_pages
from ingest.loaders import Page
from llm.prompt import build_prompt
from retrieval.fusion import reciprocal_rank_fusion
from retrieval.types import Chunk, Hit, chunk_id


def test_chunk_ids_are_content_hashes_and_stable():
    a = Chunk(text="Vacation is 28 days.", source="h.pdf", page=3, doc_id="d1")
    b = Chunk(text="Vacation is 28 days.", source="h.pdf", page=3, doc_id="d2")
    assert a.id == b.id == chunk_id("Vacation is 28 days.", "h.pdf", 3)
    assert len(a.id) == 64
    assert a.id != Chunk(text="Vacation is 28 days.", source="h.pdf", page=4, doc_id="d1").id
    assert a.id != Chunk(text="Vacation is 28 days.", source="g.pdf", page=3, doc_id="d1").id
    assert chunk_id("ab", "c", None) != chunk_id("a", "bc", None)


def test_chunking_keeps_pages_and_is_deterministic():
    pages = [Page("word " * 400, 1), Page("other " * 50, 2)]
    first = chunk_pages(pages, source="x.pdf", doc_id="d", size=300, overlap=50)
    again = chunk_pages(pages, source="x.pdf", doc_id="d", size=300, overlap=50)
    assert [c.id for c in first] == [c.id for c in again]
    assert {c.page for c in first} == {1, 2}
    assert all(len(c.text) <= 300 for c in first)
    assert chunk_pages([Page("hello", None)], source="m.txt", doc_id="d")[0].page is None


def test_rrf_on_known_lists():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]], k=60)
    scores = dict(fused)
    assert [doc for doc, _ in fused] == ["b", "a", "d", "c"]
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["a"] == pytest.approx(1 / 61)
    assert scores["d"] == pytest.approx(1 / 62)
    assert scores["c"] == pytest.approx(1 / 63)
    # a repeated id counts once, at its best rank
    assert dict(reciprocal_rank_fusion([["a", "a"]]))["a"] == pytest.approx(1 / 61)
    assert reciprocal_rank_fusion([]) == []
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"]], k=0)


GOLDEN_PROMPT = """Answer the question using only the information in the resources below.
Cite the resources you use by their number in square brackets, like [1].
If the resources disagree, follow the most recent one.
If you don't know the answer respond with "I don't know."
Don't make anything up.

Question: How many vacation days do I get?

Resources:
[1] (handbook.pdf, page 3, dated 2026-01-01)
Full-time staff get 28 days.

[2] (memo.md, dated 2026-09-08)
From October, 30 days.

Answer:"""


def _hits() -> list[Hit]:
    return [
        Hit("i1", "Full-time staff get 28 days.", "handbook.pdf", 3, 0.9, effective="2026-01-01"),
        Hit("i2", "From October, 30 days.", "memo.md", None, 0.8, effective="2026-09-08"),
    ]


def test_prompt_is_the_founding_icl_prompt_golden():
    assert build_prompt("  How many vacation days do I get? ", _hits()) == GOLDEN_PROMPT


def test_prompt_shows_each_resource_date_and_none_when_unknown():
    undated = Hit("i3", "Bikes go in the courtyard.", "notes.txt", None, 0.5)
    prompt = build_prompt("Where?", [*_hits(), undated])
    assert "[2] (memo.md, dated 2026-09-08)\n" in prompt
    assert "[3] (notes.txt)\n" in prompt


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("I don't know.", True),
        ("I don\u2019t know the answer.", True),
        ("I do not know.", True),
        ("The resources do not say. I don't know.", True),
        ("You get 28 days [1].", False),
        ("I know it is 28 days.", False),
    ],
)
def test_refusal_detection(text, refused):
    assert is_refusal(text) is refused
