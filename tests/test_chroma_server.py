"""Scale-out on Chroma's own server (``chroma run``): app replicas on two "hosts" (two data
dirs, nothing shared but the server) see each other's writes in both dense and BM25 search,
follow a re-index, and never write at the same time."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid

import pytest

from app import uploads
from app.settings import REPO_ROOT
from app.wiring import open_index
from retrieval import StoreError
from retrieval.store_state import lease_name
from tests.conftest import make_settings, module_env
from tests.servers import chroma_server

SETTLE_S = 5.0  # "within a few seconds": a replica re-reads the server's state once a second


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    base = tmp_path_factory.mktemp("chroma")
    with chroma_server(base / "data", base) as (host, port):
        yield host, port


@pytest.fixture
def on_server(chroma, tmp_path, embedder):
    """Settings and an index for a "host" with its own data dir, all on one collection."""
    host, port = chroma
    collection = f"hb{uuid.uuid4().hex[:10]}"

    def host_settings(name: str):
        return make_settings(
            tmp_path / name, chroma_host=host, chroma_port=port, collection=collection
        )

    def replica(name: str):
        settings = host_settings(name)
        return settings, open_index(settings, embedder=embedder)

    def env(name: str) -> dict[str, str]:
        return dict(
            module_env(tmp_path / name),
            RAG_CHROMA_HOST=host,
            RAG_CHROMA_PORT=str(port),
            RAG_COLLECTION=collection,
        )

    return replica, env


def _sources(index, question: str, mode: str) -> set[str]:
    return {h.source for h in index.retriever(mode=mode, floor=-1).search(question, 5)}


def _within(seconds: float, check) -> float:
    """Seconds until ``check()`` holds; fails after ``seconds``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            pytest.fail(f"not within {seconds:g} s")
        time.sleep(0.1)
    return time.monotonic() - started


CANTEEN = "The canteen serves vegetarian lunch on Thursdays.\n"
CANTEEN_Q = "which day is vegetarian lunch in the canteen"


def test_replicas_on_two_hosts_see_each_others_writes(on_server, tmp_path):
    replica, env = on_server
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "parking.txt").write_text("Parking permits are issued by the front desk.\n")
    proc = subprocess.run(
        [sys.executable, "-m", "ingest", str(docs), "--quiet"],
        cwd=REPO_ROOT,
        env=env("ingest-host"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "ingest-host" / "chroma").exists()  # the chunks are in the server

    settings_a, a = replica("host-a")
    settings_b, b = replica("host-b")
    for index in (a, b):
        for mode in ("dense", "bm25"):
            assert "parking.txt" in _sources(index, "parking permits front desk", mode)

    # added through A (the admin page), found by B in both searches
    report = uploads.ingest_uploads(
        a, settings_a, [uploads.Upload("canteen.txt", CANTEEN.encode())], added_by="ann"
    )
    assert report.ok, report.results
    for mode in ("bm25", "dense"):
        _within(SETTLE_S, lambda m=mode: "canteen.txt" in _sources(b, CANTEEN_Q, m))

    # removed through B, gone from A
    assert uploads.remove_documents(b, settings_b, ["canteen.txt"]) == ["canteen.txt"]
    for mode in ("bm25", "dense"):
        _within(SETTLE_S, lambda m=mode: "canteen.txt" not in _sources(a, CANTEEN_Q, m))

    # re-indexed through A: B follows the switch to the new collection
    before = b.store.active_name()
    assert uploads.rebuild(a) == a.store.count()
    assert b.store.active_name() == a.store.active_name() != before
    _within(SETTLE_S, lambda: "parking.txt" in _sources(b, "parking permits front desk", "dense"))
    assert "parking.txt" in _sources(b, "parking permits front desk", "bm25")

    # a third host's command line sees the same
    proc = subprocess.run(
        [sys.executable, "-m", "retrieval.search", "parking permits", "--json", "--mode", "bm25"],
        cwd=REPO_ROOT,
        env=env("cli-host"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "parking.txt" in proc.stdout, proc.stderr


def test_two_writers_on_two_hosts_are_serialised_and_an_impatient_one_is_told_who(
    on_server, tmp_path
):
    replica, env = on_server
    settings_a, a = replica("host-a")
    settings_b, b = replica("host-b")
    order: list[str] = []

    with a.writer(timeout=5):  # A is writing (a long ingest, say)
        order.append("a starts")
        with pytest.raises(StoreError, match="Another writer is using the Chroma server") as err:
            uploads.ingest_uploads(
                b, settings_b, [uploads.Upload("x.txt", b"Lockers.")], lock_timeout=0.5
            )
        assert f"on {__import__('socket').gethostname()}" in str(err.value)
        assert "Waited 0.5 s" in str(err.value)

        def patient() -> None:
            report = uploads.ingest_uploads(
                b, settings_b, [uploads.Upload("gym.txt", b"The gym opens at 06:30.")]
            )
            order.append("b wrote" if report.ok else f"b failed: {report.results}")

        waiting = threading.Thread(target=patient)
        waiting.start()
        time.sleep(1.5)
        assert waiting.is_alive()  # B waits for A
        order.append("a ends")
    waiting.join(timeout=60)
    assert order == ["a starts", "a ends", "b wrote"]
    _within(SETTLE_S, lambda: "gym.txt" in _sources(a, "when does the gym open", "bm25"))

    # the command line on a third host is refused with the same message
    with b.writer(timeout=5):
        (tmp_path / "c.txt").write_text("Coffee is free.")
        proc = subprocess.run(
            [sys.executable, "-m", "ingest", str(tmp_path / "c.txt"), "--lock-timeout", "1"],
            cwd=REPO_ROOT,
            env=env("host-c"),
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert proc.returncode == 1
    assert "Another writer is using the Chroma server" in proc.stderr, proc.stderr


def test_a_dead_writers_lease_expires_and_is_taken_over(on_server):
    replica, _ = on_server
    settings_a, a = replica("host-a")
    client = a.store._client
    client.create_collection(  # a writer on another host died holding the lease
        lease_name(settings_a.collection),
        metadata={"pid": 1, "host": "gone", "command": "ingest", "expires": time.time() - 1},
        embedding_function=None,
    )
    report = uploads.ingest_uploads(
        a, settings_a, [uploads.Upload("gym.txt", b"The gym opens at 06:30.")], lock_timeout=5
    )
    assert report.ok
    assert lease_name(settings_a.collection) not in {c.name for c in client.list_collections()}
