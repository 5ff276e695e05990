"""The commands as a user runs them: real subprocesses, real stores on disk."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_module


def run(*args, data_dir, check_rc=None):
    proc = run_module(*args, data_dir=data_dir)
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stderr
    return proc


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """A folder with a good PDF, a memo, and a broken file, ingested by the CLI."""
    from app.settings import SAMPLE_DOCS_DIR

    docs = tmp_path_factory.mktemp("docs")
    for name in ("employee_handbook.pdf", "memo_2026-09_remote_work.md"):
        (docs / name).write_bytes((SAMPLE_DOCS_DIR / name).read_bytes())
    (docs / "broken.pdf").write_bytes(b"this is not a pdf at all")
    (docs / "notes.xyz").write_text("unsupported")
    data_dir = tmp_path_factory.mktemp("store")
    proc = run("ingest", str(docs), data_dir=data_dir)
    return docs, data_dir, proc


def test_ingest_names_the_bad_file_and_keeps_the_rest(ingested):
    _, data_dir, proc = ingested
    assert proc.returncode == 1
    assert "failed: broken.pdf: not a readable PDF" in proc.stderr
    assert "skipped: notes.xyz: unsupported file type .xyz" in proc.stderr
    assert "2 added" in proc.stdout and "1 failed" in proc.stdout
    assert "Index holds" in proc.stdout


def test_unknown_path_is_one_clear_line_and_touches_nothing(ingested, tmp_path):
    _, data_dir, _ = ingested
    before = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*"))
    proc = run("ingest", str(tmp_path / "missing.pdf"), data_dir=data_dir)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"error: no such file or folder: {tmp_path / 'missing.pdf'}"
    ]
    assert sorted(p.relative_to(data_dir) for p in data_dir.rglob("*")) == before


def test_search_json_and_modes(ingested):
    _, data_dir, _ = ingested
    for mode in ("hybrid", "dense", "bm25"):
        proc = run(
            "retrieval.search",
            "How many days of annual leave do full-time staff get?",
            "--k",
            "3",
            "--json",
            "--mode",
            mode,
            data_dir=data_dir,
            check_rc=0,
        )
        hits = json.loads(proc.stdout)
        assert 0 < len(hits) <= 3
        assert set(hits[0]) == {"id", "source", "page", "effective", "score", "text"}
        assert hits[0]["effective"] == "2026-01-01"  # the handbook PDF's own date
        assert (hits[0]["source"], hits[0]["page"]) == ("employee_handbook.pdf", 3), mode


def test_search_batch_prints_one_line_per_question(ingested, tmp_path):
    _, data_dir, _ = ingested
    questions = tmp_path / "q.txt"
    questions.write_text("annual leave days\n\nhome office budget\nWhat is the capital of Peru?\n")
    proc = run("retrieval.search", "--batch", str(questions), data_dir=data_dir, check_rc=0)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 3
    assert lines[1][0]["source"] == "memo_2026-09_remote_work.md" or lines[1][0]["page"] == 6
    assert lines[2] == []  # below the relevance floor


def test_ask_refuses_off_topic_and_empty(ingested):
    _, data_dir, _ = ingested
    proc = run("app.ask", "What is the capital of Peru?", "--json", data_dir=data_dir, check_rc=0)
    out = json.loads(proc.stdout)
    assert out == {
        "answer": "I don't know.",
        "refused": True,
        "citations": [],
        "unsupported": [],
        "sources": [],
        "reason": "no_hits",
        "conflicts": [],
    }
    proc = run("app.ask", "  ", data_dir=data_dir)
    assert proc.returncode == 2 and "empty" in proc.stderr
