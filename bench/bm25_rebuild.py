"""The BM25 rebuild after an ingest adds one file to a large store: a whole rebuild against
one that takes the unchanged chunks' terms from the saved version.

    python -m bench.bm25_rebuild [--sizes 3001 30000 100000] [--added 150] [--no-write]

Every ingest re-derives the BM25 index from Chroma (``LiveBM25.sync``). Its chunks come
from ``bench.ingest_bench``'s corpus (1,000 generated pages, 3,001 chunks with their title
and heading), repeated with their words shuffled up to each size, so that the copies' word
pairs differ as real chunks' do. For each size the index is built and saved, then --added
new chunks (a 50-page file) join it and it is built again: once tokenizing every chunk, as
before stop 29 (``reuse=False``, which ``python -m ingest --rebuild``'s explicit rebuild
keeps), once taking the saved terms (``reuse=True``, what an ingest now does). Both give
the same index; the bench checks their scores. Reading the chunks back from Chroma is not
included (4-5 s at 100,000 chunks, BENCHMARKS.md "Retrieval quality", stop 28). Writes its
section of BENCHMARKS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from app.settings import load_settings
from bench.common import machine, write_section
from bench.ingest_bench import expected_chunks, make_corpus
from retrieval.bm25_index import TERMS, BM25Index
from retrieval.context import context_line

QUERIES = ("annual leave carry over", "expense receipts deadline", "remote work approval")


def base_rows(tmp: Path) -> list[tuple[str, str, int | None, str]]:
    corpus = tmp / "corpus"
    corpus.mkdir()
    make_corpus(corpus, 1000, 50, 1500)
    chunks = expected_chunks(corpus, load_settings(data_dir=tmp / "settings"))
    return [(c.text, c.source, c.page, context_line(c.text, c.title, c.heading)) for c in chunks]


def rows_of(base: list[tuple], start: int, count: int, seed: int) -> list[tuple]:
    """``count`` chunks numbered from ``start``: the corpus's, words shuffled after the first
    pass through it."""
    rng = random.Random(seed)
    out = []
    for n in range(start, start + count):
        text, source, page, context = base[n % len(base)]
        if n >= len(base):
            words = text.split()
            rng.shuffle(words)
            text = " ".join(words)
        out.append((f"chunk{n}", text, source, page, None, (), context))
    return out


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(size: int, added: int, base: list[tuple], tmp: Path) -> dict[str, float]:
    folder = tmp / f"bm25-{size}"
    rows = rows_of(base, 0, size, seed=size)
    first = BM25Index(folder)
    build = timed(lambda: first.build(rows))
    save = timed(first.save)
    terms_mb = (folder / first._segments[0].name / TERMS).stat().st_size / 1e6
    grown = rows + rows_of(base, size, added, seed=size + 1)
    whole, reused = BM25Index(folder), BM25Index(folder)
    t_whole = timed(lambda: whole.build(grown))
    t_reused = timed(lambda: reused.build(grown, reuse=True))
    for query in QUERIES:  # the same index either way
        np.testing.assert_allclose(whole.scores(query), reused.scores(query), rtol=1e-6)
    return {
        "build": build,
        "save": save,
        "terms_mb": terms_mb,
        "whole": t_whole,
        "reused": t_reused,
    }


def table(results: dict[int, dict[str, float]], added: int) -> str:
    lines = [
        f"| chunks in the store | first build (s) | save (s) | terms file (MB) | rebuild + {added}"
        " chunks, every chunk tokenized (s) | ... saved terms reused (s) | speed-up |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, r in results.items():
        lines.append(
            f"| {size:,} | {r['build']:.2f} | {r['save']:.2f} | {r['terms_mb']:.1f} | "
            f"{r['whole']:.2f} | {r['reused']:.2f} | {r['whole'] / r['reused']:.1f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bm25_rebuild", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[3001, 30000, 100000])
    parser.add_argument("--added", type=int, default=150, help="chunks the ingest adds")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base = base_rows(Path(tmp))
        results = {}
        for size in args.sizes:
            results[size] = run(size, args.added, base, Path(tmp))
            print(f"{size:,} chunks: {results[size]}", flush=True)
    body = (
        "## BM25 rebuild after an ingest (`python -m bench.bm25_rebuild`)\n\n"
        f"Machine: {machine()}.\n\n{table(results, args.added)}\n"
    )
    print(body)
    if not args.no_write:
        write_section("bm25_rebuild", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
