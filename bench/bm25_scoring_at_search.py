"""What scoring BM25 when a question comes costs a search, against the scores bm25s keeps
precomputed, on the same index.

    python -m bench.bm25_scoring_at_search [--size 100000] [--queries 40] [--no-write]

bm25s stores each (chunk, term) pair's final score, which depends on the number of chunks
and their mean length, so adding one file changed every score and each ingest rebuilt the
whole index (about 7 s of a 13 s ingest of one PDF into 100,000 chunks before stop 39,
BENCHMARKS.md "One file into a large store"). Since stop 39 the index keeps each pair's
count and computes idf and the length normalisation when a question comes, from the
postings of the question's terms only (``BM25Index.scores``), which lets a writer add a
file as one more segment (``BM25Index.extend``). This script measures that search-time
part on ``bench.ingest_into``'s store of ``--size`` synthetic chunks (built once under
data/store/bench/): the bm25s model of the same chunks is made once, as the index was
before stop 39, then each question is scored both ways and the two compared. Writes its
section of BENCHMARKS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import time

import bm25s
import numpy as np

from bench.common import machine, write_section
from bench.ingest_into import base_store
from bench.retrieval_bench import synthetic_chunks
from retrieval.bm25_index import METHOD, BM25Index, _Terms, terms


def precomputed(index: BM25Index) -> bm25s.BM25:
    """The bm25s model of ``index``'s chunks, each pair's score computed up front, as
    ``BM25Index.build`` made it before stop 39 (Lucene's BM25, array operations)."""
    made = _Terms(index._docs, index._saved_terms(), index._tokens)
    model = bm25s.BM25(method=METHOD, k1=index.k1, b=index.b)
    n, size = len(made.lengths), len(made.vocabulary)
    tf = made.counts()
    df = np.diff(tf.indptr)
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
    norm = made.length_norm(index.k1, index.b)
    term = np.repeat(np.arange(size), df)
    data = idf[term] * (tf.data / (norm[tf.indices] + tf.data))
    model.scores = {
        "data": data.astype(np.float32),
        "indices": tf.indices.astype(np.int32),
        "indptr": tf.indptr.astype(np.int64),
        "num_docs": n,
    }
    model.vocab_dict = made.vocab()
    model.vocab_dict.setdefault("", size)  # bm25s's "empty token", as its index() adds it
    model.unique_token_ids_set = set(model.vocab_dict.values())
    model.nonoccurrence_array = None
    return model


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
    model = precomputed(index)
    made = time.perf_counter() - started
    pairs = int(model.scores["indptr"][-1])
    texts = synthetic_chunks(args.queries * 5)[::5]
    questions = [" ".join(text.split()[:12]) for text in texts]
    kept, computed, worst, same_top = [], [], 0.0, 0
    for question in questions:
        started = time.perf_counter()
        a = model.get_scores([t for t in terms(question) if t in model.vocab_dict])
        kept.append(time.perf_counter() - started)
        started = time.perf_counter()
        b = index.scores(question)
        computed.append(time.perf_counter() - started)
        worst = max(worst, float(np.abs(a - b).max() / max(float(a.max()), 1e-9)))
        top_a = np.argsort(-a, kind="stable")[:10]
        same_top += bool((top_a == np.argsort(-b, kind="stable")[:10]).all())

    table = (
        f"{len(index):,} synthetic chunks in {index.segments} segment(s), {pairs:,} (chunk, "
        f"term) pairs; {len(questions)} questions of 12 words (and their word pairs); the "
        f"precomputed scores made once in {made:.2f} s:\n\n"
        "| BM25 scores of every chunk | p50 ms | p95 ms |\n"
        "|---|---:|---:|\n"
        f"| kept precomputed (bm25s, before stop 39) | {_ms(kept, 50)} | {_ms(kept, 95)} |\n"
        f"| computed from the counts when asked (since stop 39) | {_ms(computed, 50)} | "
        f"{_ms(computed, 95)} |\n"
        f"\nLargest difference between the two, relative to the best score: {worst:.1e}; "
        f"the same ten chunks first, in the same order: {same_top} of {len(questions)}.\n"
    )
    print(table)
    if not args.no_write:
        body = (
            "## BM25 scored at search time (`python -m bench.bm25_scoring_at_search`)\n\n"
            f"Machine: {machine()}. Until stop 39 a prototype's measure; since, the "
            "product's scoring against the precomputed scores it replaced.\n\n"
            f"{table}"
        )
        write_section("bm25_scoring_at_search", body)
        print("wrote its section of BENCHMARKS.md")
    return 0


def _ms(seconds: list[float], q: int) -> str:
    return f"{np.percentile(np.asarray(seconds) * 1e3, q):.1f}"


if __name__ == "__main__":
    raise SystemExit(main())
