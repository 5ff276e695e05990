"""What a BM25 index extended in place would cost a search: scores computed at search time
from raw term counts, against the scores bm25s keeps precomputed, on the same index.

    python -m bench.bm25_scoring_at_search [--size 100000] [--queries 40] [--no-write]

bm25s stores each (chunk, term) pair's final score, which depends on the number of chunks
and their mean length, so adding one file changes every score and each ingest rebuilds the
whole index (about 7 s of a 13 s ingest of one PDF into 100,000 chunks, BENCHMARKS.md
"One file into a large store"). An index that keeps each pair's count instead could take
a new file as one more segment, and compute idf and the length normalisation when a
question comes, from the postings of the question's terms only. This script measures that
search-time part on ``bench.ingest_into``'s store of ``--size`` synthetic chunks (built
once under data/store/bench/): the counts' postings are made once from the saved terms,
then each question is scored both ways and the two compared. Nothing here is wired into
the product; it sizes the proposal. Writes its section of BENCHMARKS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.common import machine, write_section
from bench.ingest_into import base_store
from bench.retrieval_bench import synthetic_chunks
from retrieval.bm25_index import BM25Index, _Terms, terms


class CountIndex:
    """Each (chunk, term) pair's count, by term (CSC), and each chunk's length."""

    def __init__(self, index: BM25Index) -> None:
        # the index's own counts and length normalisation (``_Terms``, as ``build`` makes
        # them), the saved terms reused
        counted = _Terms(index._docs, index._saved_terms(), index._tokens)
        self.n = len(counted.lengths)
        self.tf = counted.counts()
        self.vocab = counted.vocab()
        self.norm = counted.length_norm(index.k1, index.b)
        self.pair_weight = index.pair_weight

    def scores(self, query: str) -> np.ndarray:
        """Lucene's BM25 of every chunk, from the counts of the question's terms only."""
        out = np.zeros(self.n, dtype=np.float32)
        tf = self.tf
        for t in (self.vocab[t] for t in terms(query, self.pair_weight) if t in self.vocab):
            start, stop = tf.indptr[t], tf.indptr[t + 1]
            rows, counts = tf.indices[start:stop], tf.data[start:stop]
            df = stop - start
            idf = np.float32(np.log(1 + (self.n - df + 0.5) / (df + 0.5)))
            out[rows] += (idf * (counts / (self.norm[rows] + counts))).astype(np.float32)
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bm25_scoring_at_search", description=__doc__
    )
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args(argv)

    index = BM25Index(base_store(args.size) / "bm25")
    if not index.load():
        raise SystemExit("the base store's BM25 version could not be loaded")
    started = time.perf_counter()
    counts = CountIndex(index)
    made = time.perf_counter() - started
    texts = synthetic_chunks(args.queries * 5)[::5]
    questions = [" ".join(text.split()[:12]) for text in texts]
    kept, computed, worst, same_top = [], [], 0.0, 0
    for question in questions:
        started = time.perf_counter()
        a = index.scores(question)
        kept.append(time.perf_counter() - started)
        started = time.perf_counter()
        b = counts.scores(question)
        computed.append(time.perf_counter() - started)
        worst = max(worst, float(np.abs(a - b).max() / max(float(a.max()), 1e-9)))
        top_a = np.argsort(-a, kind="stable")[:10]
        same_top += bool((top_a == np.argsort(-b, kind="stable")[:10]).all())

    table = (
        f"{counts.n:,} synthetic chunks, {counts.tf.nnz:,} (chunk, term) pairs; "
        f"{len(questions)} questions of 12 words (and their word pairs); the counts' postings "
        f"made once in {made:.2f} s:\n\n"
        "| BM25 scores of every chunk | p50 ms | p95 ms |\n"
        "|---|---:|---:|\n"
        f"| kept precomputed (bm25s, today) | {_ms(kept, 50)} | {_ms(kept, 95)} |\n"
        f"| computed at search time from counts | {_ms(computed, 50)} | {_ms(computed, 95)} |\n"
        f"\nLargest difference between the two, relative to the best score: {worst:.1e}; "
        f"the same ten chunks first, in the same order: {same_top} of {len(questions)}.\n"
    )
    print(table)
    if not args.no_write:
        body = (
            "## BM25 scored at search time (`python -m bench.bm25_scoring_at_search`)\n\n"
            f"Machine: {machine()}. A prototype's measure, for the proposal of a BM25 "
            "extended in place; the product still keeps the scores precomputed.\n\n"
            f"{table}"
        )
        write_section("bm25_scoring_at_search", body)
        print("wrote its section of BENCHMARKS.md")
    return 0


def _ms(seconds: list[float], q: int) -> str:
    return f"{np.percentile(np.asarray(seconds) * 1e3, q):.1f}"


if __name__ == "__main__":
    raise SystemExit(main())
