"""Retrieval latency and memory at 1k, 10k and 100k chunks, for bm25, dense and hybrid.

    python -m bench.retrieval_bench [--sizes 1000 10000 100000] [--queries 100]
                                    [--backends torch onnx-fp32 onnx-int8] [--no-write]

The chunks are synthetic: words drawn from a Zipf distribution over a made-up vocabulary,
about 120 words each (a real chunk is 800 characters). Up to --embed-up-to chunks (default
1,000) are embedded by the real model; above that, embedding takes too long on 2 cores
(10k chunks take minutes, 100k most of an hour), so the store gets random
unit vectors of the model's dimension (384) inserted directly into Chroma: the HNSW search
costs about the same, but the dense hits mean nothing (the table says which rows). Queries
are 6 words taken from a random chunk. A synthetic file holds 100 chunks on pages of
``CHUNKS_PER_PAGE`` (about what an 800-character chunker makes of a PDF page), so hybrid's
late interaction also compares its first candidates with their whole pages, as in a real
store.

Stores are built once under data/store/bench/ (git-ignored) and reused. Each (size, mode)
is measured in a fresh process, so the memory column is that process's RSS growth from
opening the stores and answering the queries, after the embedding model was loaded.
Latency is ``retriever.search(query, 5)`` as the app calls it (query embedding included, by
each of ``--backends``), with the relevance floor off so every search returns its five hits:
wall-clock time, then the same searches by process CPU time with the embedder on one thread,
which a busy machine does not inflate.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil

from app.eval import markdown_table
from app.metrics import percentile
from app.settings import DEFAULT_DATA_DIR, REPO_ROOT, load_settings
from bench.common import machine, write_section
from bench.embed_bench import BACKENDS
from retrieval.config import RERANK_DEPTH
from retrieval.late_interaction import PAGE_DEPTH

BENCH_DIR = DEFAULT_DATA_DIR / "bench"
MODES = ("bm25", "dense", "hybrid")
VOCABULARY = 20_000
WORDS_PER_CHUNK = 120
DIMENSION = 384  # all-MiniLM-L6-v2
SEED = 7
CHUNKS_PER_FILE = 100
CHUNKS_PER_PAGE = 3


def synthetic_chunks(n: int, seed: int = SEED) -> list[str]:
    """``n`` texts of Zipf-distributed made-up words: a long tail like real prose."""
    rng = np.random.default_rng(seed)
    syllables = ["ka", "lo", "mi", "ne", "ra", "su", "ti", "vo", "ze", "pa", "dri", "sto"]
    vocab = []
    for i in range(VOCABULARY):
        word, x = "", i + 1
        while x:
            word += syllables[x % len(syllables)]
            x //= len(syllables)
        vocab.append(word + "n")
    ranks = np.minimum(rng.zipf(1.2, size=(n, WORDS_PER_CHUNK)), VOCABULARY) - 1
    return [" ".join(vocab[r] for r in row) for row in ranks]


def unit_rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random unit vectors of the model's dimension."""
    v = rng.standard_normal((n, DIMENSION)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def store_dir(size: int, embed_up_to: int) -> Path:
    kind = "embedded" if size <= embed_up_to else "random-tokens"
    return BENCH_DIR / f"retrieval-{size}-{kind}-paged"  # stores before pages: built anew


def build(size: int, embed_up_to: int) -> tuple[Path, float]:
    """Fill a data dir with ``size`` chunks (once); returns it and the build seconds."""
    from app.wiring import open_index
    from retrieval.late_interaction import embed_for_store, gives_tokens
    from retrieval.types import Chunk, Tokens

    data_dir = store_dir(size, embed_up_to)
    done = data_dir / "built.json"
    if done.is_file():
        return data_dir, json.loads(done.read_text())["seconds"]
    settings = load_settings(data_dir=data_dir)
    index = open_index(settings)
    started = time.perf_counter()
    texts = synthetic_chunks(size)
    chunks = [
        Chunk(
            t,
            f"synthetic-{i // CHUNKS_PER_FILE:04d}.pdf",
            i % CHUNKS_PER_FILE // CHUNKS_PER_PAGE + 1,
            f"doc{i // CHUNKS_PER_FILE}",
        )
        for i, t in enumerate(texts)
    ]
    rng = np.random.default_rng(SEED)
    # random stores: random token rows too (late interaction reads and compares as many as in
    # a real store), with each chunk's real word-piece ids (the weights are counted as usual)
    pool = [unit_rows(rng, 300) for _ in range(64)]
    step = 2000
    for i in range(0, size, step):
        part = chunks[i : i + step]
        tokens = None  # the chunks' token vectors (late interaction)
        if size <= embed_up_to:
            vectors, tokens = embed_for_store(
                index.embedder, [c.text for c in part], depth=index.config.rerank_depth
            )
        else:
            vectors = unit_rows(rng, len(part)).tolist()
            if gives_tokens(index.embedder) and index.config.rerank_depth > 1:
                pieces = index.embedder.pieces([c.text for c in part])
                tokens = [
                    Tokens(pool[(i + n) % len(pool)][: len(p)], p) for n, p in enumerate(pieces)
                ]
        index.store.add(part, vectors)
        index.store.put_tokens(part, tokens)
        print(f"  {min(i + step, size)}/{size} chunks stored", file=sys.stderr, flush=True)
    index.rebuild_bm25()
    seconds = time.perf_counter() - started
    done.write_text(json.dumps({"chunks": size, "seconds": seconds}))
    return data_dir, seconds


def measure(data_dir: Path, mode: str, queries: int, backend: str) -> dict:
    """In this process: RSS growth and search latency for one store, mode and embedder."""
    from app.wiring import open_index
    from bench.embed_bench import load_backend

    proc = psutil.Process()
    settings = load_settings(data_dir=data_dir)
    embedder = load_backend(backend)
    embedder.embed(["warm up"])
    before = proc.memory_info().rss
    # the synthetic stores' vectors are random above --embed-up-to, and fp32 vectors of both
    # backends agree (bench.embed_bench): the recorded embedder is not what is measured here
    retriever = open_index(settings, embedder=embedder, check_embedder=False).retriever(
        mode, floor=-1
    )
    rng = np.random.default_rng(SEED + 1)
    texts = synthetic_chunks(200, seed=SEED + 2)
    questions = []
    for _ in range(queries + 3):
        words = texts[int(rng.integers(len(texts)))].split()
        start = int(rng.integers(len(words) - 6))
        questions.append(" ".join(words[start : start + 6]))
    for q in questions[:3]:  # first searches load the HNSW index and the BM25 arrays
        retriever.search(q, 5)
    seconds = []
    for q in questions[3:]:
        started = time.perf_counter()
        hits = retriever.search(q, 5)
        seconds.append(time.perf_counter() - started)
        assert len(hits) == 5, (mode, len(hits))
    after = proc.memory_info().rss
    # The same searches again, counting CPU time rather than wall time: time spent waiting for
    # a core that other work holds is not counted, so this column survives a busy machine. One
    # thread, so that no thread spins waiting for another (which CPU time would count).
    if backend == "torch":
        import torch

        torch.set_num_threads(1)
        one_thread = embedder
    else:
        one_thread = load_backend(backend, threads=1)
        one_thread.embed(["warm up"])
    retriever = open_index(settings, embedder=one_thread, check_embedder=False).retriever(
        mode, floor=-1
    )
    for q in questions[:3]:
        retriever.search(q, 5)
    cpu, embedding = [], []
    for q in questions[3:]:
        started = time.process_time()
        retriever.search(q, 5)
        cpu.append(time.process_time() - started)
        started = time.process_time()
        one_thread.embed([q])  # every mode pays it: bm25 too, for the floor's cosine
        embedding.append(time.process_time() - started)
    return {
        "p50_ms": percentile(seconds, 50) * 1000,
        "p95_ms": percentile(seconds, 95) * 1000,
        "cpu_p50_ms": percentile(cpu, 50) * 1000,
        "cpu_p95_ms": percentile(cpu, 95) * 1000,
        "embed_cpu_p50_ms": percentile(embedding, 50) * 1000,
        "rss_delta_mb": (after - before) / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retrieval_bench", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=100, help="timed searches per cell")
    parser.add_argument(
        "--embed-up-to", type=int, default=1000, help="above this size, random vectors"
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=BACKENDS,
        default=["torch", "onnx-fp32"],
        help="embedders that embed the questions (default: the reference and the app's default)",
    )
    parser.add_argument("--no-write", action="store_true", help="don't update BENCHMARKS.md")
    parser.add_argument(
        "--child", nargs=3, metavar=("DATA_DIR", "MODE", "BACKEND"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        data_dir, mode, backend = args.child
        print(json.dumps(measure(Path(data_dir), mode, args.queries, backend)))
        return 0

    rows = []
    for size in args.sizes:
        print(f"{size} chunks: building or reusing the store", file=sys.stderr, flush=True)
        data_dir, build_s = build(size, args.embed_up_to)
        for mode, backend in itertools.product(MODES, args.backends):
            proc = subprocess.run(
                [sys.executable, "-m", "bench.retrieval_bench"]
                + ["--child", str(data_dir), mode, backend, "--queries", str(args.queries)],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            m = json.loads(proc.stdout.strip().splitlines()[-1])
            vectors = "model" if size <= args.embed_up_to else "random unit vectors"
            row = [
                f"{size:,}",
                mode,
                backend,
                f"{m['p50_ms']:.1f}",
                f"{m['p95_ms']:.1f}",
                f"{m['cpu_p50_ms']:.1f}",
                f"{m['cpu_p95_ms']:.1f}",
                f"{m['embed_cpu_p50_ms']:.1f}",
                f"{m['rss_delta_mb']:.0f}",
                vectors if mode != "bm25" else "(not used)",
                f"{build_s:.0f}",
            ]
            rows.append(row)
            print(" | ".join(row), file=sys.stderr, flush=True)

    header = [
        "chunks",
        "mode",
        "query embedder",
        "wall p50 (ms)",
        "wall p95 (ms)",
        "CPU p50 (ms)",
        "CPU p95 (ms)",
        "of which query embedding, CPU p50 (ms)",
        "RSS delta (MB)",
        "dense vectors",
        "store build (s)",
    ]
    table = markdown_table([header, *rows])
    print(table)
    if not args.no_write:
        write_section(
            "retrieval_bench",
            f"""## Retrieval latency and memory (`python -m bench.retrieval_bench`)

Machine: {machine()}.
`retriever.search(query, 5)` as the app calls it, query embedding included, relevance floor
off; {args.queries} six-word queries per cell after 3 warm-up searches; each cell in a fresh
process. RSS delta = the process's memory growth from opening the stores (Chroma on disk, the
BM25 index) and searching, measured after the embedding model was loaded. Synthetic chunks of
{WORDS_PER_CHUNK} Zipf-distributed words, {CHUNKS_PER_FILE} to a file on pages of {CHUNKS_PER_PAGE}. Up to {args.embed_up_to:,} chunks the vectors come from
all-MiniLM-L6-v2; above, the store holds random unit vectors of dimension {DIMENSION} inserted
directly into Chroma (embedding 100k chunks takes most of an hour here): about the same
search cost, meaningless dense hits. "Query embedder" is the backend that embeds the
question (`bench.embed_bench` compares them bare). Hybrid re-scores its fused top {RERANK_DEPTH} by late
interaction where the store has the chunks' token vectors (`retrieval.late_interaction`),
its first {PAGE_DEPTH} also against their whole pages:
the embedded stores keep them from the onnx backend's pass; random-vector stores get random
token rows, as many as each chunk's word pieces, with those pieces' ids, so their hybrid
onnx-fp32 rows read and compare as much as a real store's; torch and int8 have other
vectors, so their rows do not re-score.

Wall = what a user waits, with the embedder's default threads; on shared cores it swings
with other work (an embedder's threads wait for each other when a core is taken), so the CPU
columns time the same searches by process CPU time with the embedder on one thread, which
waiting does not inflate: that is the cost of a search. Every mode embeds the query (bm25 too, for the
relevance floor's cosine); the last CPU column is that part. "Store build" = generating,
embedding and inserting the chunks plus the BM25 build.

{table}
""",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
