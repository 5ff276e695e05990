"""Many people at once: searches run without pause while an admin uploads, deletes and
re-indexes, and while ``python -m ingest`` writes from another process.

Every hit must be whole: its id is the content hash of its text, source and page (so it is
what Chroma stores, or stored, for that id), its text is a piece of a version of the file it
names, and a document that is never touched is found by every search, re-index or not.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import Counter
from pathlib import Path

import pytest

from app import uploads
from app.wiring import open_index
from ingest import ingest_paths
from retrieval.types import chunk_id
from tests.conftest import make_settings, run_module

STABLE = "canteen.txt"
STABLE_QUESTION = "which day does the canteen serve vegetarian lunch"
QUESTIONS = [
    STABLE_QUESTION,
    "how many days of annual leave",
    "parking permits front desk",
    "laptop replacement policy",
    "travel allowance per day",
]


def _text(source: str, version: int) -> str:
    """A file whose every line names its source and version, so a chunk shown under another
    source's name is caught."""
    topics = {
        "leave.txt": "annual leave is {n} days per year for full-time staff",
        "parking.txt": "parking permits are issued by the front desk on floor {n}",
        "laptop.txt": "laptops are replaced every {n} years by the IT team",
        "travel.txt": "the travel allowance is {n} EUR per day abroad",
    }
    if source == STABLE:
        line = "the canteen serves vegetarian lunch on Thursdays"
    else:
        line = topics[source]
    return "\n".join(
        f"[{source} v{version}] line {i}: " + line.format(n=version * 10 + i) + "."
        for i in range(24)
    )


def _norm(text: str) -> str:
    return " ".join(text.split())


class Searchers:
    """Threads that search without pause and check every hit."""

    def __init__(self, retrievers, written: dict[str, list[str]]) -> None:
        self.retrievers, self.written = retrievers, written
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.bad: list[str] = []
        self.phase = "start"
        self.during: Counter[str] = Counter()  # searches that overlapped each phase
        self.started: Counter[str] = Counter()  # searches begun in each phase
        self.threads = [
            threading.Thread(target=self._run, args=(r, i), daemon=True)
            for i, r in enumerate(retrievers)
        ]

    def _check(self, mode: str, question: str, hits) -> None:
        for h in hits:
            if chunk_id(h.text, h.source, h.page) != h.id:
                self.bad.append(f"{mode}: id {h.id[:8]} does not hash to its text/source/page")
            elif not any(_norm(h.text) in _norm(v) for v in self.written.get(h.source, [])):
                self.bad.append(f"{mode}: {h.source} shown with text {h.text[:60]!r}")
        if question == STABLE_QUESTION and all(h.source != STABLE for h in hits):
            self.bad.append(f"{mode}: the untouched {STABLE} was not found ({self.phase})")

    def _run(self, retriever, offset: int) -> None:
        i = offset
        while not self.stop.is_set():
            question = QUESTIONS[i % len(QUESTIONS)]
            i += 1
            phase = self.phase
            self.started[phase] += 1
            try:
                hits = retriever.search(question, 8)
            except Exception:
                self.errors.append(traceback.format_exc())
                continue
            self._check(retriever.mode, question, hits)
            self.during.update({phase, self.phase})  # the phases this search overlapped

    def enter(self, phase: str) -> None:
        """Start ``phase`` once a search has begun in it, so the write that follows runs
        while searches are in flight (a delete is over in milliseconds: without this wait no
        search may have started or finished within it)."""
        self.phase = phase
        deadline = time.monotonic() + 30
        while self.started[phase] == 0 and time.monotonic() < deadline:
            time.sleep(0.001)

    def __enter__(self) -> Searchers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def test_searches_are_never_torn_while_admins_and_the_cli_write(tmp_path, embedder):
    settings = make_settings(tmp_path / "store")
    docs = tmp_path / "docs"
    docs.mkdir()
    written: dict[str, list[str]] = {}

    def put(folder: Path, source: str, version: int) -> Path:
        text = _text(source, version)
        written.setdefault(source, []).append(text)
        path = folder / source
        path.write_text(text)
        return path

    for source in (STABLE, "leave.txt", "parking.txt"):
        put(docs, source, 1)
    index = open_index(settings, embedder=embedder)  # the app's: chats and the admin page
    assert ingest_paths(index, [docs]).ok
    elsewhere = open_index(settings, embedder=embedder)  # a second reader of the same store
    retrievers = [
        index.retriever(mode="hybrid", floor=-1),
        index.retriever(mode="bm25", floor=-1),
        index.retriever(mode="dense", floor=-1),
        elsewhere.retriever(mode="hybrid", floor=-1),
    ]

    def upload(source: str, version: int) -> None:
        data = _text(source, version)
        written.setdefault(source, []).append(data)
        report = uploads.ingest_uploads(
            index, settings, [uploads.Upload(source, data.encode())], added_by="admin"
        )
        assert report.ok, report.results

    with Searchers(retrievers, written) as s:
        s.enter("upload")
        upload("laptop.txt", 1)
        upload("leave.txt", 2)  # a new version replaces the old one
        upload("travel.txt", 1)
        s.enter("delete")
        assert uploads.remove_documents(index, settings, ["parking.txt"]) == ["parking.txt"]
        s.enter("re-index")
        for _ in range(2):
            assert uploads.rebuild(index) == index.store.count()
        s.enter("cli")
        put(docs, "parking.txt", 2)
        put(docs, "leave.txt", 3)
        cli = run_module("ingest", str(docs), "--quiet", data_dir=settings.data_dir, timeout=600)
        assert cli.returncode == 0, cli.stderr
        s.enter("cli re-index")
        cli = run_module("ingest", "--rebuild", data_dir=settings.data_dir, timeout=600)
        assert cli.returncode == 0, cli.stderr
        s.enter("after")
        time.sleep(1.0)

    assert s.errors == [], s.errors[:3]
    assert s.bad == [], s.bad[:10]
    for phase in ("upload", "delete", "re-index", "cli", "cli re-index"):
        assert s.during[phase] > 0, f"no search ran during {phase}: {dict(s.during)}"

    # the end state: what the CLI wrote is what every reader finds
    for r in retrievers:
        found = {h.source: h.text for h in r.search("annual leave days per year", 8)}
        assert "[leave.txt v3]" in found.get("leave.txt", ""), (r.mode, found)
        assert "parking.txt" not in found or "[parking.txt v2]" in found["parking.txt"]
    # the re-indexes left one collection serving, none beside it
    client = index.store._client_now()
    names = sorted(getattr(c, "name", c) for c in client.list_collections())
    assert names == [index.store.active_name()]
    assert index.store.active_name() != settings.collection  # it was switched


def test_a_write_in_one_thread_does_not_reopen_the_client_for_a_read_in_another(
    tmp_path, embedder, monkeypatch
):
    """The writer stamps a new generation for other processes. A search in this process must
    not re-open the client (which loads the vector index again) as if another process had
    written: neither when it reads the new stamp before the writer has claimed it as its
    own, nor when it read the old one just before the writer stamped and claimed the new."""
    import retrieval.chroma_store as chroma_store

    index = open_index(make_settings(tmp_path / "store"), embedder=embedder)
    store = index.store
    store.count()
    shared = store._shared
    epoch = shared.epoch

    # 1. the new stamp is on disk, not yet claimed, when a search reads it
    read_done = threading.Event()

    def read_in_another_thread() -> None:
        store.count()
        read_done.set()

    real_write = chroma_store.write_atomic

    def stamp_then_let_a_reader_in(path, text, **kwargs):
        real_write(path, text, **kwargs)
        if path.name == chroma_store.GENERATION:
            threading.Thread(target=read_in_another_thread).start()
            read_done.wait(2)  # the reader runs now, or waits for the writer to finish

    monkeypatch.setattr(chroma_store, "write_atomic", stamp_then_let_a_reader_in)
    store.wrote()
    assert read_done.wait(10)
    assert shared.epoch == epoch  # the client the write used is still everyone's
    monkeypatch.setattr(chroma_store, "write_atomic", real_write)

    # 2. a search has read the old stamp when the writer stamps and claims the new one
    wrote = threading.Event()
    real_read = chroma_store.read_or_none
    searching = threading.current_thread()

    def read_then_let_a_writer_in(path):
        stamp = real_read(path)
        if threading.current_thread() is searching and path.name == chroma_store.GENERATION:
            threading.Thread(target=lambda: (store.wrote(), wrote.set())).start()
            wrote.wait(2)  # the writer stamps and claims now, or waits for this read
        return stamp

    monkeypatch.setattr(chroma_store, "read_or_none", read_then_let_a_writer_in)
    store.count()
    assert wrote.wait(10)
    monkeypatch.setattr(chroma_store, "read_or_none", real_read)
    assert shared.epoch == epoch
    store.count()
    assert shared.epoch == epoch


class _Dying:
    """The serving collection as Chroma 1.x shows it to a read that began on it while another
    process's re-index drops it (``bench/search_during_reindex.py`` catches this in real
    processes): the read raises "Missing metadata segment", or it comes back torn, a query's
    ids without their records, a count or a ``get`` with nothing. ``torn`` query ids lose
    their records (None: all); ``name`` is the collection's, the results come from ``col``."""

    def __init__(self, col, how: str, *, torn: int | None = None, name: str = "") -> None:
        self.col, self.how, self.torn, self.name = col, how, torn, name or col.name

    def _failing(self) -> None:
        if self.how == "metadata segment gone":
            from chromadb.errors import InternalError

            raise InternalError("Missing field: [Missing metadata segment]")

    def query(self, **kwargs):
        self._failing()
        got = self.col.query(**kwargs)
        n = len(got["ids"][0]) if self.torn is None else self.torn
        for key in ("documents", "metadatas"):
            got[key][0][:n] = [None] * n
        return got

    def count(self) -> int:
        self._failing()
        return 0

    def get(self, **kwargs):
        self._failing()
        return {"ids": [], "metadatas": [], "documents": []}


def _two_documents(tmp_path, embedder):
    """An index holding the untouched memo and one other; the stable question's vector and
    the ids of its 8 nearest chunks."""
    index = open_index(make_settings(tmp_path / "store"), embedder=embedder)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / STABLE).write_text(_text(STABLE, 1))
    (docs / "leave.txt").write_text(_text("leave.txt", 1))
    assert ingest_paths(index, [docs]).ok
    vector = embedder.embed([STABLE_QUESTION])[0]
    return index, vector, [h.id for h in index.store.query(vector, 8)]


@pytest.mark.parametrize("how", ["records gone", "metadata segment gone"])
def test_a_read_that_meets_its_collection_dropped_by_a_reindex_runs_again_on_the_new_one(
    tmp_path, embedder, monkeypatch, how
):
    index, vector, before = _two_documents(tmp_path, embedder)
    store = index.store
    assert store.query(vector, 8)[0].source == STABLE

    old = store.collection()
    uploads.rebuild(index)  # the pointer names a new collection
    assert store.active_name() != old.name
    count, ids = store.count(), sorted(store.all_ids())

    # each read took the old collection just before the switch; the real one is gone now, so
    # a stand-in shows the moment the drop is under way
    real = store.collection

    def dying_then_serving():
        handed = iter([_Dying(real(), how, name=old.name)])
        monkeypatch.setattr(store, "collection", lambda: next(handed, None) or real())

    dying_then_serving()
    assert [h.id for h in store.query(vector, 8)] == before  # run again on the new one, whole
    dying_then_serving()
    assert store.count() == count
    dying_then_serving()
    assert sorted(store.all_ids()) == ids
    dying_then_serving()
    assert store.doc_ids_of(STABLE)


def test_a_search_that_meets_a_few_chunks_deleted_in_place_skips_them_and_runs_once(
    tmp_path, embedder, monkeypatch
):
    """Records gone while the pointer still names the collection: an upload replaced or
    removed those chunks. They are not whole, so not hits; the others are, and the search is
    not run again (or failed) for it."""
    index, vector, before = _two_documents(tmp_path, embedder)
    store = index.store
    assert len(before) > 2

    calls = []
    serving = store.collection()

    def collection():
        calls.append(1)
        return _Dying(serving, "records gone", torn=2)

    monkeypatch.setattr(store, "collection", collection)
    assert [h.id for h in store.query(vector, 8)] == before[2:]
    assert len(calls) == 1
