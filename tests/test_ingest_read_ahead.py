"""Ingest reads the next file in the worker while it embeds the current one, and a file
read ahead is collected, dropped or timed out exactly as one read in its turn. Small files
are embedded together, each chunk keeping its own vector."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from app.wiring import ingest_config
from ingest import ingest_paths
from ingest.chunking import chunk_pages
from ingest.errors import IngestError
from ingest.loaders import LOADERS, Page, load
from ingest.pipeline import file_hash
from ingest.worker import LoaderWorker
from tests.conftest import make_settings
from tests.test_ingest_hostile import load_slowly


def load_marking(path: Path) -> list[Page]:
    """Reads a text file and leaves a mark beside it saying it was read (the worker runs in
    another process: the mark is how the test sees when)."""
    path.with_name(path.name + ".read").write_text("read")
    return [Page(path.read_text(), None)]


class WatchingEmbedder:
    """Wraps the real embedder; while embedding the first file, waits (up to 20 s) for the
    second file's mark, and records whether it came."""

    def __init__(self, inner, second: Path) -> None:
        self.inner, self.second = inner, second
        self.name, self.signature = inner.name, inner.signature
        self.seen: list[bool] = []

    def embed(self, texts):
        mark = self.second.with_name(self.second.name + ".read")
        if not self.seen and "first" in texts[0]:
            deadline = time.monotonic() + 20
            while not mark.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.seen.append(mark.exists())
        return self.inner.embed(texts)


def test_the_next_file_is_read_while_this_one_is_embedded(tmp_path, embedder, monkeypatch):
    from app.wiring import open_index

    monkeypatch.setitem(LOADERS, ".mark", load_marking)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.mark").write_text("The first policy: parking costs EUR 35 a month.")
    (docs / "b.mark").write_text("The second policy: bicycles park for free.")
    settings = make_settings(tmp_path / "store", ingest_batch_chunks=1)  # each file alone
    watching = WatchingEmbedder(embedder, docs / "b.mark")
    index = open_index(settings, embedder=watching)

    report = ingest_paths(index, [docs], config=ingest_config(settings))

    assert report.ok and report.count("added") == 2, report.summary()
    # without reading ahead, b.mark is read only after a.mark's embedding returns
    assert watching.seen == [True]
    assert index.store.count() == 2


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
