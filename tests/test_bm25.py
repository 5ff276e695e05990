"""BM25 scores against rank-bm25 (the independent reference), and the saved index's safety."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from retrieval.bm25_index import K1, BM25Index, terms, tokenize

CORPUS = [
    "Full-time employees receive twenty-eight days of paid annual leave.",
    "Sick leave requires a doctor's certificate from the fourth day of illness.",
    "Expense claims must be submitted within thirty days with receipts.",
    "Remote work is allowed on up to two days per week with approval.",
    "Passwords must have at least fourteen characters and MFA is mandatory.",
    "Business travel is booked through the travel desk in economy class.",
    "Laptops are replaced every three years by the IT department.",
    "Gifts above fifty euros must be declared to the compliance officer.",
]
QUERIES = [
    "annual leave days",
    "doctor certificate illness",
    "password characters MFA",
    "travel economy desk",
]


class LuceneIdfOkapi(BM25Okapi):
    """rank-bm25's Okapi BM25 with Lucene's idf, ln(1 + (N - df + 0.5)/(df + 0.5)): the
    variant the product uses. Its term-frequency part is rank-bm25's own code."""

    def _calc_idf(self, nd):
        for word, freq in nd.items():
            self.idf[word] = math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5))


def _index(tmp_path) -> BM25Index:
    index = BM25Index(tmp_path / "bm25")
    index.build([(f"id{i}", text, "doc.txt", None) for i, text in enumerate(CORPUS)])
    return index


@pytest.mark.parametrize("query", QUERIES)
def test_scores_match_rank_bm25(tmp_path, query):
    ours = _index(tmp_path).scores(query)
    reference = LuceneIdfOkapi([terms(t) for t in CORPUS], k1=K1, b=0.75)
    expected = reference.get_scores(terms(query))
    # rank-bm25 keeps the (k1 + 1) numerator factor that Lucene drops: a constant per corpus
    np.testing.assert_allclose(ours * (K1 + 1), expected, rtol=1e-5)
    assert int(np.argmax(ours)) == int(np.argmax(expected))


@pytest.mark.parametrize(("k1", "b"), [(0.9, 0.3), (2.0, 0.0)])
def test_other_k1_and_b_are_used(tmp_path, k1, b):
    """The parameters bench.retrieval_tuning studies reach the index: scores match
    rank-bm25 with the same k1 and b, and differ from the product's defaults."""
    index = BM25Index(tmp_path / "bm25", k1=k1, b=b)
    index.build([(f"id{i}", text, "doc.txt", None) for i, text in enumerate(CORPUS)])
    query = QUERIES[0]
    reference = LuceneIdfOkapi([terms(t) for t in CORPUS], k1=k1, b=b)
    np.testing.assert_allclose(
        index.scores(query) * (k1 + 1), reference.get_scores(terms(query)), rtol=1e-5
    )
    assert not np.allclose(index.scores(query), _index(tmp_path / "default").scores(query))


def test_tokenize_stems_and_drops_stopwords():
    assert tokenize("The Employees are receiving leave") == ["employe", "receiv", "leav"]


def test_terms_are_the_words_then_each_adjacent_pair():
    found = terms("The probation period of new staff")
    assert found[:4] == ["probat", "period", "new", "staff"]
    pairs = found[4:]
    assert len(pairs) == 3 and len(set(pairs)) == 3
    assert all(p.startswith(" ") for p in pairs)  # never a word's term
    assert pairs[0] == terms("probation periods")[-1]  # the same pair, whatever its form
    assert pairs[0] != terms("period of probation")[-1]  # order matters
    assert terms("the") == []


def test_words_in_the_question_order_outrank_the_same_words_scattered(tmp_path):
    """Two chunks with the same words, as often, and as long: the one where the question's
    words stand next to each other ranks first (without the pairs they would tie)."""
    rows = [
        ("scattered", "The period for review of probation meetings.", "a.txt", None),
        ("together", "The probation period for review meetings.", "b.txt", None),
        ("other", "Expense claims need receipts.", "c.txt", None),
    ]
    index = BM25Index(tmp_path / "bm25")
    index.build(rows)
    assert sorted(tokenize("The period for review of probation meetings.")) == sorted(
        tokenize("The probation period for review meetings.")
    )
    hits = index.search("How long is the probation period?", 3)
    assert [h.id for h in hits[:2]] == ["together", "scattered"]
    assert hits[0].score > hits[1].score
    words_only = BM25Index(tmp_path / "words", pair_weight=0)
    words_only.build(rows)
    tied = words_only.scores("How long is the probation period?")
    assert tied[0] == pytest.approx(tied[1])
    # the pairs indexed but not asked for (BM25 alone, fusion alone): the two tie again
    unasked = index.scores("How long is the probation period?", pairs=False)
    assert unasked[0] == pytest.approx(unasked[1])


def test_save_load_roundtrip_and_search(tmp_path):
    index = _index(tmp_path)
    index.save()
    loaded = BM25Index(tmp_path / "bm25")
    assert loaded.load()
    assert loaded.checksum == index.checksum and len(loaded) == len(CORPUS)
    hits = loaded.search("doctor certificate", 3)
    assert hits[0].id == "id1"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert loaded.search("zebra unicorn", 3) == []


def test_damaged_or_missing_index_is_refused(tmp_path):
    index = _index(tmp_path)
    assert not BM25Index(tmp_path / "bm25").load()  # never saved
    index.save()
    folder = tmp_path / "bm25" / index.pointer()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["count"] -= 1  # a lost chunk: the count disagrees with the segments
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert not BM25Index(tmp_path / "bm25").load()
    (folder / "manifest.json").write_text("{not json")
    assert not BM25Index(tmp_path / "bm25").load()


def test_a_damaged_segment_is_refused(tmp_path):
    index = _index(tmp_path)
    index.save()
    docs = tmp_path / "bm25" / index._segments[0].name / "docs.json"
    docs.write_text(json.dumps(json.loads(docs.read_text())[:-1]))  # a row lost
    assert not BM25Index(tmp_path / "bm25").load()


def test_a_version_replaced_and_removed_while_it_loads_gives_way_to_the_new_one(
    tmp_path, monkeypatch
):
    """A reader in another process reads the version the pointer names while a writer saves
    the next one and removes it (at 100,000 chunks a load takes seconds): the reader loads
    the new one instead of taking the old one for damaged, which would rebuild from Chroma."""
    first = _index(tmp_path)
    first.save()
    writer = BM25Index(tmp_path / "bm25")
    writer.build([(f"new{i}", text, "doc.txt", None) for i, text in enumerate(CORPUS[:3])])
    reader = BM25Index(tmp_path / "bm25")
    read = BM25Index._read_manifest
    names = []

    def racing(self, name):
        names.append(name)
        if len(names) == 1:  # the writer's save lands as the reader starts
            writer.save()
            assert not (tmp_path / "bm25" / name).exists()
        return read(self, name)

    monkeypatch.setattr(BM25Index, "_read_manifest", racing)
    assert reader.load()
    assert names == [first.version, writer.version]
    assert reader.version == writer.version and len(reader) == 3
    assert reader.search("doctor certificate", 1)[0].id == "new1"


def test_index_saved_with_other_scoring_is_refused(tmp_path):
    """The saved counts were made with a context weight and pair weight, and their scores
    are read with k1 and b: an index saved with other values is not loaded (the caller
    rebuilds it from Chroma)."""
    index = _index(tmp_path)
    index.save()
    assert BM25Index(tmp_path / "bm25").load()
    assert not BM25Index(tmp_path / "bm25", k1=0.9).load()
    assert not BM25Index(tmp_path / "bm25", b=0.4).load()
    assert not BM25Index(tmp_path / "bm25", pair_weight=0).load()
    assert not BM25Index(tmp_path / "bm25", context_weight=1).load()


class _Rows:
    """A ``ChunkSource`` over fixed rows (``BM25Index.build``'s), as Chroma would give them."""

    def __init__(self, rows, writer_active=False):
        self.rows = rows
        self.writing = writer_active

    def all_ids(self):
        return [r[0] for r in self.rows]

    def iter_chunks(self):
        return iter(self.rows)

    def change_marker(self):
        return None

    def count(self):
        return len(self.rows)

    def writer_active(self):
        return self.writing


def test_a_reader_whose_version_a_writer_replaced_as_it_checked_loads_the_new_one(
    tmp_path, monkeypatch
):
    """A reader loads the saved version; before it has compared it with the store, the next
    writer writes the store, saves its version and lets go of the lock (a small file into
    a large store takes about as long as that check). The reader loads the writer's version
    instead of taking its own for damaged and rebuilding from every chunk."""
    from retrieval.bm25_live import LiveBM25

    rows = [(f"id{i}", text, "doc.txt", None) for i, text in enumerate(CORPUS)]
    saved = BM25Index(tmp_path / "bm25")
    saved.build(rows)
    saved.save()
    grown = [*rows, ("id8", "Parking spaces are assigned by lottery.", "doc.txt", None)]
    store = _Rows(grown)
    writer = BM25Index(tmp_path / "bm25")
    writer.build(grown)
    real = _Rows.all_ids

    def all_ids_after_a_writer(self):
        if writer.version is None:  # the writer finishes as the reader first asks
            writer.save()
        return real(self)

    monkeypatch.setattr(_Rows, "all_ids", all_ids_after_a_writer)
    builds = []
    build = BM25Index.build
    monkeypatch.setattr(
        BM25Index, "build", lambda self, *a, **k: builds.append(1) or build(self, *a, **k)
    )
    live = LiveBM25(tmp_path / "bm25")
    assert live.ensure(store).version == writer.version and builds == []
    assert live.current.search("lottery parking", 1)[0].id == "id8"


def test_a_reader_serves_the_saved_version_while_a_writer_is_at_work(tmp_path):
    """A reader that loads the saved version while a writer is writing the store (its
    chunks not yet in BM25) serves that version instead of rebuilding from the store (every
    chunk read, and the writer's version to extend replaced). If the writer lets go of the
    lock without saving one (it died), the next search brings BM25 in line."""
    from retrieval.bm25_live import LiveBM25

    rows = [(f"id{i}", text, "doc.txt", None) for i, text in enumerate(CORPUS)]
    saved = BM25Index(tmp_path / "bm25")
    saved.build(rows)
    saved.save()
    pointer = saved.pointer()
    store = _Rows([*rows, ("id8", "Parking spaces are assigned by lottery.", "doc.txt", None)])
    store.writing = True  # mid-write: Chroma has id8, the writer's BM25 sync is to come
    live = LiveBM25(tmp_path / "bm25")
    served = live.ensure(store)
    assert served.version == pointer and len(served) == len(rows)  # loaded, not rebuilt
    assert saved.pointer() == pointer
    assert not live.is_stale(store)  # no reload at each search while the writer works

    store.writing = False  # the writer died before its sync
    assert live.is_stale(store)
    assert len(live.ensure(store)) == len(rows) + 1
    assert live.current.search("lottery parking", 1)[0].id == "id8"


def test_live_index_rebuilds_with_the_scoring_of_the_one_it_wraps(tmp_path):
    """A rebuilt or reloaded version keeps k1, b and the pair weight of the index it replaces,
    not the product's defaults (which would make it refuse its own saved version)."""
    from retrieval.bm25_live import LiveBM25

    rows = [(f"id{i}", text, "doc.txt", None) for i, text in enumerate(CORPUS)]
    live = LiveBM25(tmp_path / "bm25", BM25Index(tmp_path / "bm25", k1=0.9, b=0.4, pair_weight=0))
    first = live.sync(_Rows(rows))
    assert (first.k1, first.b, first.pair_weight) == (0.9, 0.4, 0)
    pointer = first.pointer()
    again = live.sync(_Rows(rows))  # the saved version matches: loaded, not rebuilt
    assert again.pointer() == pointer and (again.k1, again.b, again.pair_weight) == (0.9, 0.4, 0)


def _rows(texts, context=""):
    return [(f"id{i}", t, "doc.txt", None, None, (), context) for i, t in enumerate(texts)]


def _same_ranking(a: BM25Index, b: BM25Index) -> None:
    # no term of a removed chunk
    assert [set(s.vocab) for s in a._segments] == [set(s.vocab) for s in b._segments]
    for query in [*QUERIES, "laptops replaced years", "remote work approval weeks"]:
        np.testing.assert_allclose(a.scores(query), b.scores(query), rtol=1e-6)


def test_a_rebuild_tokenizes_only_the_chunks_the_saved_version_lacks(tmp_path, bm25_tokenized):
    """After an ingest that changes a few chunks of a large store, the rebuild takes the
    other chunks' terms from the saved version: the same index as a whole rebuild (scores and
    vocabulary), with only the new and changed texts tokenized, also a second time over."""
    first = BM25Index(tmp_path / "bm25")
    first.build(_rows(CORPUS), reuse=True)  # nothing saved yet: everything is tokenized
    first.save()
    texts = list(CORPUS)
    texts[2] = "Expense claims must be submitted within sixty days with receipts."  # changed
    del texts[5]  # removed: its words leave the vocabulary
    texts.append("The office moves to Prager Strasse on the third of August.")  # added
    # ids follow the position, so every chunk after the removed one also has other text
    rows = [(f"id{i}", t, "doc.txt", None, None, (), "") for i, t in enumerate(CORPUS[:5])]
    rows[2] = ("id2", texts[2], "doc.txt", None, None, (), "")
    rows += [(f"id{i}", CORPUS[i], "doc.txt", None, None, (), "") for i in (6, 7)]
    rows.append(("id8", texts[-1], "doc.txt", None, None, (), ""))
    seen = bm25_tokenized
    seen.clear()
    second = BM25Index(tmp_path / "bm25")
    second.build(rows, reuse=True)
    assert seen == [texts[2], texts[-1]]
    whole = BM25Index(tmp_path / "whole")
    whole.build(rows)
    _same_ranking(second, whole)

    second.save()
    seen.clear()
    rows.append(("id9", "Gift cards count as gifts of their face value.", "doc.txt", None))
    third = BM25Index(tmp_path / "bm25")
    third.build(rows, reuse=True)
    assert seen == ["Gift cards count as gifts of their face value."]
    whole.build(rows)
    _same_ranking(third, whole)


def test_saved_terms_made_otherwise_or_damaged_are_not_reused(tmp_path, bm25_tokenized):
    """Terms saved with another context weight or pair weight, or a damaged terms file,
    mean every chunk is tokenized again, and the index is what a whole rebuild gives."""
    from retrieval.bm25_index import TERMS

    saved = BM25Index(tmp_path / "bm25")
    saved.build(_rows(CORPUS, "Employee Handbook"))
    saved.save()
    seen = bm25_tokenized
    seen.clear()
    words_only = BM25Index(tmp_path / "bm25", pair_weight=0)
    words_only.build(_rows(CORPUS, "Employee Handbook"), reuse=True)
    assert len(seen) == len(CORPUS)
    whole = BM25Index(tmp_path / "whole", pair_weight=0)
    whole.build(_rows(CORPUS, "Employee Handbook"))
    _same_ranking(words_only, whole)

    (tmp_path / "bm25" / saved._segments[0].name / TERMS).write_bytes(b"PK\x03\x04 not a zip")
    seen.clear()
    again = BM25Index(tmp_path / "bm25")
    again.build(_rows(CORPUS, "Employee Handbook"), reuse=True)
    assert len(seen) == len(CORPUS)
    whole = BM25Index(tmp_path / "whole2")
    whole.build(_rows(CORPUS, "Employee Handbook"))
    _same_ranking(again, whole)


def test_live_index_rebuild_reuses_terms_but_an_explicit_full_rebuild_does_not(
    tmp_path, bm25_tokenized
):
    """The rebuild after an ingest (``LiveBM25.sync``) tokenizes only the added chunk;
    ``reuse=False`` (``Index.rebuild_bm25`` and ``python -m ingest --rebuild``, where a person
    asks for everything again) tokenizes every chunk."""
    from retrieval.bm25_live import LiveBM25

    rows = [(f"id{i}", text, "doc.txt", None) for i, text in enumerate(CORPUS)]
    live = LiveBM25(tmp_path / "bm25")
    live.sync(_Rows(rows), rebuild=True)
    seen = bm25_tokenized
    seen.clear()
    rows.append(("id8", "Parking spaces are assigned by lottery.", "doc.txt", None))
    live.sync(_Rows(rows), rebuild=True)
    assert seen == ["Parking spaces are assigned by lottery."]
    seen.clear()
    live.sync(_Rows(rows), rebuild=True, reuse=False)
    assert len(seen) == len(rows)


def test_scores_are_bm25s_own_bit_for_bit(tmp_path):
    """The scores computed from the counts when a question comes are those bm25s's
    ``index`` keeps precomputed and its ``get_scores`` sums, bit for bit and of the same
    type, for the same terms (a term repeated in a chunk or in the question, context lines
    counted twice)."""
    import bm25s

    from retrieval.bm25_index import METHOD, _Doc, _Terms

    rows = _rows([*CORPUS, f"{CORPUS[0]} {CORPUS[0]} {CORPUS[6]}"], "Employee Handbook")
    index = BM25Index(tmp_path / "bm25")
    index.build(rows)
    made = _Terms([_Doc.from_row(r) for r in rows], [], index._tokens)
    chunks = [p.tolist() for p in np.split(made.flat, np.cumsum(made.lengths)[:-1])]
    reference = bm25s.BM25(method=METHOD, k1=index.k1, b=index.b)
    reference.index((chunks, made.vocab()), show_progress=False)
    for query in [*QUERIES, "annual annual leave employee handbook", "laptops years"]:
        known = [t for t in terms(query) if t in reference.vocab_dict]
        theirs = reference.get_scores(known)
        ours = index.scores(query)
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)


def _by_id(index: BM25Index, query: str) -> dict[str, float]:
    return dict(zip((d.id for d in index._docs), index.scores(query).tolist(), strict=True))


def _as_whole(index: BM25Index, tmp_path) -> None:
    """``index`` scores every chunk as one whole build of its chunks does, bit for bit."""
    whole = BM25Index(tmp_path / "whole")
    whole.build(index._docs)
    for query in [*QUERIES, "laptops replaced years", "parking lottery", "gift cards"]:
        assert _by_id(index, query) == _by_id(whole, query)


EXTRA = [
    "Parking spaces are assigned by lottery every spring.",
    "Gift cards count as gifts of their face value.",
    "The canteen serves lentil soup on Fridays.",
]


def test_an_extended_version_scores_as_a_whole_rebuild_and_reads_only_its_new_segment(
    tmp_path, monkeypatch
):
    """A writer extends the saved version: the chunks it changed removed, its new ones one
    more segment. A reader that had the old version loads the new one reading that segment
    alone, and every chunk scores as in a whole rebuild of the same chunks, bit for bit."""
    from retrieval import bm25_index

    base = BM25Index(tmp_path / "bm25")
    base.build(_rows(CORPUS))
    base.save()
    reader = BM25Index(tmp_path / "bm25")
    assert reader.load()

    writer = BM25Index(tmp_path / "bm25")  # another process: nothing loaded
    changed = ("id2", "Expense claims must be submitted within sixty days.", "doc.txt", None)
    added = [(f"new{i}", t, "doc.txt", None) for i, t in enumerate(EXTRA)]
    removed = ["id2", "id5", "not-indexed"]  # id2 changed, id5 deleted
    read = []
    real = bm25_index._Segment.read
    monkeypatch.setattr(bm25_index._Segment, "read", lambda p: read.append(p.name) or real(p))
    name = writer.extend(base.version, [changed, *added], removed, expect=len(CORPUS) + 2)
    assert name is not None and writer.pointer() == name
    assert read == []  # the writer read no segment's rows

    fresh = reader.empty_like()
    assert fresh.load() and fresh.version == name and fresh.segments == 2
    assert len(read) == 1  # the new segment; the first came from the reader's memory
    assert len(fresh) == len(CORPUS) + 2
    assert {d.id for d in fresh._docs} == {f"id{i}" for i in range(8) if i != 5} | {
        "new0",
        "new1",
        "new2",
    }
    assert fresh.search("sixty days expense", 1)[0].text == changed[1]
    assert not [h for h in fresh.search("economy class travel desk", 3) if h.id == "id5"]
    _as_whole(fresh, tmp_path)


def test_a_writer_that_would_not_hold_the_stores_count_extends_nothing(tmp_path):
    base = BM25Index(tmp_path / "bm25")
    base.build(_rows(CORPUS))
    base.save()
    pointer = base.pointer()
    extra = [("new0", EXTRA[0], "doc.txt", None)]
    assert base.empty_like().extend(pointer, extra, [], expect=len(CORPUS)) is None
    assert base.pointer() == pointer
    other_scoring = BM25Index(tmp_path / "bm25", k1=0.9)
    assert other_scoring.extend(pointer, extra, [], expect=None) is None
    assert base.pointer() == pointer


def test_many_extensions_merge_the_newer_segments_and_many_removals_merge_all(tmp_path):
    """More than ``MAX_SEGMENTS`` segments: those after the first merge into one; more than
    ``MAX_REMOVED`` of the rows removed: every segment merges. Scores stay a whole
    rebuild's throughout, and the folders of segments no version names are removed."""
    from retrieval import bm25_index
    from retrieval.bm25_index import MAX_SEGMENTS

    directory = tmp_path / "bm25"
    index = BM25Index(directory)
    index.build(_rows(CORPUS * 4))  # 32 chunks
    index.save()
    first = index._segments[0].name
    for n in range(MAX_SEGMENTS):  # the last one makes MAX_SEGMENTS + 1
        row = (f"x{n}", f"{EXTRA[n % 3]} Note {n}.", "extra.txt", None)
        assert index.extend(index.pointer(), [row], [], expect=32 + n + 1)
        assert index.load()
        _as_whole(index, tmp_path / f"w{n}")
    assert index.segments == 2 and index._segments[0].name == first
    assert len(index) == 32 + MAX_SEGMENTS

    segments = {p.name for p in directory.iterdir() if p.name.startswith("s-")}
    assert len(segments) > 2  # merged segments wait out their grace

    old = bm25_index.SEGMENT_GRACE_S
    bm25_index.SEGMENT_GRACE_S = -1
    try:
        gone = [f"id{i}" for i in range(10)]  # 10 of 40 rows: more than MAX_REMOVED
        assert index.extend(index.pointer(), [], gone, expect=30)
    finally:
        bm25_index.SEGMENT_GRACE_S = old
    assert index.load() and index.segments == 1 and len(index) == 30
    assert first != index._segments[0].name
    _as_whole(index, tmp_path / "last")
    segments = {p.name for p in directory.iterdir() if p.name.startswith("s-")}
    assert segments == {index._segments[0].name}
    assert [p.name for p in directory.iterdir() if p.name.startswith("v")] == [index.version]


def test_searches_during_a_reload_keep_their_version_and_one_thread_loads(tmp_path, monkeypatch):
    """When another process has saved a new version, the first search to notice loads it
    while the searches that come meanwhile keep the version they have, at once (not
    waiting, and not loading the same version again after it); before any version is
    loaded, searches wait for the one load."""
    import threading

    from retrieval.bm25_live import LiveBM25

    rows = [(f"id{i}", text, "doc.txt", None) for i, text in enumerate(CORPUS)]
    grown = [*rows, ("id8", "Parking spaces are assigned by lottery.", "doc.txt", None)]
    saved = BM25Index(tmp_path / "bm25")
    saved.build(rows)
    saved.save()
    loads: list[int] = []
    gate = threading.Event()
    real_load = BM25Index.load

    def slow_load(self):
        loads.append(1)
        assert gate.wait(10)
        return real_load(self)

    monkeypatch.setattr(BM25Index, "load", slow_load)

    def ensure_all(live, store, n):
        threads = [threading.Thread(target=live.ensure, args=(store,)) for _ in range(n)]
        for t in threads:
            t.start()
        return threads

    live = LiveBM25(tmp_path / "bm25")  # nothing loaded yet: every search waits for one load
    waiting = ensure_all(live, _Rows(rows), 3)
    gate.set()
    for t in waiting:
        t.join(10)
    assert len(loads) == 1 and len(live.current) == len(rows)
    old = live.current

    newer = BM25Index(tmp_path / "bm25")  # another process's ingest
    newer.build(grown)
    newer.save()
    gate.clear()
    loading = ensure_all(live, _Rows(grown), 1)
    deadline = time.monotonic() + 10
    while not loads[1:] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert loads[1:], "the stale index was not loaded"
    started = time.monotonic()
    assert all(live.ensure(_Rows(grown)) is old for _ in range(3))
    assert time.monotonic() - started < 5  # they did not wait for the load
    gate.set()
    loading[0].join(10)
    assert len(loads) == 2 and len(live.current) == len(grown)
    assert live.ensure(_Rows(grown)) is live.current and len(loads) == 2
