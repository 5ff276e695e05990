"""Shared fixtures. Real parts: the packaged MiniLM embedder, Chroma on disk, the embedded
model. Loaded once per session because each costs seconds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.settings import REPO_ROOT, SAMPLE_DOCS_DIR, Settings, load_settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a test must never reach a model hub

# The 1.1 GB embedded model is assembled once here and shared by every test's data dir.
MODEL_CACHE = REPO_ROOT / "data" / "store" / "models"


def make_settings(data_dir: Path, **overrides) -> Settings:
    return load_settings(data_dir=data_dir, model_dir=MODEL_CACHE, **overrides)


def module_env(data_dir: Path) -> dict[str, str]:
    """The environment for a ``python -m`` child working on ``data_dir``, offline."""
    return dict(
        os.environ, RAG_DATA_DIR=str(data_dir), RAG_MODEL_DIR=str(MODEL_CACHE), HF_HUB_OFFLINE="1"
    )


def run_module(*args: str, data_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m ARGS`` from the repo root, as a user runs it; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO_ROOT,
        env=module_env(data_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def embedder():
    from retrieval.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture
def empty_index(tmp_path, embedder):
    from app.wiring import open_index

    return open_index(make_settings(tmp_path / "store"), embedder=embedder)


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory, embedder):
    """The sample documents, ingested once. Tests must not write to it."""
    from app.wiring import open_index
    from ingest import ingest_paths

    index = open_index(
        make_settings(tmp_path_factory.mktemp("samples") / "store"), embedder=embedder
    )
    report = ingest_paths(index, [SAMPLE_DOCS_DIR])
    assert not report.failed, report.failed
    return index


@pytest.fixture(scope="session")
def embedded_llm():
    from llm.embedded import EmbeddedLLM

    llm = EmbeddedLLM(MODEL_CACHE)
    llm.load()
    return llm


class ScriptedLLM:
    """A fake at the LLM seam: records prompts, replies with queued texts."""

    name = "scripted"

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.prompts: list[str] = []

    def stream(self, prompt: str, *, max_tokens: int | None = None) -> Iterator[str]:
        self.prompts.append(prompt)
        reply = self.replies.pop(0) if self.replies else "I don't know."
        for word in reply.split(" "):
            yield word + " "


@pytest.fixture
def bm25_tokenized(monkeypatch) -> list[str]:
    """The texts the BM25 index tokenizes during the test (``doc_tokens`` calls), in order;
    clear it to count from a later point."""
    from retrieval import bm25_index

    seen: list[str] = []
    real = bm25_index.doc_tokens

    def recording(text, *args, **kwargs):
        seen.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(bm25_index, "doc_tokens", recording)
    return seen


@pytest.fixture
def copy_samples(tmp_path) -> Path:
    target = tmp_path / "docs"
    shutil.copytree(SAMPLE_DOCS_DIR, target)
    return target
