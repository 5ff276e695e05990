"""The retrieval tuning study: which index text, BM25 weighting and fusion put the right page first.

    python -m bench.retrieval_tuning [--sets dev policies scifact] [--grid] [--bm25-grid] [--maxsim]
                                    [--pairs] [--write]
    python -m bench.retrieval_tuning --misses

Runs the product's own pieces (``ingest`` loaders and chunking, ``BM25Index``,
``reciprocal_rank_fusion`` / ``convex_fusion``, ``retrieval.context.index_text``) on each
set, with an exact cosine search standing in for Chroma's (the sets are small: the same
order), and prints one row per configuration: hit@1/3/5 (the expected page where the
question has one, as ``app.eval`` counts), the right document at rank 1, the right page at
rank 1 (questions with a page), and for SciFact nDCG@10 and recall@100.

Sets: ``dev`` (data/samples, data/eval/dev.jsonl), ``policies`` (``../shared/data/policies``
and ``data/eval/out/policies.jsonl`` from ``python -m bench.policies_to_jsonl``), ``scifact``
(``../shared/data/scifact``, held out: it checks, it does not choose). Embeddings are cached
under ``data/store/tuning/`` by text hash (and SciFact's corpus under ``data/store/beir/`` by
``bench.beir_scifact``), so a rerun embeds nothing new. ``--write`` puts the table in
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from app.eval.qa_file import QAItem, load_qa
from app.metrics import ndcg_at_k, recall_at_k
from app.settings import DEFAULT_DATA_DIR, REPO_ROOT, SAMPLE_DOCS_DIR
from bench.common import machine, write_section
from retrieval import late_interaction
from retrieval.bm25_index import K1, PAIR_WEIGHT, B, BM25Index, tokenize
from retrieval.config import DEFAULT_EMBEDDING_MODEL
from retrieval.context import context_line, index_text
from retrieval.fusion import convex_fusion, reciprocal_rank_fusion

SHARED = REPO_ROOT.parent / "shared" / "data"
CACHE = DEFAULT_DATA_DIR / "tuning"
FLOORS = (0.15, 0.2, 0.25, 0.3, 0.35)


@dataclass(frozen=True)
class Doc:
    id: str
    text: str
    source: str
    page: int | None
    title: str = ""
    heading: str = ""


@dataclass(frozen=True)
class Config:
    name: str
    embed_context: bool = False  # title + heading in the embedded text
    bm25_context: bool = False  # ... and in the BM25 text
    context_repeat: int = 1  # BM25 field weight of title + heading (repetitions)
    fusion: str = "rrf"  # rrf | convex
    k: int = 60
    w_dense: float = 1.0
    w_bm25: float = 1.0
    candidates: int = 20
    parts: str = "both"  # which context: both | title | heading
    page_agg: float = 0.0  # > 0: pages ranked by best chunk + this x their other chunks
    k1: float = K1  # BM25's term-frequency saturation
    b: float = B  # ... and length normalisation
    maxsim_depth: int = 0  # > 0: the fused top this many re-scored by late interaction
    maxsim_weight: float = 0.65  # ... as (1 - w) x fused + w x MaxSim, each min-max normalised
    maxsim_idf: float = 0.0  # ... query pieces weighted by idf to this power (0.5: the product)
    page_weight: float = 0.0  # ... each chunk's MaxSim mixed with its page's this much
    pair_weight: int = PAIR_WEIGHT  # BM25: how many times a word pair counts (0: words only)


# ---- embeddings, cached by text ---------------------------------------------------------------
class EmbeddingCache:
    def __init__(self, model: str) -> None:
        self.model = model
        self.path = CACHE / f"{hashlib.sha256(model.encode()).hexdigest()[:12]}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.is_file():
            data = np.load(self.path, allow_pickle=False)
            self.vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
        self._embedder = None

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = sorted({self.key(t): t for t in texts if self.key(t) not in self.vectors}.items())
        if missing:
            if self._embedder is None:
                from retrieval.embedder import SentenceTransformerEmbedder

                self._embedder = SentenceTransformerEmbedder(self.model)
            print(f"embedding {len(missing)} texts", file=sys.stderr)
            for i in range(0, len(missing), 64):
                part = missing[i : i + 64]
                vecs = self._embedder.embed([t for _, t in part])
                for (k, _), v in zip(part, vecs, strict=True):
                    self.vectors[k] = np.asarray(v, dtype=np.float32)
                self.save()
        return np.stack([self.vectors[self.key(t)] for t in texts])

    def save(self) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        keys = list(self.vectors)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.asarray(keys), vectors=np.stack([self.vectors[k] for k in keys]))
        tmp.replace(self.path)


# ---- the sets ---------------------------------------------------------------------------------
def load_docs(paths: Sequence[Path]) -> list[Doc]:
    from ingest.chunking import chunk_pages
    from ingest.loaders import loader_for, supported
    from ingest.pipeline import discover

    docs = []
    for path, source in discover(paths):
        if not supported(path):
            continue
        pages = loader_for(path)(path)
        for c in chunk_pages(pages, source=source.rsplit("/", 1)[-1], doc_id="x"):
            docs.append(Doc(c.id, c.text, c.source, c.page, c.title, c.heading))
    return docs


@dataclass
class QASet:
    name: str
    docs: list[Doc]
    items: list[QAItem]
    qrels: dict[str, dict[str, int]] | None = None  # BEIR sets


def qa_set(name: str) -> QASet:
    if name == "dev":
        return QASet(name, load_docs([SAMPLE_DOCS_DIR]), load_qa(REPO_ROOT / "data/eval/dev.jsonl"))
    if name == "policies":
        qa = REPO_ROOT / "data/eval/out/policies.jsonl"
        if not qa.is_file():
            raise SystemExit("run `python -m bench.policies_to_jsonl` first")
        return QASet(name, load_docs([SHARED / "policies"]), load_qa(qa))
    if name == "scifact":
        from bench.beir_scifact import load_beir

        folder = SHARED / "scifact"
        docs, titles = [], {}
        with open(folder / "corpus.jsonl", encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                titles[d["_id"]] = d.get("title", "")
                docs.append(Doc(d["_id"], d["text"], d["_id"], None, d.get("title", "")))
        _, queries, qrels = load_beir(folder)
        items = [QAItem(q, text, (), None, None) for q, text in queries.items()]
        return QASet(name, docs, items, qrels)
    raise SystemExit(f"unknown set {name}")


# ---- one configuration ------------------------------------------------------------------------
@dataclass
class Prepared:
    """What does not depend on fusion: each side's ranked (id, score) lists and cosines."""

    dense: list[list[tuple[str, float]]]
    sparse: list[list[tuple[str, float]]]
    max_cos: np.ndarray  # each query's best cosine over the corpus (the floor's input)
    where: dict[str, tuple]  # chunk id -> (source, page)
    pages: dict[tuple, list[str]] | None = None  # (source, page) -> its chunk ids
    q_tokens: list[np.ndarray] | None = None  # each query's token vectors (late interaction)
    d_tokens: dict[str, np.ndarray] | None = None  # ... and its candidates'
    q_weights: list[np.ndarray | None] | None = None  # ... its pieces' idf_weights over the set


DEPTH = 100


def scifact_vectors(qs: QASet) -> np.ndarray:
    from bench.beir_scifact import corpus_embeddings, load_beir

    folder = SHARED / "scifact"
    corpus, _, _ = load_beir(folder)
    return corpus_embeddings(corpus, folder / "corpus.jsonl", DEFAULT_EMBEDDING_MODEL)


def prepare(qs: QASet, cfg: Config, cache: EmbeddingCache) -> Prepared:
    if cfg.parts != "both":
        keep = "title" if cfg.parts == "title" else "heading"
        drop = {"title": "heading", "heading": "title"}[keep]
        qs = QASet(qs.name, [replace(d, **{drop: ""}) for d in qs.docs], qs.items, qs.qrels)
    ids = [d.id for d in qs.docs]
    if qs.name == "scifact":  # BEIR's "title text", embedded once by bench.beir_scifact
        doc_vecs = scifact_vectors(qs)
    else:
        texts = [
            index_text(d.text, d.title, d.heading) if cfg.embed_context else d.text for d in qs.docs
        ]
        doc_vecs = cache.embed(texts)
    q_vecs = cache.embed([i.question for i in qs.items])
    scores = q_vecs @ doc_vecs.T
    depth = min(DEPTH, len(ids))
    dense = []
    for row in scores:
        top = np.argpartition(-row, depth - 1)[:depth]
        top = top[np.argsort(-row[top], kind="stable")]
        dense.append([(ids[i], float(row[i])) for i in top])
    with tempfile.TemporaryDirectory() as tmp:
        bm25 = BM25Index(
            Path(tmp),
            context_weight=cfg.context_repeat,
            k1=cfg.k1,
            b=cfg.b,
            pair_weight=cfg.pair_weight,
        )
        rows = []
        for d in qs.docs:
            if cfg.bm25_context:
                context = context_line(d.text, d.title, d.heading)
                rows.append((d.id, d.text, d.source, d.page, None, (), context))
            elif qs.name == "scifact":  # BEIR's "title text"
                rows.append((d.id, f"{d.title} {d.text}".strip(), d.source, d.page))
            else:
                rows.append((d.id, d.text, d.source, d.page))
        bm25.build(rows)
        sparse = [[(h.id, h.score) for h in bm25.search(i.question, depth)] for i in qs.items]
    p = Prepared(dense, sparse, scores.max(axis=1), {d.id: (d.source, d.page) for d in qs.docs})
    p.pages = {}
    for d in qs.docs:
        p.pages.setdefault((d.source, d.page), []).append(d.id)
    if cfg.maxsim_depth:
        add_token_vectors(qs, p, cfg)
    return p


MAXSIM_DEPTH = 20  # token vectors are made for each query's fused top this many


def add_token_vectors(qs: QASet, p: Prepared, cfg: Config) -> None:
    """Token vectors (``OnnxEmbedder.tokens``) of every query and of the chunks in
    any query's fused top ``MAXSIM_DEPTH``: the text each side embeds (the context line in
    front; SciFact's "title text"); and the queries' word-piece weights
    (``late_interaction.idf_weights``) over all the set's chunks, as the store counts them."""
    from retrieval.onnx_embedder import OnnxEmbedder

    embedder = OnnxEmbedder(DEFAULT_EMBEDDING_MODEL, DEFAULT_DATA_DIR / "models" / "embeddings")
    plain = replace(cfg, maxsim_depth=0, page_agg=0.0)
    head = {d for n in range(len(qs.items)) for d in fuse(p, plain, n, "hybrid")[:MAXSIM_DEPTH]}
    wanted = sorted(head.union(*(page_members(p, d) for d in head)))  # and their pages'
    by_id = {d.id: d for d in qs.docs}

    def text(d: Doc) -> str:
        if qs.name == "scifact":
            return f"{d.title} {d.text}".strip()
        return index_text(d.text, d.title, d.heading) if cfg.embed_context else d.text

    print(f"token vectors of {len(wanted)} chunks", file=sys.stderr, flush=True)
    chunks = embedder.tokens([text(by_id[d]) for d in wanted])
    p.d_tokens = {d: t.vectors for d, t in zip(wanted, chunks, strict=True)}
    questions = embedder.tokens([i.question for i in qs.items])
    p.q_tokens = [t.vectors for t in questions]
    df, total = late_interaction.document_frequencies(embedder.pieces([text(d) for d in qs.docs]))
    p.q_weights = [late_interaction.idf_weights(t.pieces, df, total) for t in questions]


def fuse(p: Prepared, cfg: Config, q: int, mode: str) -> list[str]:
    n = cfg.candidates
    if mode == "dense":
        return [d for d, _ in p.dense[q]]
    if mode == "bm25":
        return [d for d, _ in p.sparse[q]]
    if cfg.fusion == "convex":
        fused = convex_fusion([p.dense[q][:n], p.sparse[q][:n]], [cfg.w_dense, cfg.w_bm25])
    else:
        fused = reciprocal_rank_fusion(
            [[d for d, _ in p.dense[q][:n]], [d for d, _ in p.sparse[q][:n]]],
            cfg.k,
            [cfg.w_dense, cfg.w_bm25],
        )
    if cfg.page_agg:
        fused = page_aggregate(fused, p.where, cfg.page_agg)
    if cfg.maxsim_depth:
        assert p.q_tokens is not None and p.d_tokens is not None and p.q_weights is not None
        fused = late_interaction.rerank(
            fused,
            p.q_tokens[q],
            p.d_tokens,
            depth=cfg.maxsim_depth,
            weight=cfg.maxsim_weight,
            query_weights=idf_power(p.q_weights[q], cfg.maxsim_idf),
            pages={d: page_members(p, d) for d, _ in fused[: late_interaction.PAGE_DEPTH]},
            page_weight=cfg.page_weight,
        )
    return [d for d, _ in fused]


def page_members(p: Prepared, chunk: str) -> list[str]:
    """The chunks of ``chunk``'s page, as ``HybridRetriever`` takes them
    (``late_interaction.page_to_compare``)."""
    return list(late_interaction.page_to_compare((p.pages or {}).get(p.where[chunk], [])))


def idf_power(weights: np.ndarray | None, power: float) -> np.ndarray | None:
    """``idf_weights`` (the square root of the idf) as the idf to ``power``; 0: none."""
    return None if weights is None or not power else weights ** (2 * power)


def page_aggregate(
    fused: list[tuple[str, float]], where: dict[str, tuple], lam: float
) -> list[tuple[str, float]]:
    """Chunks re-ordered by their page's score: the page's best chunk plus ``lam`` times the
    sum of its other chunks (CombSUM damped: Fox and Shaw, TREC-2 1994), best chunk first
    within a page."""
    by_page: dict[tuple, list[float]] = {}
    for d, s in fused:
        by_page.setdefault(where[d], []).append(s)
    page = {p: v[0] + lam * sum(v[1:]) for p, v in by_page.items()}
    return sorted(fused, key=lambda x: (-page[where[x[0]]], -x[1]))


def score(qs: QASet, p: Prepared, cfg: Config, mode: str) -> dict[str, float]:
    if qs.qrels is not None:
        ranked = {i.id: fuse(p, cfg, n, mode) for n, i in enumerate(qs.items)}
        return {
            "ndcg@10": float(np.mean([ndcg_at_k(ranked[q], qs.qrels[q], 10) for q in qs.qrels])),
            "recall@100": float(
                np.mean([recall_at_k(ranked[q], qs.qrels[q], 100) for q in qs.qrels])
            ),
        }
    where = {d.id: (d.source, d.page) for d in qs.docs}
    ranks, doc_ranks, page_ranks = [], [], []
    for n, item in enumerate(qs.items):
        if item.source is None:
            continue
        found = [where[d] for d in fuse(p, cfg, n, mode)[:10]]
        ranks.append(item.rank_in(found))
        doc_ranks.append(item.rank_in(found, any_page=True))
        if item.page is not None:
            page_ranks.append(ranks[-1])

    def hit(rs: list[int | None], k: int) -> float:
        return float(np.mean([r is not None and r <= k for r in rs])) if rs else float("nan")

    out = {f"hit@{k}": hit(ranks, k) for k in (1, 3, 5)}
    out["doc_hit@1"] = hit(doc_ranks, 1)
    out["page_hit@1"] = hit(page_ranks, 1)
    return out


def floor_table(qs: QASet, p: Prepared) -> dict[float, tuple[float, float]]:
    """Share of answerable / unanswerable questions a cosine floor would refuse (hybrid and
    dense: nothing in the corpus reaches the floor)."""
    answerable = np.array([i.answerable for i in qs.items])
    out = {}
    for floor in FLOORS:
        refused = p.max_cos < floor
        unans = refused[~answerable].mean() if (~answerable).any() else float("nan")
        out[floor] = (float(refused[answerable].mean()), float(unans))
    return out


# ---- the study --------------------------------------------------------------------------------
BASELINE = Config("before: bare text, RRF k=60, 20+20")
CONTEXT = Config("+ title > heading embedded", embed_context=True)
BOTH = replace(CONTEXT, name="+ title > heading in BM25 too", bm25_context=True)
TWICE = replace(BOTH, name="+ BM25 context counted twice", context_repeat=2)
CHOSEN = replace(
    TWICE, name="+ convex fusion, dense 0.5 (chosen)", fusion="convex", w_dense=0.5, w_bm25=0.5
)
CONFIGS = [
    BASELINE,
    CONTEXT,
    BOTH,
    TWICE,
    replace(TWICE, name="  weighted RRF k=60, dense x1.5 (not kept)", w_dense=1.5),
    replace(TWICE, name="  RRF k=10 (not kept)", k=10),
    replace(TWICE, name="  RRF, 50+50 candidates (not kept)", candidates=50),
    replace(CHOSEN, name="  convex, dense 0.4 (not kept)", w_dense=0.4, w_bm25=0.6),
    replace(CHOSEN, name="  convex, dense 0.6 (not kept)", w_dense=0.6, w_bm25=0.4),
    replace(CHOSEN, name="  convex, dense 0.7 (not kept)", w_dense=0.7, w_bm25=0.3),
    replace(CHOSEN, name="  convex, 50+50 candidates (not kept)", candidates=50),
    replace(CHOSEN, name="  convex + page aggregation 0.1 (not kept)", page_agg=0.1),
    CHOSEN,
]


def fusion_grid(base: Config) -> list[Config]:
    out = []
    for cand in (20, 50):
        for k in (10, 30, 60):
            for wd in (1.0, 1.5, 2.0):
                out.append(
                    replace(
                        base, name=f"rrf k={k} wd={wd} n={cand}", k=k, w_dense=wd, candidates=cand
                    )
                )
        for wd in (0.4, 0.5, 0.6, 0.7):
            out.append(
                replace(
                    base,
                    name=f"convex wd={wd} n={cand}",
                    fusion="convex",
                    w_dense=wd,
                    w_bm25=1 - wd,
                    candidates=cand,
                )
            )
    return out


def bm25_grid(base: Config) -> list[Config]:
    """BM25's k1 and b around the product's (1.5, 0.75), with the chosen fusion."""
    return [
        replace(base, name=f"  BM25 k1={k1} b={b} (not kept)", k1=k1, b=b)
        for k1 in (0.6, 0.9, 1.2, 1.5, 2.0)
        for b in (0.3, 0.5, 0.75, 0.9)
        if (k1, b) != (K1, B)
    ]


def maxsim_grid(base: Config) -> list[Config]:
    """The fused top 5, 10 or 20 re-scored by late interaction at five weights, the query's
    pieces alike (stop 23); and the top 10 or 20 at three weights, the pieces weighted by the
    product's square root of their idf (``idf_weights``) or by the full idf (stop 24)."""
    alike = [
        replace(
            base, name=f"  + MaxSim top {depth}, weight {w}", maxsim_depth=depth, maxsim_weight=w
        )
        for depth in (5, 10, MAXSIM_DEPTH)
        for w in (0.5, 0.65, 0.8, 0.9, 1.0)
    ]
    weighted = [
        replace(
            base,
            name=f"  + MaxSim, {label}, top {depth}, weight {w}",
            maxsim_depth=depth,
            maxsim_weight=w,
            maxsim_idf=power,
        )
        for power, label in ((0.5, "sqrt idf"), (1.0, "full idf"))
        for depth in (10, MAXSIM_DEPTH)
        for w in (0.7, 0.8, 0.9)
    ]
    return alike + weighted


# the product's setup: the chosen fusion, then late interaction over the top 20 (stop 24)
PRODUCT = replace(
    CHOSEN,
    maxsim_depth=MAXSIM_DEPTH,
    maxsim_weight=0.8,
    maxsim_idf=0.5,
    page_weight=late_interaction.PAGE_WEIGHT,  # stop 32
)


def pairs_grid(base: Config = PRODUCT) -> list[Config]:
    """BM25 with words only (stops 19-25), with each adjacent pair once (the product since
    stop 26) and twice, over the product's fusion and late interaction."""
    return [
        replace(base, name=f"  + MaxSim, BM25 word pairs x{w}", pair_weight=w) for w in (0, 1, 2)
    ]


def answer_words(answer: str, text: str) -> float:
    """Share of a reference answer's words (``tokenize``: stemmed, stop words out) in a text."""
    words = set(tokenize(answer))
    return len(words & set(tokenize(text))) / len(words) if words else 0.0


def misses(qs: QASet, p: Prepared, cfg: Config, holds: float = 0.8) -> dict[str, int]:
    """Of the questions whose right document is not first (hybrid): how many have a chunk of
    the right document holding ``holds`` of the reference answer's words, how many have such
    a chunk first anyway (another document's chunk answering alike), and at what rank of
    the fused candidates the right document's best such chunk sits: what a reranker of
    the candidates could win at most."""
    by_id = {d.id: d for d in qs.docs}
    wide = f"at rank 11-{2 * cfg.candidates}"
    out = dict.fromkeys(
        [
            "right document not first",
            "the chunk first holds the answer's words too",
            "a chunk of the right document holds the answer's words",
            *(f"  ... that chunk {w}" for w in ("at rank 2-3", "at rank 4-10", wide)),
            "  ... that chunk not among the candidates",
        ],
        0,
    )

    def count(key: str) -> None:
        out[key] += 1

    for n, item in enumerate(qs.items):
        if item.source is None or not item.answers:
            continue
        fused = fuse(p, cfg, n, "hybrid")
        first = by_id[fused[0]]
        if item.names(first.source, any_page=True):
            continue
        count("right document not first")
        if answer_words(item.answers[0], first.text) >= holds:
            count("the chunk first holds the answer's words too")
        own = [d for d in qs.docs if d.source == item.source]
        best = max(own, key=lambda d: answer_words(item.answers[0], d.text))
        if answer_words(item.answers[0], best.text) < holds:
            continue
        count("a chunk of the right document holds the answer's words")
        rank = fused.index(best.id) + 1 if best.id in fused else None
        where = (
            "not among the candidates"
            if rank is None
            else "at rank 2-3"
            if rank <= 3
            else "at rank 4-10"
            if rank <= 10
            else wide
        )
        count(f"  ... that chunk {where}")
    return out


def markdown(results: dict, floors: dict) -> str:
    from app.eval.report import markdown_table

    parts = []
    for set_name, rows in results.items():
        beir = "ndcg@10" in next(iter(rows.values()))["hybrid"]
        keys = (
            ["ndcg@10", "recall@100"]
            if beir
            else ["hit@1", "hit@3", "hit@5", "doc_hit@1", "page_hit@1"]
        )
        header = ["configuration", *(f"{m} {k}" for m in ("bm25", "dense", "hybrid") for k in keys)]
        if not beir:  # keep it readable: hybrid in full, the single sides at hit@1
            header = ["configuration", "bm25 hit@1", "dense hit@1", *(f"hybrid {k}" for k in keys)]
        table = [header]
        for name, row in rows.items():
            if beir:
                cells = [f"{row[m][k]:.3f}" for m in ("bm25", "dense", "hybrid") for k in keys]
            else:
                cells = [f"{row['bm25']['hit@1']:.3f}", f"{row['dense']['hit@1']:.3f}"]
                cells += [f"{row['hybrid'][k]:.3f}" for k in keys]
            table.append([name, *cells])
        parts.append(f"**{set_name}**\n\n{markdown_table(table)}")
        if set_name in floors:
            ft = [["relevance floor (cosine)", *(f"{f:g}" for f in FLOORS)]]
            for label, per in floors[set_name].items():
                ft.append([f"{label}: refused answerable", *(f"{per[f][0]:.3f}" for f in FLOORS)])
                ft.append([f"{label}: refused unanswerable", *(f"{per[f][1]:.3f}" for f in FLOORS)])
            parts.append(markdown_table(ft))
    return "\n\n".join(parts)


def ingest_cost() -> None:
    """What contextual chunks cost at ingest: chunking CPU time with and without titles and
    headings, and the word pieces the embedder reads (each text capped at 256)."""
    from transformers import AutoTokenizer

    from ingest.chunking import chunk_pages
    from ingest.loaders import loader_for, supported
    from ingest.pipeline import discover
    from retrieval.embedder import resolve_model_path

    tok = AutoTokenizer.from_pretrained(resolve_model_path(DEFAULT_EMBEDDING_MODEL))
    docs = [
        (source, loader_for(path)(path))
        for path, source in discover([SHARED / "policies", SAMPLE_DOCS_DIR])
        if supported(path) and (path.suffix == ".pdf" or path.parent == SAMPLE_DOCS_DIR)
    ]
    for context in (False, True):
        best = float("inf")
        for _ in range(3):
            t0 = time.process_time()
            chunks = [
                c
                for s, pages in docs
                for c in chunk_pages(pages, source=s, doc_id="d", context=context)
            ]
            best = min(best, time.process_time() - t0)
        pieces = sum(min(256, len(tok(c.index_text)["input_ids"])) for c in chunks)
        print(
            f"context={context}: {len(chunks)} chunks, chunking CPU {best:.3f} s, word pieces {pieces}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retrieval_tuning", description=__doc__)
    parser.add_argument("--sets", nargs="+", default=["dev", "policies", "scifact"])
    parser.add_argument("--grid", action="store_true", help="also the fusion grid")
    parser.add_argument("--bm25-grid", action="store_true", help="also BM25's k1 x b grid")
    parser.add_argument(
        "--maxsim", action="store_true", help="also late interaction over the fused top 5/10/20"
    )
    parser.add_argument(
        "--pairs", action="store_true", help="also BM25 with and without adjacent word pairs"
    )
    parser.add_argument("--write", action="store_true", help="write BENCHMARKS.md's section")
    parser.add_argument("--cost", action="store_true", help="only the ingest cost of context")
    parser.add_argument(
        "--misses", action="store_true", help="only what the chosen setup misses on policies"
    )
    args = parser.parse_args(argv)
    if args.cost:
        ingest_cost()
        return 0
    cache = EmbeddingCache(DEFAULT_EMBEDDING_MODEL)
    if args.misses:
        qs = qa_set("policies")
        for key, n in misses(qs, prepare(qs, CHOSEN, cache), CHOSEN).items():
            print(f"{key}: {n}")
        return 0
    results: dict = {}
    floors: dict = {}
    for set_name in args.sets:
        t0 = time.perf_counter()
        qs = qa_set(set_name)
        print(f"== {set_name}: {len(qs.docs)} chunks, {len(qs.items)} questions", file=sys.stderr)
        configs = list(CONFIGS) + (fusion_grid(CHOSEN) if args.grid else [])
        configs += bm25_grid(CHOSEN) if args.bm25_grid else []
        configs += maxsim_grid(CHOSEN) if args.maxsim else []
        configs += pairs_grid() if args.pairs else []
        prepared: dict[tuple, Prepared] = {}
        for cfg in configs:
            key = (
                cfg.embed_context,
                cfg.bm25_context,
                cfg.context_repeat,
                cfg.parts,
                cfg.k1,
                cfg.b,
                cfg.maxsim_depth > 0,
                cfg.pair_weight,
            )
            if key not in prepared:
                prepared[key] = prepare(qs, cfg, cache)
            p = prepared[key]
            row = {m: score(qs, p, cfg, m) for m in ("bm25", "dense", "hybrid")}
            results.setdefault(set_name, {})[cfg.name] = row
            flat = "  ".join(f"{m}:" + ",".join(f"{v:.3f}" for v in row[m].values()) for m in row)
            print(f"{set_name:8s} {cfg.name:45s} {flat}", flush=True)
            if qs.qrels is None and cfg in (BASELINE, CHOSEN):
                label = "before" if cfg == BASELINE else "after"
                floors.setdefault(set_name, {})[label] = floor_table(qs, p)
        print(f"   ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    out = REPO_ROOT / "data" / "eval" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "retrieval_tuning.json").write_text(json.dumps(results, indent=1))
    body = markdown(results, floors)
    print(body)
    if args.write:
        write_section(
            "retrieval_tuning",
            f"""## Retrieval tuning study (`python -m bench.retrieval_tuning --write`)

Machine: {machine()}. Quality only (no timings): the product's chunking, `BM25Index`,
fusion functions and contextual index text, with an exact cosine search standing in for
Chroma's. Chosen on **dev** (data/samples, 59 answerable + 14 unanswerable questions) and
**policies** (seven real policy PDFs, 1,342 answerable + 12 unanswerable questions; page =
the page of the reference answer, see `bench/policies_to_jsonl.py`); **SciFact** is held out:
it checks the choices, it chose nothing. hit@k counts the expected page where the question
has one (as `app.eval` does), doc_hit@1 the right document at rank 1, page_hit@1 the right
page at rank 1 over the questions with a page. The rule that chose: the best hit@1 pooled
over the 1,401 answerable questions of dev and policies (a question counts the same in both
sets), no loss of a refusal (floor table); dense 0.4-0.5 is a plateau, 0.5 (both sides
alike) was taken. SciFact's dense side is BEIR's "title text"
embedded once by `bench.beir_scifact` in every row (its title is its context); its BM25
"context" rows index the title as the context field.

{body}
""",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
