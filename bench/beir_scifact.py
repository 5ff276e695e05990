"""BEIR SciFact with our own retrieval code: bm25, dense and hybrid, beside the published numbers.

    python -m bench.beir_scifact [--data ../shared/data/scifact] [--no-write]

Runs the 300 test queries against the 5,183 abstracts and prints nDCG@10 and recall@100.
BM25 is our ``BM25Index`` (bm25s, Lucene idf, our ``terms``: words and adjacent pairs,
the question's pairs asked for only in the late-interaction rows, as the app does),
dense is our ``SentenceTransformerEmbedder`` (all-MiniLM-L6-v2, exact cosine search over all
abstracts), hybrid is our ``fuse_hybrid`` of the two with the app's defaults (convex, dense
weight 0.5), then, as the app does, its top 20 re-scored by late interaction
(``retrieval.late_interaction``; rows with and without), so the numbers measure the product.
As in the app, a document's title is its context line
(indexed with its text, counted twice by BM25); the dense side embeds "title text".

Embedding the corpus takes about 6 minutes on 2 cores; the vectors are cached in
``data/store/beir/`` (git-ignored) under a hash of the corpus file and the model name, so a
second run takes seconds. Each document is "title text", as BEIR indexes it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from app.eval import markdown_table
from app.metrics import ndcg_at_k, recall_at_k
from app.settings import DEFAULT_DATA_DIR, REPO_ROOT
from bench.common import machine, write_section
from retrieval.bm25_index import BM25Index
from retrieval.config import DEFAULT_EMBEDDING_MODEL, RetrievalConfig
from retrieval.fusion import fuse_hybrid

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "scifact"
CACHE_DIR = DEFAULT_DATA_DIR / "beir"
DEPTH = 100  # each retriever's list, as deep as recall@100 needs
PRODUCT_CANDIDATES = 20  # settings.candidates: what the app fuses
PUBLISHED = {  # nDCG@10 on the 300 test queries (see ../shared/data/README.md)
    "bm25": "0.665 (BEIR paper, BM25 Anserini)",
    "dense": "0.645 (MTEB, all-MiniLM-L6-v2)",
    "hybrid": "0.728 (OpenSearch 2023, BM25 + fine-tuned dense)",
}


def load_beir(
    folder: Path,
) -> tuple[list[tuple[str, str]], dict[str, str], dict[str, dict[str, int]]]:
    """(corpus [(id, "title text")], test queries {id: text}, qrels {query: {doc: grade}})."""
    corpus = [(d, f"{title} {text}".strip()) for d, title, text in load_corpus(folder)]
    qrels: dict[str, dict[str, int]] = {}
    with open(folder / "qrels" / "test.tsv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            if q["_id"] in qrels:
                queries[q["_id"]] = q["text"]
    return corpus, queries, qrels


def load_corpus(folder: Path) -> list[tuple[str, str, str]]:
    """The corpus as (id, title, text)."""
    with open(folder / "corpus.jsonl", encoding="utf-8") as f:
        return [(d["_id"], d.get("title", ""), d["text"]) for d in (json.loads(line) for line in f)]


def corpus_embeddings(corpus: list[tuple[str, str]], corpus_file: Path, model: str) -> np.ndarray:
    """The corpus vectors, from the cache when the corpus file and model are unchanged."""
    h = hashlib.sha256(model.encode() + b"\x00")
    h.update(corpus_file.read_bytes())
    cache = CACHE_DIR / f"{corpus_file.parent.name}-{h.hexdigest()[:16]}.npy"
    if cache.is_file():
        vectors = np.load(cache, allow_pickle=False)
        if vectors.shape[0] == len(corpus):
            print(f"corpus embeddings from cache {cache.relative_to(REPO_ROOT)}", file=sys.stderr)
            return vectors
    from retrieval.embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(model)
    texts = [text for _, text in corpus]
    step = 256
    parts = []
    for i in tqdm(range(0, len(texts), step), desc="Embedding corpus", unit="batch"):
        parts.append(np.asarray(embedder.embed(texts[i : i + step]), dtype=np.float32))
    vectors = np.concatenate(parts)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, vectors, allow_pickle=False)
    tmp.replace(cache)
    return vectors


def late_interaction_runs(
    fused: dict[str, dict[str, list[tuple[str, float]]]],
    queries: dict[str, str],
    corpus: list[tuple[str, str, str]],
    depth: int,
) -> dict[str, dict[str, list[str]]]:
    """Each fused run with its top ``depth`` re-scored as the app does
    (``retrieval.late_interaction.rerank``), on token vectors of "title text" from the onnx
    backend (the app's default, the one that gives them), made for the candidates only."""
    from retrieval.late_interaction import document_frequencies, idf_weights, rerank
    from retrieval.onnx_embedder import OnnxEmbedder

    embedder = OnnxEmbedder(DEFAULT_EMBEDDING_MODEL, DEFAULT_DATA_DIR / "models" / "embeddings")
    text = {d: f"{title} {body}".strip() for d, title, body in corpus}
    wanted = sorted({d for run in fused.values() for f in run.values() for d, _ in f[:depth]})
    print(f"token vectors of {len(wanted)} candidates", file=sys.stderr, flush=True)
    made = embedder.tokens([text[d] for d in wanted])
    tokens = {d: t.vectors for d, t in zip(wanted, made, strict=True)}
    qids = list(next(iter(fused.values())))
    q_tokens = dict(zip(qids, embedder.tokens([queries[q] for q in qids]), strict=True))
    # the query's word pieces weighted by their rarity in the corpus, as the store counts them
    df, total = document_frequencies(embedder.pieces(list(text.values())))
    weights = {q: idf_weights(t.pieces, df, total) for q, t in q_tokens.items()}
    return {
        name: {
            q: [
                d
                for d, _ in rerank(
                    f, q_tokens[q].vectors, tokens, depth=depth, query_weights=weights[q]
                )
            ]
            for q, f in run.items()
        }
        for name, run in fused.items()
    }


def evaluate(runs: dict[str, dict[str, list[str]]], qrels: dict[str, dict[str, int]]) -> dict:
    out = {}
    for name, ranked in runs.items():
        ndcg = [ndcg_at_k(ranked[q], qrels[q], 10) for q in qrels]
        recall = [recall_at_k(ranked[q], qrels[q], 100) for q in qrels]
        out[name] = (float(np.mean(ndcg)), float(np.mean(recall)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.beir_scifact", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BEIR scifact folder")
    parser.add_argument("--model", default=DEFAULT_EMBEDDING_MODEL, help="embedding model")
    parser.add_argument("--no-write", action="store_true", help="don't update BENCHMARKS.md")
    args = parser.parse_args(argv)
    if not (args.data / "corpus.jsonl").is_file():
        print(f"error: no BEIR corpus.jsonl in {args.data}", file=sys.stderr)
        return 2

    corpus, queries, qrels = load_beir(args.data)
    qids = list(qrels)
    ids = [doc_id for doc_id, _ in corpus]
    print(f"scifact: {len(corpus)} documents, {len(qids)} test queries", file=sys.stderr)

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        bm25 = BM25Index(Path(tmp))
        bm25.build(  # (id, text, source, page, effective, supersedes, context)
            [(d, text, d, None, None, (), title) for d, title, text in load_corpus(args.data)]
        )
    t_bm25_index = time.perf_counter() - t0
    t0 = time.perf_counter()
    # as the app asks: the question's word pairs only where late interaction follows
    sparse, paired = (
        {q: [(h.id, h.score) for h in bm25.search(queries[q], DEPTH, pairs=p)] for q in qids}
        for p in (False, True)
    )
    t_bm25 = time.perf_counter() - t0

    t0 = time.perf_counter()
    doc_vectors = corpus_embeddings(corpus, args.data / "corpus.jsonl", args.model)
    t_embed = time.perf_counter() - t0
    from retrieval.embedder import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(args.model)
    t0 = time.perf_counter()
    q_vectors = np.asarray(embedder.embed([queries[q] for q in qids]), dtype=np.float32)
    scores = q_vectors @ doc_vectors.T  # unit vectors: dot product = cosine
    dense = {}
    for row, q in enumerate(qids):
        top = np.argpartition(-scores[row], DEPTH)[:DEPTH]
        top = top[np.argsort(-scores[row][top], kind="stable")]
        dense[q] = [(ids[i], float(scores[row][i])) for i in top]
    t_dense = time.perf_counter() - t0
    app = RetrievalConfig(data_dir=Path("."))  # the app's fusion defaults

    def fuse(depth: int, bm25_hits: dict) -> dict[str, list[tuple[str, float]]]:
        return {
            q: fuse_hybrid(
                dense[q][:depth],
                bm25_hits[q][:depth],
                method=app.fusion,
                dense_weight=app.dense_weight,
                rrf_k=app.rrf_k,
            )
            for q in qids
        }

    depths = {"": DEPTH, f" ({PRODUCT_CANDIDATES}+{PRODUCT_CANDIDATES})": PRODUCT_CANDIDATES}
    fused = {suffix: fuse(depth, sparse) for suffix, depth in depths.items()}
    t0 = time.perf_counter()
    late = late_interaction_runs(
        {suffix: fuse(depth, paired) for suffix, depth in depths.items()},
        queries,
        load_corpus(args.data),
        app.rerank_depth,
    )
    t_late = time.perf_counter() - t0
    runs = {
        "bm25": {q: [d for d, _ in sparse[q]] for q in qids},
        "dense": {q: [d for d, _ in dense[q]] for q in qids},
    }
    for suffix, by_query in fused.items():
        runs[f"hybrid{suffix}"] = {q: [d for d, _ in f] for q, f in by_query.items()}
        runs[f"hybrid{suffix} + late interaction (top {app.rerank_depth})"] = late[suffix]
    results = evaluate(runs, qrels)

    header = ["retriever", "nDCG@10", "recall@100", "published nDCG@10"]
    rows = []
    for name, (ndcg, recall) in results.items():
        deep = f"{PRODUCT_CANDIDATES}+{PRODUCT_CANDIDATES}" not in name
        recall_text = f"{recall:.3f}" if deep else f"({recall:.3f}, {2 * PRODUCT_CANDIDATES} deep)"
        rows.append([name, f"{ndcg:.3f}", recall_text, PUBLISHED.get(name, "")])
    table = markdown_table([header, *rows])
    print(table)
    timing = (
        f"BM25 index {t_bm25_index:.1f} s, 300 BM25 queries {t_bm25:.1f} s; corpus embeddings "
        f"{t_embed:.1f} s (cached after the first run); 300 dense queries {t_dense:.1f} s; "
        f"token vectors of the candidates and the queries {t_late:.0f} s."
    )
    print(timing)
    best_single = max(results["bm25"][0], results["dense"][0])
    verdict = "beats" if results["hybrid"][0] > best_single else "does NOT beat"
    print(f"hybrid {verdict} the better single retriever ({best_single:.3f})")
    if not args.no_write:
        write_section(
            "beir_scifact",
            f"""## Retrieval quality on BEIR SciFact (`python -m bench.beir_scifact`)

Machine: {machine()}.
300 test queries, 5,183 abstracts ("title text"). Our code: `BM25Index` (bm25s, Lucene idf,
Snowball stemming, English stop words, the title as the context line counted twice),
`SentenceTransformerEmbedder` (all-MiniLM-L6-v2, exact cosine search over "title text"),
`fuse_hybrid` with the app's defaults ({app.fusion}, dense weight {app.dense_weight}) of each
retriever's top {DEPTH}; the
"{PRODUCT_CANDIDATES}+{PRODUCT_CANDIDATES}" row fuses only the top {PRODUCT_CANDIDATES} of each, as the app does
(`candidates` setting). "+ late interaction" re-scores the fused top {app.rerank_depth} by MaxSim
over token vectors, the query's word pieces weighted by the square root of their idf over the
corpus, as the app does (`retrieval.late_interaction`, `rerank_depth` setting).

{table}

{timing} Hybrid {verdict} the better single retriever.
""",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
