"""Ingest reads the next files in the worker while it chunks, embeds and writes the ones
before, and a file read ahead is collected, dropped or timed out exactly as one read in its
turn. Small files are embedded together, each chunk keeping its own vector."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from app.wiring import ingest_config
from ingest import ingest_paths
from ingest.chunking import chunk_pages
from ingest.errors import IngestError
from ingest.loaders import LOADERS, Page, load
from ingest.pipeline import READ_AHEAD, file_hash
from ingest.worker import LoaderWorker
from tests.conftest import make_settings
from tests.test_ingest_hostile import load_slowly


def load_marking(path: Path) -> list[Page]:
    """Reads a text file and leaves a mark beside it saying it was read (the worker runs in
    another process: the mark is how the test sees when)."""
    path.with_name(path.name + ".read").write_text("read")
    return [Page(path.read_text(), None)]


def _read(path: Path) -> bool:
    return path.with_name(path.name + ".read").exists()


def _wait_and_see(expected: list[Path], later: list[Path]) -> list[str]:
    """Waits (up to 20 s) for the marks of the files ``expected``, then a moment more, and
    returns which files of ``later`` were read by then."""
    deadline = time.monotonic() + 20
    while not all(_read(p) for p in expected) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # time enough for one file more, were it asked for
    return [p.name for p in later if _read(p)]


class WatchingEmbedder:
    """Wraps the real embedder; while embedding the first file, records which of the files
    ``later`` are read (``_wait_and_see`` for the first of them)."""

    def __init__(self, inner, later: list[Path]) -> None:
        self.inner, self.later = inner, later
        self.name, self.signature = inner.name, inner.signature
        self.seen: list[str] | None = None

    def embed(self, texts):
        if self.seen is None and "first" in texts[0]:
            self.seen = _wait_and_see(self.later[:1], self.later)
        return self.inner.embed(texts)


def test_the_next_files_are_read_and_chunked_while_this_one_is_embedded_and_written(
    tmp_path, embedder, monkeypatch
):
    from app.wiring import open_index

    monkeypatch.setitem(LOADERS, ".mark", load_marking)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.mark").write_text("The first policy: parking costs EUR 35 a month.")
    names = [f"{c}.mark" for c in "bcdefgh"]
    for n, name in enumerate(names):
        (docs / name).write_text(f"Policy {n + 2}: bicycles park in rack {n + 2}.")
    later = [docs / n for n in names]
    settings = make_settings(tmp_path / "store", ingest_batch_chunks=1)  # each file alone
    watching = WatchingEmbedder(embedder, later)
    index = open_index(settings, embedder=watching)
    seen_at_write: list[list[str]] = []
    put = index.store.put_documents

    def watched_put(docs):
        if not seen_at_write:
            seen_at_write.append(_wait_and_see(later[: READ_AHEAD + 1], later))
        return put(docs)

    index.store.put_documents = watched_put

    report = ingest_paths(index, [docs], config=ingest_config(settings))

    assert report.ok and report.count("added") == 8, report.summary()
    assert READ_AHEAD == 4
    # while the first file is embedded, the main thread reads and chunks the next one
    # (and the worker the READ_AHEAD after it)
    assert watching.seen is not None and watching.seen[0] == names[0]
    assert set(watching.seen) <= set(names[: READ_AHEAD + 1])
    # the first file is written once the second is chunked and its embedding started, with
    # the READ_AHEAD after the second read, and no further
    assert seen_at_write == [names[: READ_AHEAD + 1]]
    assert index.store.count() == 8


class GatedEmbedder:
    """Wraps the real embedder; notes when a call for the text ``second`` begins."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name, self.signature = inner.name, inner.signature
        self.second_began = threading.Event()

    def embed(self, texts):
        if any("second" in t for t in texts):
            self.second_began.set()
        return self.inner.embed(texts)


def test_a_batch_is_embedded_while_the_one_before_it_is_written(tmp_path, embedder):
    """The embedder's cores are not left idle while Chroma is written: the second batch's
    embedding begins before the first batch's write (in the same order as before, one at a
    time, each write on the calling thread)."""
    from app.wiring import open_index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The first policy: parking costs EUR 35 a month.")
    (docs / "b.txt").write_text("The second policy: bicycles park in rack 2.")
    (docs / "c.txt").write_text("The third policy: the canteen opens at 8.")
    settings = make_settings(tmp_path / "store", ingest_batch_chunks=1)  # each file alone
    gated = GatedEmbedder(embedder)
    index = open_index(settings, embedder=gated)
    put = index.store.put_documents
    writes: list[tuple[list[str], bool, bool]] = []  # sources, second's embedding begun, thread

    def watched_put(docs):
        began = gated.second_began.wait(10) if not writes else gated.second_began.is_set()
        main = threading.current_thread() is threading.main_thread()
        writes.append(([d.chunks[0].source for d in docs], began, main))
        return put(docs)

    index.store.put_documents = watched_put
    told: list[str] = []

    report = ingest_paths(
        index, [docs], config=ingest_config(settings), on_result=lambda r: told.append(r.source)
    )

    assert report.ok and report.count("added") == 3, report.summary()
    assert writes == [(["a.txt"], True, True), (["b.txt"], True, True), (["c.txt"], True, True)]
    assert told == ["a.txt", "b.txt", "c.txt"]
    assert index.store.count() == 3 and index.store.verify() == []


class RecordingEmbedder:
    """Wraps the real embedder; records each call's size and the vector given each text."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name, self.signature = inner.name, inner.signature
        self.calls: list[int] = []
        self.given: dict[str, list[float]] = {}

    def embed(self, texts):
        vectors = self.inner.embed(texts)
        self.calls.append(len(texts))
        self.given.update(zip(texts, vectors, strict=True))
        return vectors


@pytest.mark.parametrize("batch, calls", [(512, [15]), (6, [10, 5]), (1, [5, 5, 5])])
def test_small_files_are_embedded_and_written_together(tmp_path, embedder, batch, calls):
    from app.wiring import open_index

    docs = tmp_path / "docs"
    docs.mkdir()
    for topic in ("parking", "canteen", "travel"):
        rules = [f"Rule {i} on {topic}: {topic} request {i} needs {i} days." for i in range(24)]
        (docs / f"{topic}.txt").write_text("\n\n".join(rules))
    settings = make_settings(
        tmp_path / "store", chunk_size=300, chunk_overlap=0, ingest_batch_chunks=batch
    )
    recording = RecordingEmbedder(embedder)
    index = open_index(settings, embedder=recording)
    config = ingest_config(settings)
    lookups = []
    real_lookup = index.store.doc_ids_of
    index.store.doc_ids_of = lambda source: lookups.append(source) or real_lookup(source)

    report = ingest_paths(index, [docs], config=config)

    assert [(r.source, r.status, r.chunks) for r in report.results] == [
        ("canteen.txt", "added", 5),
        ("parking.txt", "added", 5),
        ("travel.txt", "added", 5),
    ], report.summary()
    assert recording.calls == calls
    # each file's stored versions are asked for once: read ahead, or in its turn (the first)
    assert sorted(lookups) == ["canteen.txt", "parking.txt", "travel.txt"]
    stored = index.store.collection().get(include=["embeddings"])
    vectors = dict(zip(stored["ids"], stored["embeddings"], strict=True))
    for path in sorted(docs.iterdir()):
        doc_id = index.store.doc_ids_of(path.name).pop()
        chunks = chunk_pages(load(path), source=path.name, doc_id=doc_id, size=300, overlap=0)
        for c in chunks:  # the vector made of this chunk's own text, not a neighbour's
            np.testing.assert_allclose(vectors[c.id], recording.given[c.index_text], atol=1e-6)

    # two of them changed: written together, each loses its old version and only that
    for topic in ("canteen", "travel"):
        (docs / f"{topic}.txt").write_text(f"Rule 1 on {topic}: ask the office.")
    again = ingest_paths(index, [docs], config=config)
    assert [(r.source, r.status) for r in again.results] == [
        ("canteen.txt", "updated"),
        ("parking.txt", "unchanged"),
        ("travel.txt", "updated"),
    ], again.summary()
    for path in sorted(docs.iterdir()):
        assert index.store.doc_ids_of(path.name) == {file_hash(path)}
    assert index.store.count() == 5 + 1 + 1 and index.store.verify() == []


def test_a_worker_collects_what_it_read_ahead_and_drops_what_nobody_asks_for(tmp_path):
    one, two = tmp_path / "one.mark", tmp_path / "two.mark"
    one.write_text("first file")
    two.write_text("second file")
    worker = LoaderWorker(timeout_s=30)
    try:
        worker.submit(load_marking, one)
        assert [p.text for p in worker.load(load_marking, one)] == ["first file"]
        worker.submit(load_marking, one)  # read ahead, then another file is asked for
        assert [p.text for p in worker.load(load_marking, two)] == ["second file"]
        assert [p.text for p in worker.load(load_marking, one)] == ["first file"]
    finally:
        worker.close()


def test_files_queued_ahead_are_read_in_turn_and_collected_in_order(tmp_path):
    paths = [tmp_path / f"{n}.mark" for n in ("one", "two", "three")]
    for path in paths:
        path.write_text(f"text of {path.stem}")
    worker = LoaderWorker(timeout_s=30)
    try:
        for path in paths:
            worker.submit(load_marking, path)
        deadline = time.monotonic() + 20  # all read before any is collected
        while not all(_read(p) for p in paths):
            assert time.monotonic() < deadline, "the files queued were not all read"
            time.sleep(0.05)
        assert [p.text for p in worker.load(load_marking, paths[0])] == ["text of one"]
        assert [p.text for p in worker.load(load_marking, paths[1])] == ["text of two"]
        # asked out of order: the one queued before it is dropped, this one still comes
        worker.submit(load_marking, paths[0])
        assert [p.text for p in worker.load(load_marking, paths[2])] == ["text of three"]
        assert [p.text for p in worker.load(load_marking, paths[0])] == ["text of one"]
    finally:
        worker.close()


def test_a_file_read_ahead_still_has_its_time_limit(tmp_path):
    stuck, fine = tmp_path / "stuck.slow", tmp_path / "fine.mark"
    stuck.write_text("whatever")
    fine.write_text("a readable file")
    worker = LoaderWorker(timeout_s=5)  # a fresh child imports this module: a few seconds
    try:
        worker.submit(load_slowly, stuck)
        started = time.monotonic()
        with pytest.raises(IngestError, match="stuck.slow: took longer than 5 s"):
            worker.load(load_slowly, stuck)
        assert time.monotonic() - started < 30
        # the hung child was killed: the next file gets a fresh one
        assert [p.text for p in worker.load(load_marking, fine)] == ["a readable file"]
    finally:
        worker.close()
