"""Durability: kill -9 at any moment, two writers at once, a full disk, a reader in another
process. Real subprocesses for the writers; the checks read Chroma and BM25 directly."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.settings import REPO_ROOT, SAMPLE_DOCS_DIR
from app.wiring import open_index, retrieval_config
from ingest import ingest_paths, list_documents, rebuild
from ingest.chunking import chunk_pages
from ingest.config import IngestConfig
from ingest.loaders import load
from retrieval.bm25_index import BM25Index
from retrieval.chroma_store import DIRTY, REBUILD_JOURNAL, NewDocument
from retrieval.types import Chunk
from retrieval.writer_lock import writer_lock
from tests.conftest import make_settings, module_env, run_module

WORDS = (
    "leave budget travel expense laptop badge parking canteen onboarding payroll pension "
    "training security visitor locker printer desk meeting holiday insurance bonus review "
    "mentor overtime contract notice probation relocation childcare bicycle gym"
).split()


# ---- the consistency check ---------------------------------------------------------------------
class Versions:
    """Every version of every file the test wrote, and the chunk ids each must have."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.ids: dict[tuple[str, str], set[str]] = {}

    def record(self, path: Path, source: str) -> None:
        doc_id = hashlib.sha256(path.read_bytes()).hexdigest()
        chunks = chunk_pages(
            load(path),
            source=source,
            doc_id=doc_id,
            size=self.settings.chunk_size,
            overlap=self.settings.chunk_overlap,
        )
        self.ids[(source, doc_id)] = {c.id for c in chunks}


def assert_consistent(settings, embedder, versions: Versions):
    """Open the store as the next process would, then: every document is one known version
    with all of its chunks, in Chroma (also findable by vector search) and in BM25."""
    index = open_index(settings, embedder=embedder)  # repairs after a crash
    index.retriever()  # brings BM25 in line with Chroma
    assert not (settings.data_dir / DIRTY).exists()
    assert index.store.verify() == []
    stored: set[str] = set()
    for source, found in index.store.scan().items():
        assert len(found) == 1, (source, list(found))
        ((doc_id, state),) = found.items()
        assert (source, doc_id) in versions.ids, f"{source}: unknown version {doc_id[:12]}"
        assert set(state.ids) == versions.ids[(source, doc_id)], f"{source}: partial"
        stored |= set(state.ids)
    assert stored == set(index.store.all_ids())
    bm25 = BM25Index(retrieval_config(settings).bm25_dir)
    assert bm25.load()
    assert {d.id for d in bm25._docs} == stored
    return index


def assert_complete(index, docs: Path) -> None:
    """Nothing lost: every file on disk is stored in its current version."""
    current = {
        p.relative_to(docs).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in docs.rglob("*")
        if p.is_file()
    }
    stored = {d.source: d.doc_id for d in list_documents(index)}
    assert stored == current


# ---- kill -9 at ten moments ------------------------------------------------------------------------
def write_policy(folder: Path, n: int, revision: int, versions: Versions) -> None:
    rng = random.Random(n * 1000 + revision)
    sentences = [
        f"Rule {n}.{revision}.{k}: the {' '.join(rng.sample(WORDS, 6))} policy applies."
        for k in range(rng.randint(3, 8))
    ]
    path = folder / f"policy_{n:02d}.txt"
    path.write_text(f"Policy {n}, revision {revision}.\n\n" + "\n".join(sentences) + "\n")
    versions.record(path, path.name)


class Watched:
    """A `python -m ingest` subprocess whose progress bar we watch for the start of writing."""

    def __init__(self, docs: Path, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingest", str(docs), "--lock-timeout", "300"],
            cwd=REPO_ROOT,
            env=module_env(data_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.writing = threading.Event()
        self.err = b""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        while chunk := self.proc.stderr.read1(4096):
            self.err += chunk
            if b"Ingesting" in self.err:
                self.writing.set()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)


# (wait for the progress bar?, then seconds): one kill while the model loads, the rest
# spread over the writing
KILLS = [(False, 2.0), (True, 0.0), (True, 0.3), (True, 0.6), (True, 1.0), (True, 1.4),
         (True, 1.9), (True, 2.5), (True, 3.2), (True, 4.5)]  # fmt: skip


def test_kill_minus_nine_at_ten_moments(tmp_path, embedder):
    settings = make_settings(tmp_path / "store")
    versions = Versions(settings)
    docs = tmp_path / "docs"
    docs.mkdir()
    for sample in SAMPLE_DOCS_DIR.glob("memo_*"):
        shutil.copy(sample, docs / sample.name)
        versions.record(docs / sample.name, sample.name)
    for n in range(24):
        write_policy(docs, n, 0, versions)
    rng = random.Random(7)
    # most of the corpus is in before the first kill: each run then has a few files to do,
    # so the kills land between and inside their writes
    ingest_paths(open_index(settings, embedder=embedder), [docs])

    def mutate(revision: int) -> None:  # six updates and a new file
        for n in rng.sample(range(23 + revision), 6):
            write_policy(docs, n, revision, versions)
        write_policy(docs, 23 + revision, 0, versions)

    mutate(1)

    run = Watched(docs, settings.data_dir)
    for round_no, (after_bar, delay) in enumerate(KILLS):
        if after_bar:
            assert run.writing.wait(180), run.err.decode(errors="replace")
        time.sleep(delay)
        run.kill()
        index = assert_consistent(settings, embedder, versions)
        if round_no == len(KILLS) - 1:
            break
        with writer_lock(settings.data_dir):
            # the next round's process loads its model meanwhile, then waits for this lock
            run = Watched(docs, settings.data_dir)
            # finish the killed job (in-process: a CLI run would cost another model load)
            report = ingest_paths(index, [docs], lock=False)
            assert report.ok, report.results
            assert_complete(index, docs)
            mutate(round_no + 2)  # and give the next run work of its own

    # the last kill is finished by re-running the very same command
    proc = run_module("ingest", str(docs), "--quiet", data_dir=settings.data_dir)
    assert proc.returncode == 0, proc.stderr
    assert ", 0 failed, 0 skipped" in proc.stdout, proc.stdout
    index = assert_consistent(settings, embedder, versions)
    assert_complete(index, docs)


# ---- a half-written document, made by hand -----------------------------------------------------
def test_half_written_document_is_removed_at_the_next_open(empty_index, embedder):
    settings = make_settings(empty_index.config.data_dir)
    chunks = [Chunk(f"Clause {i} of the tenancy rules.", "lease.txt", None, "d1") for i in range(5)]
    whole = [Chunk("The office closes at 18:00.", "hours.txt", None, "d2")]
    empty_index.store.put_documents(
        [NewDocument(whole, embedder.embed([whole[0].text]), added_at="2026")]
    )
    with pytest.raises(RuntimeError):
        with empty_index.store.writing():
            # what a process killed between two batches leaves: 2 of 5 chunks
            extra = {"doc_chunks": 5, "added_at": "2026"}
            empty_index.store.add(chunks[:2], embedder.embed([c.text for c in chunks[:2]]), extra)
            raise RuntimeError("killed")
    assert (settings.data_dir / DIRTY).exists()
    assert any("2 of 5" in p for p in empty_index.store.verify())

    reopened = open_index(settings, embedder=embedder)
    assert [d.source for d in list_documents(reopened)] == ["hours.txt"]
    assert reopened.store.verify() == [] and not (settings.data_dir / DIRTY).exists()


def test_interrupted_rebuild_is_finished_at_the_next_open(empty_index, embedder, docs_folder):
    ingest_paths(empty_index, [docs_folder])
    before = sorted(empty_index.store.all_ids())

    class Dies:
        name = embedder.name

        def embed(self, texts):
            raise MemoryError("killed mid-rebuild")

    dying = open_index(make_settings(empty_index.config.data_dir), embedder=Dies())
    with pytest.raises(MemoryError):
        rebuild(dying)
    assert (empty_index.config.data_dir / REBUILD_JOURNAL).exists()

    reopened = open_index(make_settings(empty_index.config.data_dir), embedder=embedder)
    assert not (empty_index.config.data_dir / REBUILD_JOURNAL).exists()
    assert sorted(reopened.store.all_ids()) == before
    assert reopened.store.verify() == []
    hits = reopened.retriever(floor=-1).search("annual leave days", 1)
    assert hits[0].source == "vacation.txt"


@pytest.fixture
def docs_folder(tmp_path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "vacation.txt").write_text("Full-time employees get 28 days of annual leave.\n")
    (folder / "laptop.md").write_text("# Equipment\nLaptops are replaced every three years.\n")
    return folder


# ---- a full disk at the BM25 save ------------------------------------------------------------------
def test_disk_full_at_bm25_save_leaves_the_previous_index_serving(
    empty_index, docs_folder, monkeypatch
):
    assert ingest_paths(empty_index, [docs_folder]).ok
    bm25_dir = empty_index.config.bm25_dir
    pointer = (bm25_dir / "CURRENT").read_text()
    folders = sorted(p.name for p in bm25_dir.iterdir() if p.is_dir())  # a version, a segment
    serving = open_index(
        make_settings(empty_index.config.data_dir), embedder=empty_index.embedder
    ).retriever(mode="bm25", floor=-1)

    import retrieval.bm25_index as bm25_module

    real = bm25_module._write_atomic

    def full_disk(path, text):
        if path.name == "manifest.json":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, text)

    monkeypatch.setattr(bm25_module, "_write_atomic", full_disk)
    (docs_folder / "canteen.txt").write_text("The canteen serves vegetarian lunch on Thursdays.\n")
    report = ingest_paths(empty_index, [docs_folder])
    assert report.count("added") == 1 and not report.ok
    assert "No space left on device" in report.errors[0]
    assert "previous one keeps serving" in report.errors[0]

    assert (bm25_dir / "CURRENT").read_text() == pointer  # not swapped
    assert sorted(p.name for p in bm25_dir.iterdir() if p.is_dir()) == folders  # no debris
    assert not list(bm25_dir.glob(".*.tmp"))
    assert serving.search("laptops replaced", 1)[0].source == "laptop.md"
    fresh = BM25Index(bm25_dir)
    assert fresh.load() and len(fresh) == 2  # the previous version, whole

    monkeypatch.setattr(bm25_module, "_write_atomic", real)
    report = ingest_paths(empty_index, [docs_folder])  # space again: the next run catches up
    assert report.ok and report.count("unchanged") == 3
    assert serving.search("vegetarian canteen lunch", 1)[0].source == "canteen.txt"


# ---- two writers at once --------------------------------------------------------------------------
def test_second_writer_waits_or_names_the_holder(tmp_path, embedder):
    settings = make_settings(tmp_path / "store")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "gym.txt").write_text("The company gym opens at 06:30 on weekdays.\n")
    (b / "locker.txt").write_text("Lockers are assigned by the facilities team.\n")

    with writer_lock(settings.data_dir):  # this test is the writer in progress
        env = module_env(settings.data_dir)
        impatient = subprocess.Popen(
            [sys.executable, "-m", "ingest", str(a), "--quiet", "--lock-timeout", "1"],
            **dict(cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE),
        )
        patient = subprocess.Popen(
            [sys.executable, "-m", "ingest", str(b), "--quiet", "--lock-timeout", "240"],
            **dict(cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE),
        )
        out, err = impatient.communicate(timeout=240)
        assert impatient.returncode == 1, err
        message = err.decode()
        assert "Another writer is using" in message and f"pid {os.getpid()} on " in message
        assert "Waited 1 s" in message
        assert patient.poll() is None  # still waiting for the lock
    out, err = patient.communicate(timeout=240)
    assert patient.returncode == 0, err
    assert "1 added" in out.decode()
    index = open_index(settings, embedder=embedder)
    assert [d.source for d in list_documents(index)] == ["locker.txt"]


# ---- a running reader sees another process's writes ------------------------------------------------
def test_running_reader_sees_cli_updates_and_deletes(tmp_path, embedder, capsys):
    settings = make_settings(tmp_path / "store")
    docs = tmp_path / "docs"
    docs.mkdir()
    canteen = docs / "canteen.txt"
    canteen.write_text("The canteen serves vegetarian lunch on Thursdays.\n")
    (docs / "parking.txt").write_text("Parking permits are issued by the front desk.\n")
    assert run_module("ingest", str(docs), "--quiet", data_dir=settings.data_dir).returncode == 0

    # the app: started once, kept running while the CLI writes
    index = open_index(settings, embedder=embedder)
    readers = {m: index.retriever(mode=m, floor=-1) for m in ("dense", "bm25", "hybrid")}
    question = "which day is vegetarian lunch in the canteen"

    def canteen_texts(mode: str) -> list[str]:
        return [h.text for h in readers[mode].search(question, 5) if h.source == "canteen.txt"]

    for mode in readers:
        assert any("Thursdays" in t for t in canteen_texts(mode)), mode

    canteen.write_text("The canteen serves vegetarian lunch on Fridays.\n")
    proc = run_module(
        "ingest", str(docs), "--quiet", "--added-by", "bob", data_dir=settings.data_dir
    )
    assert "0 added, 1 updated, 1 unchanged" in proc.stdout, proc.stderr
    for mode in readers:
        texts = canteen_texts(mode)
        assert texts and all("Fridays" in t for t in texts), (mode, texts)
    hits = json.loads(
        run_module("retrieval.search", question, "--json", data_dir=settings.data_dir).stdout
    )
    assert hits[0]["source"] == "canteen.txt" and "Fridays" in hits[0]["text"]

    from ingest.__main__ import main

    assert main(["--list", "--data-dir", str(settings.data_dir)]) == 0
    listing = capsys.readouterr().out
    header = listing.splitlines()[0].split()
    assert header[0] == "FILE" and header[-5:] == ["PAGES", "CHUNKS", "ADDED", "(UTC)", "BY"]
    assert any(
        line.startswith("canteen.txt") and line.endswith("bob") for line in listing.splitlines()
    )

    proc = run_module("ingest", "--remove", str(canteen), "ghost.pdf", data_dir=settings.data_dir)
    assert proc.returncode == 1  # ghost.pdf is not indexed
    assert "removed: canteen.txt" in proc.stdout and "not in the index: ghost.pdf" in proc.stderr
    for mode in readers:
        assert canteen_texts(mode) == [], mode
    hits = json.loads(
        run_module(
            "retrieval.search", question, "--json", "--floor", "-1", data_dir=settings.data_dir
        ).stdout
    )
    assert hits and all(h["source"] != "canteen.txt" for h in hits)


# ---- the embedder fails on one file -----------------------------------------------------------------
class _FailsOn:
    """The test embedder, failing on any call that holds ``marker``."""

    def __init__(self, inner, marker: str) -> None:
        self._inner, self._marker, self.calls = inner, marker, []

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def embed(self, texts):
        self.calls.append(len(texts))
        if any(self._marker in t for t in texts):
            raise RuntimeError("the model ran out of memory")
        return self._inner.embed(texts)


@pytest.mark.parametrize("together", [False, True], ids=["each-file-alone", "files-together"])
def test_a_file_the_embedder_fails_on_is_reported_and_the_others_are_stored(
    tmp_path, docs_folder, embedder, together
):
    (docs_folder / "poison.txt").write_text("Parking is free. XYZZY\n")
    failing = _FailsOn(embedder, "XYZZY")
    index = open_index(make_settings(tmp_path / "store"), embedder=failing)
    config = IngestConfig(embed_batch=512 if together else 1)
    report = ingest_paths(index, [docs_folder], config=config)
    got = [(r.source, r.status) for r in report.results]
    assert got == [("laptop.md", "added"), ("poison.txt", "failed"), ("vacation.txt", "added")]
    assert report.results[1].reason == (
        "its text could not be embedded (RuntimeError: the model ran out of memory)"
    )
    assert not report.errors  # the run went on
    # together: one call for the three, then each file alone
    assert failing.calls == ([3, 1, 1, 1] if together else [1, 1, 1])
    assert [d.source for d in list_documents(index)] == ["laptop.md", "vacation.txt"]
    assert index.store.verify() == []
    hits = index.retriever(floor=-1).search("How many days of annual leave?", 1)
    assert hits[0].source == "vacation.txt"  # BM25 knows the stored ones too


# ---- the store fails mid-run -----------------------------------------------------------------------
@pytest.mark.parametrize("together", [False, True], ids=["each-file-alone", "files-together"])
def test_store_failure_stops_the_run_and_the_next_start_cleans_up(
    empty_index, docs_folder, embedder, together
):
    (docs_folder / "zz_canteen.txt").write_text("The canteen opens at 11:30.\n")
    leave = [f"Rule {i}: leave requests of type {i} need {i} days' notice." for i in range(60)]
    (docs_folder / "vacation.txt").write_text("\n\n".join(leave))  # several chunks
    store = empty_index.store
    real_add = store.add
    calls = []

    def add_then_fail(chunks, embeddings, extra=None):
        calls.append(chunks[0].source)
        # the disk fills up while the second document is written: after its first chunk
        fail_at = next((n + 1 for n, c in enumerate(chunks) if c.source == "vacation.txt"), 0)
        if fail_at:
            real_add(chunks[:fail_at], embeddings[:fail_at], extra[:fail_at])
            raise OSError(errno.ENOSPC, "database or disk is full")
        real_add(chunks, embeddings, extra)

    store.add = add_then_fail
    config = IngestConfig(embed_batch=512 if together else 1)
    report = ingest_paths(empty_index, [docs_folder], config=config)
    got = [(r.source, r.status) for r in report.results]
    assert got == [("laptop.md", "failed" if together else "added")] + [
        ("vacation.txt", "failed"),
        ("zz_canteen.txt", "failed"),
    ]
    assert "store error: OSError" in report.results[1].reason
    # written together, the three failed together; else the last was never tried
    assert (
        "store error: OSError" if together else "not attempted: the store could not be written"
    ) in report.results[2].reason
    assert calls == (["laptop.md"] if together else ["laptop.md", "vacation.txt"])
    assert "run the command again" in report.errors[0]
    assert (empty_index.config.data_dir / DIRTY).exists()

    del store.add
    reopened = open_index(make_settings(empty_index.config.data_dir), embedder=embedder)
    # laptop.md was whole before the failure, in both cases; vacation.txt's chunk is gone
    assert [d.source for d in list_documents(reopened)] == ["laptop.md"]
    assert ingest_paths(reopened, [docs_folder]).ok
    assert len(list_documents(reopened)) == 3 and reopened.store.verify() == []
