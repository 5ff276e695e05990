"""One file added to a large store: the pipeline over the bare embedder, and what the BM25
sync costs with and without the version the last writer left in line.

    python -m bench.ingest_into [--sizes 10000 100000] [--pages 50] [--rounds 2]
                                [--backend onnx-fp32] [--no-write]

``bench.ingest_bench`` measures a first ingest into an empty store; an admin's upload goes
into a store that already holds every other document, and each ingest ends by bringing
the BM25 index over all of them in line. For each size a store is filled once with
synthetic chunks (``bench.retrieval_bench``'s words, random unit vectors, each chunk's
metadata as an ingest writes it, no token vectors) under data/store/bench/ (git-ignored)
and its BM25 index derived by a writer, which leaves it recorded as in line. Each round
copies it and ingests one generated PDF of ``--pages`` pages (``bench.ingest_bench``'s
text) into the copy, three times, in turn: as it is ("in line": since stop 39 the saved
version is extended by the new file's segment, ``BM25Index.extend``; from stop 37 a rebuild
with the rows the last writer left); with the in-line record removed ("read back": the
index rebuilt from every chunk read back from Chroma, as every ingest did before stop 37);
and in line after a search in the same process ("in line, app": Chroma and BM25 loaded, as
in the running app, where the CLI is a fresh process). The bare embedder embeds the same
chunk texts beside each ingest. Writes its section of BENCHMARKS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from app.settings import load_settings
from bench.common import machine, write_section
from bench.embed_bench import load_backend
from bench.ingest_bench import Timed, TimedEmbedder, expected_chunks, make_corpus
from bench.retrieval_bench import (
    BENCH_DIR,
    CHUNKS_PER_FILE,
    CHUNKS_PER_PAGE,
    SEED,
    synthetic_chunks,
    unit_rows,
)

# "app": in line, in a process that has answered a question (Chroma and BM25 loaded), as
# an admin's upload in the running app; the other two are a fresh process, as the CLI
ARMS = ("in line", "read back", "in line, app")


def base_store(size: int) -> Path:
    """A data dir of ``size`` synthetic chunks with its BM25 index in line (made once)."""
    from app.wiring import open_index
    from retrieval.bm25_index import BM25Index
    from retrieval.bm25_live import IN_LINE
    from retrieval.types import Chunk

    data_dir = BENCH_DIR / f"ingest-into-{size}"
    if (data_dir / "built.json").is_file():
        if not BM25Index(data_dir / "bm25").load():  # saved by an older format
            index = open_index(load_settings(data_dir=data_dir))
            with index.writer():
                index.sync_bm25(rebuild=True, reuse=False)
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    index = open_index(load_settings(data_dir=data_dir))
    rng = np.random.default_rng(SEED)
    texts = synthetic_chunks(size)
    meta = {
        "doc_chunks": CHUNKS_PER_FILE,
        "added_at": "2026-12-01T00:00:00+00:00",
        "doc_pages": CHUNKS_PER_FILE // CHUNKS_PER_PAGE + 1,
        "effective": "2026-01-01",
        "effective_origin": "added",
    }
    started = time.perf_counter()
    with index.writer():
        for start in range(0, size, 5000):
            part = [
                Chunk(
                    text,
                    f"synthetic-{n // CHUNKS_PER_FILE:04d}.pdf",
                    n % CHUNKS_PER_FILE // CHUNKS_PER_PAGE + 1,
                    f"doc{n // CHUNKS_PER_FILE}",
                    title=f"Synthetic handbook {n // CHUNKS_PER_FILE}",
                    heading=f"Section {n % CHUNKS_PER_FILE // 10 + 1}",
                )
                for n, text in enumerate(texts[start : start + 5000], start)
            ]
            with index.store.writing():
                index.store.add(part, unit_rows(rng, len(part)).tolist(), [meta] * len(part))
            print(f"  {start + len(part)}/{size} chunks stored", file=sys.stderr, flush=True)
        index.sync_bm25(rebuild=True, reuse=False)
    assert (index.live_bm25.directory / IN_LINE).is_file()
    seconds = time.perf_counter() - started
    (data_dir / "built.json").write_text(json.dumps({"chunks": size, "seconds": seconds}))
    return data_dir


def one_ingest(real, base: Path, pdf: Path, texts: list[str], arm: str) -> dict:
    """Copy ``base``, ingest ``pdf`` into the copy (``arm``), and embed its texts bare."""
    from app.wiring import ingest_config, open_index
    from ingest import ingest_paths
    from retrieval.bm25_live import IN_LINE
    from retrieval.late_interaction import embed_for_store

    with tempfile.TemporaryDirectory(prefix="ingest-into-") as tmp:
        data_dir = Path(tmp) / "store"
        shutil.copytree(base, data_dir)
        if arm == "read back":
            (data_dir / "bm25" / IN_LINE).unlink()
        settings = load_settings(data_dir=data_dir)
        started = time.perf_counter()
        embed_for_store(real, texts, depth=settings.rerank_depth)
        bare = time.perf_counter() - started
        embedder = TimedEmbedder(real)
        index = open_index(settings, embedder=embedder)
        if arm == "in line, app":
            index.retriever().search("How many days of annual leave?", 5)
        asked = embedder.seconds  # the question's embedding, not the ingest's
        store = index.store
        put = store.put_documents = Timed(store.put_documents)
        bm25 = index.sync_bm25 = Timed(index.sync_bm25)
        read = []
        records = store.records

        def counted(include, ids=None):
            for row in records(include, ids):
                if "documents" in include:
                    read.append(row[0])
                yield row

        store.records = counted
        started = time.perf_counter()
        report = ingest_paths(index, [pdf], config=ingest_config(settings))
        wall = time.perf_counter() - started
        assert report.ok and report.count("added") == 1, report.summary()
        return {
            "wall": wall,
            "bare": bare,
            "embed": embedder.seconds - asked,
            "put": put.seconds,
            "bm25": bm25.seconds,
            "read": len(read),
            "chunks": store.count(),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_into", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--pages", type=int, default=50, help="pages of the file added")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--backend", choices=("torch", "onnx-fp32", "onnx-bf16", "onnx-int8"), default="onnx-fp32"
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args(argv)

    real = load_backend(args.backend)
    real.embed(["warm-up: the first call allocates"] * 32)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ingest-into-pdf-") as tmp:
        folder = Path(tmp) / "corpus"
        folder.mkdir()
        make_corpus(folder, args.pages, args.pages, 1500)
        pdf = next(folder.iterdir())
        settings = load_settings(data_dir=Path(tmp) / "store")
        texts = [c.index_text for c in expected_chunks(folder, settings)]
        for size in args.sizes:
            base = base_store(size)
            got: dict[str, list[dict]] = {arm: [] for arm in ARMS}
            for n in range(args.rounds):
                for arm in ARMS if n % 2 == 0 else ARMS[::-1]:
                    got[arm].append(one_ingest(real, base, pdf, texts, arm))
                    r = got[arm][-1]
                    print(
                        f"{size} chunks, {arm}: pipeline {r['wall']:.2f} s, bare {r['bare']:.2f}"
                        f" s, BM25 sync {r['bm25']:.2f} s, {r['read']} chunks read back",
                        flush=True,
                    )
            for arm in ARMS:
                runs = got[arm]

                def med(key: str, runs: list[dict] = runs) -> float:
                    return statistics.median(r[key] for r in runs)

                ratios = ", ".join(f"{r['wall'] / r['bare']:.2f}" for r in runs)
                rows.append(
                    f"| {runs[0]['chunks']:,} | {arm} | {med('wall'):.2f} | {med('bare'):.2f} | "
                    f"{ratios} | {med('embed'):.2f} | {med('put'):.2f} | {med('bm25'):.2f} | "
                    f"{int(med('read')):,} |"
                )
    table = (
        f"One {args.pages}-page PDF ({len(texts)} chunks) ingested into a store of N chunks, "
        f"`--backend {args.backend}`, medians of {args.rounds} rounds (seconds):\n\n"
        "| chunks after | BM25 rows | pipeline | bare embedder | pipeline / bare, each round "
        "| embedding inside | Chroma + tokens | BM25 sync | chunks read back |\n"
        "|---:|---|---:|---:|---|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n"
    )
    print(table)
    if not args.no_write:
        body = (
            "## One file into a large store (`python -m bench.ingest_into`)\n\n"
            f'Machine: {machine()}. "in line": the BM25 version the last writer left in '
            'line is extended by the new file\'s segment (stop 39); "read back": every '
            "chunk is read back from Chroma and the index rebuilt, as before stop 37; both "
            'in a fresh process, as the CLI. "in line, app": in a process that has answered '
            "a question first (Chroma and BM25 loaded), as an admin's upload in the running "
            "app.\n\n"
            f"{table}"
        )
        write_section("ingest_into", body)
        print("wrote its section of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
