"""Embedding backends side by side: torch (the reference), onnxruntime fp32 and int8, and
onnxruntime fp32 with long calls on OpenVINO in bf16 (onnx-bf16).

    python -m bench.embed_bench [--pages 1000] [--queries 100]
                                [--backends torch onnx-fp32 onnx-bf16 onnx-int8]
                                [--scifact ../shared/data/scifact | --no-scifact] [--no-write]

Every backend runs in the same process, on the same texts, interleaved, so a change in the
load of the shared cores weighs on all of them alike; the ratio to torch is the figure to
watch. Measures:

- throughput on the ingest benchmark's chunks (``bench.ingest_bench``'s PDF corpus, the
  same loader and splitter), in two halves, each half run by every backend in turn;
- one question embedded alone (what a search pays): process CPU time with one thread, as
  ``bench.retrieval_bench`` counts it, and wall time with the backend's default threads;
- agreement with torch: cosine between the two paths' vectors of the first 1,000 chunks;
- SciFact (BEIR, 300 test queries, 5,183 abstracts): dense nDCG@10, and hybrid nDCG@10
  (our BM25 fused with it by RRF, top 100 each, as ``bench.beir_scifact`` does). Corpus
  vectors are cached in ``data/store/beir/`` under the backend's signature (onnx-bf16's
  apart: it records fp32's signature, its vectors being the same for retrieval).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from app.eval import markdown_table
from app.metrics import percentile
from app.settings import DEFAULT_DATA_DIR, load_settings
from bench.common import machine, write_section
from retrieval.config import DEFAULT_EMBEDDING_MODEL

# onnx-bf16: the default where the CPU has native bf16: questions on onnxruntime fp32, long
# calls on OpenVINO in bf16 (retrieval.embedders.BulkEmbedder); onnx-fp32 is
# onnxruntime alone
BACKENDS = ("torch", "onnx-fp32", "onnx-bf16", "onnx-int8")
ONNX_CACHE = DEFAULT_DATA_DIR / "models" / "embeddings"
BEIR_CACHE = DEFAULT_DATA_DIR / "beir"
AGREEMENT_CHUNKS = 1000


def load_backend(name: str, threads: int | None = None) -> Any:
    from retrieval.embedders import BulkEmbedder, make_embedder

    if name == "torch":
        return make_embedder(DEFAULT_EMBEDDING_MODEL, "torch", ONNX_CACHE)
    embedder = make_embedder(
        DEFAULT_EMBEDDING_MODEL,
        "onnx",
        ONNX_CACHE,
        quantize=name == "onnx-int8",
        threads=threads,
        bulk_bf16=name == "onnx-bf16",
    )
    if isinstance(embedder, BulkEmbedder):
        embedder.bulk  # noqa: B018  # loaded now, so that no timed call runs before it is
    return embedder


def ingest_chunks(pages: int) -> list[str]:
    """The chunk texts ``bench.ingest_bench`` makes of its PDF corpus."""
    from bench.ingest_bench import expected_chunks, make_corpus

    with tempfile.TemporaryDirectory(prefix="embed-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        make_corpus(corpus, pages, per_file=50, chars=1500)
        settings = load_settings(data_dir=Path(tmp) / "store")
        return [c.text for c in expected_chunks(corpus, settings)]


def timed(
    fn: Callable[[], Any], clock: Callable[[], float] = time.process_time
) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds by ``clock``: this process's unless given)."""
    wall, cpu = time.perf_counter(), clock()
    out = fn()
    return out, time.perf_counter() - wall, clock() - cpu


def throughput(embedders: dict[str, Any], texts: list[str]) -> dict[str, dict]:
    halves = (texts[0::2], texts[1::2])
    out = {name: {"wall": 0.0, "cpu": 0.0, "vectors": []} for name in embedders}
    for half in halves:
        for name, embedder in embedders.items():
            vectors, wall, cpu = timed(lambda e=embedder, h=half: e.embed(h))
            out[name]["wall"] += wall
            out[name]["cpu"] += cpu
            out[name]["vectors"].append(np.asarray(vectors, dtype=np.float32))
            print(f"  {name}: {len(half)} chunks in {wall:.1f} s", file=sys.stderr, flush=True)
    order = np.empty(len(texts), dtype=np.int64)
    order[0::2] = np.arange(len(halves[0]))
    order[1::2] = len(halves[0]) + np.arange(len(halves[1]))
    for stats in out.values():
        stats["vectors"] = np.concatenate(stats["vectors"])[order]  # back in text order
        stats["chunks_s"] = len(texts) / stats["wall"]
    return out


def cpu_throughput(single_thread: dict[str, Any], texts: list[str]) -> dict[str, float]:
    """Chunks per second of process CPU time, each backend on one thread: what a core does,
    which time spent waiting for a core that other work holds does not change."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {}
        for name, embedder in single_thread.items():
            _, _, cpu = timed(lambda e=embedder: e.embed(texts))
            out[name] = len(texts) / cpu
            print(f"  {name}, 1 thread: {out[name]:.1f} chunks per CPU second", file=sys.stderr)
        return out
    finally:
        torch.set_num_threads(threads)


def questions(n: int, seed: int = 3) -> list[str]:
    """Short questions in the handbook's vocabulary (like a user's)."""
    import random

    from bench.ingest_bench import ROLES, TOPICS

    rng = random.Random(seed)
    forms = (
        "Who approves {t} requests?",
        "How many days do I have to report {t}?",
        "What does section {s} say about {t}?",
        "Does {r} handle {t}?",
    )
    return [
        rng.choice(forms).format(
            t=rng.choice(TOPICS), r=rng.choice(ROLES), s=f"{rng.randint(1, 40)}.{rng.randint(1, 9)}"
        )
        for _ in range(n)
    ]


def query_latency(single_thread: dict[str, Any], default: dict[str, Any], n: int) -> dict:
    """Per backend: CPU p50 of one question on one thread, wall p50 with default threads."""
    qs = questions(n + 3)
    cpu: dict[str, list[float]] = {name: [] for name in single_thread}
    wall: dict[str, list[float]] = {name: [] for name in default}
    for i, q in enumerate(qs):
        for name in single_thread:
            _, _, c = timed(lambda e=single_thread[name], q=q: e.embed([q]))
            _, w, _ = timed(lambda e=default[name], q=q: e.embed([q]))
            if i >= 3:  # warm-up
                cpu[name].append(c)
                wall[name].append(w)
    return {
        name: {
            "cpu_p50_ms": percentile(cpu[name], 50) * 1000,
            "cpu_p95_ms": percentile(cpu[name], 95) * 1000,
            "wall_p50_ms": percentile(wall[name], 50) * 1000,
        }
        for name in single_thread
    }


def agreement(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    cos = (reference * other).sum(axis=1)  # unit vectors
    return float(cos.min()), float(cos.mean())


def scifact(embedders: dict[str, Any], folder: Path) -> dict[str, dict]:
    from bench.beir_scifact import DEPTH, evaluate, load_beir
    from retrieval.bm25_index import BM25Index
    from retrieval.fusion import reciprocal_rank_fusion

    corpus, queries, qrels = load_beir(folder)
    qids = list(qrels)
    ids = [doc_id for doc_id, _ in corpus]
    texts = [text for _, text in corpus]
    with tempfile.TemporaryDirectory() as tmp:
        bm25 = BM25Index(Path(tmp))
        bm25.build([(doc_id, text, doc_id, None) for doc_id, text in corpus])
        sparse = {q: [h.id for h in bm25.search(queries[q], DEPTH)] for q in qids}
    corpus_hash = hashlib.sha256((folder / "corpus.jsonl").read_bytes()).hexdigest()[:16]
    out = {}
    for name, embedder in embedders.items():
        # onnx-bf16 records onnx fp32's signature (the same vectors) but its corpus
        # vectors come from the bf16 engine: cached apart
        made_by = embedder.signature + ("+bf16-openvino" if name == "onnx-bf16" else "")
        key = hashlib.sha256(f"{made_by}\x00{corpus_hash}".encode()).hexdigest()[:16]
        cache = BEIR_CACHE / f"{folder.name}-{key}.npy"
        corpus_s = None
        if cache.is_file() and np.load(cache).shape[0] == len(corpus):
            docs = np.load(cache)
        else:
            print(f"  {name}: embedding {len(texts)} abstracts", file=sys.stderr, flush=True)
            started = time.perf_counter()
            docs = np.asarray(embedder.embed(texts), dtype=np.float32)
            corpus_s = time.perf_counter() - started
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp_file = cache.with_suffix(".tmp.npy")
            np.save(tmp_file, docs, allow_pickle=False)
            tmp_file.replace(cache)
        qv = np.asarray(embedder.embed([queries[q] for q in qids]), dtype=np.float32)
        scores = qv @ docs.T
        dense = {}
        for row, q in enumerate(qids):
            top = np.argpartition(-scores[row], DEPTH)[:DEPTH]
            top = top[np.argsort(-scores[row][top], kind="stable")]
            dense[q] = [ids[i] for i in top]
        hybrid = {
            q: [d for d, _ in reciprocal_rank_fusion([dense[q], sparse[q]], 60)] for q in qids
        }
        results = evaluate({"dense": dense, "hybrid": hybrid}, qrels)
        out[name] = {
            "dense": results["dense"][0],
            "hybrid": results["hybrid"][0],
            "corpus_s": corpus_s,
            "vectors": docs,
        }
        print(f"  {name}: dense {results['dense'][0]:.4f}", file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    from bench.beir_scifact import DEFAULT_DATA

    parser = argparse.ArgumentParser(prog="python -m bench.embed_bench", description=__doc__)
    parser.add_argument("--pages", type=int, default=1000, help="ingest benchmark corpus size")
    parser.add_argument("--queries", type=int, default=100, help="timed single questions")
    parser.add_argument(
        "--cpu-chunks", type=int, default=300, help="chunks timed by CPU time on one thread"
    )
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--scifact", type=Path, default=DEFAULT_DATA, help="BEIR scifact folder")
    parser.add_argument("--no-scifact", action="store_true", help="skip the quality run")
    parser.add_argument("--no-write", action="store_true", help="don't update BENCHMARKS.md")
    args = parser.parse_args(argv)
    names = ["torch", *[b for b in args.backends if b != "torch"]]  # torch is the reference

    load_s, embedders = {}, {}
    for name in names:
        started = time.perf_counter()
        embedders[name] = load_backend(name)
        embedders[name].embed(["warm-up: the first call allocates"] * 32)
        load_s[name] = time.perf_counter() - started
        print(f"{name}: loaded in {load_s[name]:.1f} s", file=sys.stderr, flush=True)
    one_thread = {name: load_backend(name, threads=1) for name in names if name != "torch"}

    texts = ingest_chunks(args.pages)
    print(f"{len(texts)} chunks from {args.pages} pages", file=sys.stderr, flush=True)
    tp = throughput(embedders, texts)
    per_core = cpu_throughput({"torch": embedders["torch"], **one_thread}, texts[: args.cpu_chunks])

    import torch

    default_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    lat = query_latency({"torch": embedders["torch"], **one_thread}, embedders, args.queries)
    torch.set_num_threads(default_threads)

    quality = {} if args.no_scifact else scifact(embedders, args.scifact)

    reference = tp["torch"]["vectors"][:AGREEMENT_CHUNKS]
    header = [
        "backend",
        "signature",
        "load (s)",
        "chunks/s (wall)",
        "vs torch",
        f"chunks per CPU s, 1 thread ({min(args.cpu_chunks, len(texts))} chunks)",
        "vs torch (CPU)",
        "query CPU p50 / p95 (ms, 1 thread)",
        f"query wall p50 (ms, {default_threads} threads)",
        f"cosine vs torch, {min(AGREEMENT_CHUNKS, len(texts))} chunks (min / mean)",
        "SciFact dense nDCG@10",
        "SciFact hybrid nDCG@10",
    ]
    rows = []
    for name in names:
        cmin, cmean = agreement(reference, tp[name]["vectors"][:AGREEMENT_CHUNKS])
        q = quality.get(name)
        rows.append(
            [
                name,
                f"`{embedders[name].signature.split('/')[-1]}`",
                f"{load_s[name]:.1f}",
                f"{tp[name]['chunks_s']:.1f}",
                f"{tp[name]['chunks_s'] / tp['torch']['chunks_s']:.2f}x",
                f"{per_core[name]:.1f}",
                f"{per_core[name] / per_core['torch']:.2f}x",
                f"{lat[name]['cpu_p50_ms']:.1f} / {lat[name]['cpu_p95_ms']:.1f}",
                f"{lat[name]['wall_p50_ms']:.1f}",
                f"{cmin:.4f} / {cmean:.5f}",
                f"{q['dense']:.4f}" if q else "(not run)",
                f"{q['hybrid']:.4f}" if q else "(not run)",
            ]
        )
    table = markdown_table([header, *rows])
    notes = [
        f"{len(texts)} chunks of the ingest benchmark's {args.pages}-page corpus, embedded in "
        "two interleaved halves (each backend in turn), one `embed` call per half."
    ]
    if quality:
        sci = [f"{n} {quality[n]['corpus_s']:.0f} s" for n in names if quality[n]["corpus_s"]]
        if sci:
            notes.append("SciFact corpus embedding (5,183 abstracts): " + ", ".join(sci) + ".")
        ref = quality["torch"]["vectors"]
        for n in names[1:]:
            cmin, cmean = agreement(ref, quality[n]["vectors"])
            notes.append(
                f"{n} vs torch on the SciFact abstracts: cosine min {cmin:.4f}, mean {cmean:.5f}."
            )
    print(table)
    print("\n".join(notes))
    if not args.no_write:
        write_section(
            "embed_bench",
            f"""## Embedding backends (`python -m bench.embed_bench`)

Machine: {machine()}.
all-MiniLM-L6-v2 in one process: torch (sentence-transformers, the reference),
onnxruntime fp32 and onnxruntime int8 (dynamic quantization, per-channel int8 weights of
every MatMul), both exported once from the packaged weights by `retrieval.onnx_embedder`,
and onnx-bf16: onnxruntime fp32 for short calls (the query columns) with long calls on
OpenVINO in bfloat16 (`retrieval.openvino_engine`, the default where the CPU has native
bf16). onnxruntime and the bf16 engine batch texts sorted by token count (each
batch pads to its own longest text) and use as many threads as the process has cores. Query CPU = process CPU time of one
question embedded alone on one thread (how `bench.retrieval_bench` counts it). "chunks/s
(wall)" uses every core and swings with other work on shared cores; "chunks per CPU s" is
the same texts on one thread counted in process CPU time, which that does not inflate:
compare the rows of one run, not runs.

{table}

{" ".join(notes)}
""",
        )
        print("wrote its section of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
