"""One contract every retriever passes (bm25, dense, hybrid), on a real Chroma store with real
embeddings; then the relevance floor and the BM25 self-repair from Chroma."""

from __future__ import annotations

import shutil

import pytest

from ingest import ingest_paths, rebuild
from retrieval import chroma_store
from retrieval.chroma_store import TEXT_KEY

MODES = ["bm25", "dense", "hybrid"]


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "vacation.txt").write_text("Full-time employees get 28 days of annual leave.\n")
    (folder / "sick.txt").write_text("Call your manager before 09:00 when you are sick.\n")
    (folder / "laptop.md").write_text("# Equipment\nLaptops are replaced every three years.\n")
    return folder


@pytest.mark.parametrize("mode", MODES)
def test_contract(empty_index, docs, mode):
    retriever = empty_index.retriever(mode=mode, floor=-1)
    assert retriever.search("annual leave", 5) == []  # empty index: empty list

    ingest_paths(empty_index, [docs])
    retriever = empty_index.retriever(mode=mode, floor=-1)
    hits = retriever.search("how many days of annual leave", 2)
    assert 0 < len(hits) <= 2
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].source == "vacation.txt"
    assert all(h.similarity is not None for h in hits)
    assert retriever.search("   ", 3) == []

    (docs / "vacation.txt").unlink()
    empty_index.store.delete_source("vacation.txt")
    empty_index.rebuild_bm25()
    for k in (1, 3, 10):
        assert all(h.source != "vacation.txt" for h in retriever.search("annual leave days", k))


def test_relevance_floor_drops_unrelated(sample_index):
    retriever = sample_index.retriever()  # the settings' floor
    assert retriever.search("What is the capital of Australia?", 5) == []
    hits = retriever.search("How many vacation days do full-time employees get?", 5)
    assert hits and (hits[0].source, hits[0].page) == ("employee_handbook.pdf", 3)


def test_an_ingest_tokenizes_only_its_own_chunks_for_bm25_and_rebuild_all(
    empty_index, docs, bm25_tokenized
):
    """An ingest that adds one file re-derives BM25 from Chroma taking the other chunks'
    terms from the saved version (what makes one file added to a large store cheap), and
    finds it by its words; ``python -m ingest --rebuild`` tokenizes every chunk again."""
    ingest_paths(empty_index, [docs])
    tokenized = bm25_tokenized
    tokenized.clear()
    (docs / "parking.txt").write_text("Parking spaces in the garage are assigned by lottery.\n")
    ingest_paths(empty_index, [docs])
    assert tokenized == ["Parking spaces in the garage are assigned by lottery."]
    hits = empty_index.retriever(mode="bm25", floor=-1).search("garage lottery", 1)
    assert hits[0].source == "parking.txt"

    tokenized.clear()
    assert rebuild(empty_index) == empty_index.store.count() == 4
    assert len(tokenized) == 4


def test_bm25_rebuilt_from_chroma_when_missing_or_stale(empty_index, docs):
    ingest_paths(empty_index, [docs])
    shutil.rmtree(empty_index.config.bm25_dir)
    retriever = empty_index.retriever(mode="bm25", floor=-1)  # rebuilds at start
    assert retriever.search("laptops replaced", 1)[0].source == "laptop.md"

    # another writer changes the store: the running retriever notices and reloads
    (docs / "extra.txt").write_text("The canteen serves vegetarian lunch on Thursdays.\n")
    ingest_paths(empty_index, [docs / "extra.txt"])
    assert retriever.search("vegetarian canteen lunch", 1)[0].source == "extra.txt"


def test_bm25_alone_asks_for_no_word_pairs(empty_index, tmp_path):
    """The question's word pairs count only where late interaction re-scores after BM25
    (``BM25Index.search(..., pairs=)``): BM25 alone ranks by words, as it did before the
    pairs, where the pairs would put the other chunk first."""
    folder = tmp_path / "pairs"
    folder.mkdir()
    texts = {
        "a.txt": "Each review period ends with a probation talk, and a period of probation "
        "may follow the review.",
        "b.txt": "The probation period lasts six months for new staff.",
        "c.txt": "Expense claims need receipts within thirty days.",
        "d.txt": "Laptops are replaced every three years by the IT department.",
    }
    for name, text in texts.items():
        (folder / name).write_text(text + "\n")
    ingest_paths(empty_index, [folder])
    retriever = empty_index.retriever(mode="bm25", floor=-1)
    question = "How long is the probation period?"
    assert [h.source for h in retriever.bm25.search(question, 2, pairs=True)] == ["b.txt", "a.txt"]
    assert [h.source for h in retriever.search(question, 2)] == ["a.txt", "b.txt"]


def _stored(index) -> dict[str, tuple[str | None, dict]]:
    got = index.store.collection().get(include=["documents", "metadatas"])
    rows = zip(got["ids"], got["documents"], got["metadatas"], strict=True)
    return {cid: (doc, meta) for cid, doc, meta in rows}


def test_chunk_texts_are_kept_in_metadata_not_in_chromas_full_text_index(empty_index, docs):
    """Chroma builds a full-text index over documents, which nothing here searches: each
    chunk's text goes in its metadata instead, and every read finds it there."""
    ingest_paths(empty_index, [docs])
    store = empty_index.store
    stored = _stored(empty_index)
    assert stored and all(doc is None for doc, _ in stored.values())
    texts = {cid: meta[TEXT_KEY] for cid, (_, meta) in stored.items()}
    assert "Call your manager before 09:00 when you are sick." in texts.values()

    assert {cid: text for cid, text, *_ in store.iter_chunks()} == texts
    assert all(TEXT_KEY not in meta for _, _, meta in store.records(["documents", "metadatas"]))
    assert store.page_chunks("vacation.txt", None) == [
        "Full-time employees get 28 days of annual leave."
    ]
    for mode in MODES:
        hit = empty_index.retriever(mode=mode, floor=-1).search("annual leave days", 1)[0]
        assert (hit.source, hit.text) == ("vacation.txt", texts[hit.id])

    # a metadata-only update (the effective date) leaves the text in place
    assert store.set_effective("laptop.md", "2026-01-01") == 1
    assert {cid: meta[TEXT_KEY] for cid, (_, meta) in _stored(empty_index).items()} == texts


def test_store_with_texts_as_chroma_documents_still_reads_and_a_rebuild_moves_them(
    empty_index, docs
):
    """Stores written before stop 28 keep each text as the Chroma document: searches,
    the BM25 rebuild and the documents list read it from there, with no re-ingest;
    ``rebuild`` moves the texts into the metadata."""
    ingest_paths(empty_index, [docs])
    col = empty_index.store.collection()
    got = col.get(include=["metadatas", "embeddings"])
    ids, metas = got["ids"], got["metadatas"]
    texts = [m.pop(TEXT_KEY) for m in metas]
    col.delete(ids=ids)
    col.add(ids=ids, documents=texts, metadatas=metas, embeddings=got["embeddings"])  # old layout
    assert all(
        doc is not None and TEXT_KEY not in meta for doc, meta in _stored(empty_index).values()
    )
    expected = dict(zip(ids, texts, strict=True))

    empty_index.rebuild_bm25()
    assert {cid: text for cid, text, *_ in empty_index.store.iter_chunks()} == expected
    for mode in MODES:
        hit = empty_index.retriever(mode=mode, floor=-1).search("laptops replaced", 1)[0]
        assert (hit.source, hit.text) == ("laptop.md", expected[hit.id])
        assert "Laptops are replaced every three years." in hit.text
    assert {d.source for d in empty_index.store.documents()} == {
        "vacation.txt", "sick.txt", "laptop.md"
    }  # fmt: skip

    assert rebuild(empty_index) == len(ids)
    stored = _stored(empty_index)
    assert {cid: meta[TEXT_KEY] for cid, (_, meta) in stored.items()} == expected
    assert all(doc is None for doc, _ in stored.values())
    hit = empty_index.retriever(mode="hybrid", floor=-1).search("sick manager", 1)[0]
    assert hit.text == "Call your manager before 09:00 when you are sick."


def test_every_chunk_is_read_once_across_read_batches(empty_index, docs, monkeypatch):
    """The store reads its chunks back (BM25 rebuild, documents list, repair) a batch of
    ids at a time; with batches smaller than the store, each chunk still comes once."""
    (docs / "long.txt").write_text("\n\n".join(f"Rule {n}: " + "word " * 150 for n in range(6)))
    ingest_paths(empty_index, [docs])
    store = empty_index.store
    stored = store.all_ids()
    assert len(stored) > 5
    monkeypatch.setattr(chroma_store, "_READ_BATCH", 2)
    read = [cid for cid, *_ in store.iter_chunks()]
    assert sorted(read) == sorted(stored) and len(set(read)) == len(read)
    assert {d.source: d.chunks for d in store.documents()}["long.txt"] == len(stored) - 3


def test_a_new_documents_rows_are_the_rows_chroma_gives_back_once_it_is_written(empty_index):
    """``NewDocument.rows`` stands in for reading back what an ingest has just written (the
    closing BM25 sync takes it instead): it must be what ``iter_chunks`` reads, field for
    field, with a page, a date, what it supersedes, its title and a heading."""
    from retrieval.chroma_store import NewDocument
    from retrieval.types import Chunk

    chunks = [
        Chunk("Probation lasts six months.", "policy.pdf", 2, "d1", title="HR", heading="2 > Pr"),
        Chunk("It may be extended once.", "policy.pdf", 3, "d1", acl=("hr",), title="HR"),
        Chunk("No title and no page.", "policy.pdf", None, "d1"),
    ]
    doc = NewDocument(
        chunks,
        empty_index.embedder.embed([c.index_text for c in chunks]),
        added_at="2026-12-03T21:00:00+00:00",
        added_by="admin",
        pages=3,
        effective="2026-09-08",
        effective_origin="text",
        supersedes=["HR Policy 2024", "memo 7"],
    )
    empty_index.store.put_documents([doc])
    stored = sorted(empty_index.store.iter_chunks())
    assert sorted(doc.rows()) == stored
    assert {r[4] for r in stored} == {"2026-09-08"} and stored[0][5] == ("HR Policy 2024", "memo 7")
    # the rows of some ids, as the sync reads those it was not given
    some = sorted(c.id for c in chunks[:2])
    assert sorted(empty_index.store.iter_chunks(some)) == [r for r in stored if r[0] in some]


MEMOS = {
    "canteen.md": "# Canteen\n\nThe canteen serves lentil soup on Fridays.\n",
    "parking.md": "# Parking\n\nParking spaces are assigned by lottery each spring.\n",
    "bikes.md": "# Bikes\n\nBike racks stand behind the north entrance.\n",
}


def _memos(folder):
    """Three one-section memos written to ``folder``: their paths, in ``MEMOS``'s order."""
    paths = []
    for name, text in MEMOS.items():
        paths.append(folder / name)
        paths[-1].write_text(text)
    return paths


def _reads(store, monkeypatch) -> list[str]:
    """The ids of the chunks ``store`` gives back with their text from now on (a BM25
    sync's reads; listing the documents reads their metadata only)."""
    read: list[str] = []
    real = store.records

    def records(include, ids=None):
        for row in real(include, ids):
            if "documents" in include:
                read.append(row[0])
            yield row

    monkeypatch.setattr(store, "records", records)
    return read


def _same_as_a_full_read(index) -> None:
    """The BM25 index holds the rows that reading every chunk back gives, each scored as
    there (re-derived by a writer, as ``python -m ingest --rebuild`` does: in line
    afterwards)."""
    made = index.live_bm25.current

    def scored(bm25, query):
        return dict(zip((d.id for d in bm25._docs), bm25.scores(query).tolist(), strict=True))

    with index.writer():
        index.sync_bm25(rebuild=True, reuse=False)
    full = index.live_bm25.current
    assert sorted(full._docs) == sorted(made._docs)
    for query in ("lottery parking", "lentil soup canteen", "bike racks", "memo"):
        assert scored(made, query) == scored(full, query)


def test_the_ingests_bm25_sync_reads_back_no_chunk_it_has_just_written(
    empty_index, tmp_path, monkeypatch
):
    """The closing BM25 sync takes the chunks an ingest wrote from the ingest. Here the
    saved version is not the one the last writer left in line (a search process saved its
    own since), so the others are read back from Chroma; both are searchable afterwards."""
    from retrieval.bm25_live import LiveBM25

    first, second, _ = _memos(tmp_path)
    assert ingest_paths(empty_index, [first]).ok
    store = empty_index.store
    old = set(store.all_ids())
    LiveBM25(empty_index.live_bm25.directory).sync(store, rebuild=True)  # a reader's version
    read = _reads(store, monkeypatch)
    report = ingest_paths(empty_index, [second])
    assert report.ok and report.count("added") == 1
    new = set(store.all_ids()) - old
    assert new and set(read) == old  # the first file's chunks read, none of the second's
    bm25 = empty_index.live_bm25.current
    assert bm25.search("lottery parking", 1)[0].source == "parking.md"
    assert bm25.search("lentil soup", 1)[0].source == "canteen.md"
    _same_as_a_full_read(empty_index)


def test_a_writer_reads_back_only_what_it_changed_when_the_last_one_left_bm25_in_line(
    empty_index, tmp_path, monkeypatch
):
    """Each writer leaves its BM25 version recorded as in line with Chroma; the next one
    takes the rows of the chunks it did not change from there instead of reading every
    chunk back (about 10 s at 100,000 chunks): nothing for a new file, the document's own
    chunks for a date corrected in place. The index is the one a full read makes."""
    from datetime import date

    from ingest import remove_sources

    first, second, third = _memos(tmp_path)
    assert ingest_paths(empty_index, [first]).ok
    store = empty_index.store
    canteen = set(store.all_ids())
    read = _reads(store, monkeypatch)

    assert ingest_paths(empty_index, [second, third]).ok
    assert read == []
    bm25 = empty_index.live_bm25.current
    assert bm25.search("lottery parking", 1)[0].source == "parking.md"
    assert bm25.search("lentil soup", 1)[0].source == "canteen.md"
    _same_as_a_full_read(empty_index)

    read.clear()
    again = ingest_paths(empty_index, [first], effective=date(2026, 4, 1))
    assert again.results[0].reason == "effective date set"
    assert set(read) == canteen  # the chunks updated in place, and only those
    hit = empty_index.live_bm25.current.search("lentil soup", 1)[0]
    assert (hit.source, hit.effective) == ("canteen.md", "2026-04-01")

    read.clear()
    assert remove_sources(empty_index, ["bikes.md"]) == ["bikes.md"]
    assert read == []  # a removal changes no row
    assert not empty_index.live_bm25.current.search("bike racks north", 3)
    _same_as_a_full_read(empty_index)


def test_a_search_process_that_loads_bm25_mid_write_leaves_the_writer_its_extension(
    empty_index, tmp_path, monkeypatch
):
    """Back-to-back writers: a search process that loads the BM25 version while the next
    writer is writing Chroma serves it (without that writer's chunks, for the moment)
    instead of rebuilding it from every chunk and saving its own, which would also make the
    writer read every chunk back instead of extending the version it started from."""
    from app.wiring import open_index
    from tests.conftest import make_settings

    first, second, _ = _memos(tmp_path)
    assert ingest_paths(empty_index, [first]).ok
    reader = open_index(make_settings(empty_index.config.data_dir), embedder=empty_index.embedder)
    store = empty_index.store
    pointer = empty_index.live_bm25.current.pointer()
    read = _reads(store, monkeypatch)
    put = store.put_documents
    served = []

    def put_then_search(docs):
        written = put(docs)
        assert store.writer_active() and reader.store.writer_active()
        served.append(reader.live_bm25.ensure(reader.store))  # a search, mid-write
        return written

    monkeypatch.setattr(store, "put_documents", put_then_search)
    assert ingest_paths(empty_index, [second]).ok
    assert served[0].version == pointer and len(served[0]) < store.count()
    assert read == []  # extended: nothing read back
    assert not store.writer_active()
    assert reader.live_bm25.is_stale(reader.store)  # the writer's version is saved
    hit = reader.live_bm25.ensure(reader.store).search("lottery parking", 1)[0]
    assert hit.source == "parking.md"


def test_a_writer_that_dies_before_its_bm25_sync_leaves_the_next_one_reading_everything(
    empty_index, tmp_path, monkeypatch
):
    """The record that BM25 is in line goes as a writer starts, before it changes anything:
    a writer that changed a date in place and died before re-deriving BM25 leaves none, so
    the next writer reads every chunk back and BM25 gets the date."""
    first, second, _ = _memos(tmp_path)
    assert ingest_paths(empty_index, [first]).ok
    store = empty_index.store
    old = set(store.all_ids())
    with pytest.raises(RuntimeError), empty_index.writer():
        store.set_effective("canteen.md", "2026-05-01")
        raise RuntimeError("killed before its BM25 sync")
    read = _reads(store, monkeypatch)
    assert ingest_paths(empty_index, [second]).ok
    assert set(read) == old
    hit = empty_index.live_bm25.current.search("lentil soup", 1)[0]
    assert (hit.source, hit.effective) == ("canteen.md", "2026-05-01")
