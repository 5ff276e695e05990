"""Late interaction: the fused top candidates re-scored token by token, and the store of the
chunks' token vectors it reads.

A chunk's single vector is the mean of its word pieces' contextual vectors; averaging loses
which words matched. MaxSim (Khattab and Zaharia, ColBERT, SIGIR 2020) keeps them: each
word piece of the question takes its best cosine with any word piece of the chunk, and the
question's mean of those is the score. all-MiniLM-L6-v2 was not trained for it, but as a
second stage over the fused top 20 it puts the right passage first more often on every set
measured (BENCHMARKS.md, "Retrieval quality", stops 23 and 24), with no other model.

The question's word pieces do not count alike: "the", "of" and the "##s" of a plural find
a close match in every chunk, so they blur the comparison. Each one is weighted by the
square root of its inverse document frequency over the stored chunks (``idf_weights``;
BM25's idea, on word pieces, damped), which puts the right page first more often again
(BENCHMARKS.md, "Retrieval quality", stop 24).

The token vectors cost nothing extra to make: ingest's embedding pass computes them before
pooling (``embed_with_tokens``), and they are kept here, int8 with a scale per word piece
(about 50 KB a chunk of 800 characters), keyed by chunk id, with the chunk's word-piece ids
and each piece's document count for the weights. Missing ones (a store made before, a crash
between the two writes, the torch backend, which does not give them) only mean the search
keeps the fused order; a store without the counts (made at stop 23) weighs pieces alike.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from retrieval.config import RERANK_DEPTH, RERANK_PAGE_WEIGHT
from retrieval.fusion import min_max
from retrieval.types import Tokens

log = logging.getLogger(__name__)

# chosen on the dev and policies sets (bench.retrieval_tuning --maxsim), SciFact held out;
# the idf's square root (idf_weights) with SciFact seen (BENCHMARKS.md, stop 24)
DEPTH = RERANK_DEPTH  # the fused top this many are re-scored
WEIGHT = 0.8  # their score: (1 - WEIGHT) x fused + WEIGHT x MaxSim, each min-max normalised
# MaxSim is itself (1 - PAGE_WEIGHT) x the chunk's + PAGE_WEIGHT x its page's (every chunk of
# the page a citation names, compared as one text), chosen on the dev and policies sets,
# SciFact unchanged (an abstract is its own page): BENCHMARKS.md, stops 27 and 32
PAGE_WEIGHT = RERANK_PAGE_WEIGHT
PAGE_CHUNKS = 12  # a "page" of more chunks (a long file without pages) counts as the chunk
# ... and only the fused top this many are compared with their pages: as good on both sets
# as all 20, and a search reads a few more chunks' token vectors instead of three times as
# many (at 100,000 chunks the reads are most of a search: BENCHMARKS.md, stop 32)
PAGE_DEPTH = 5
MIN_IDF = 0.1  # of a word piece found in (nearly) every chunk


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    return ThreadpoolController()


def page_to_compare(members: Sequence[str]) -> Sequence[str]:
    """A candidate's page as ``rerank`` takes it (``pages``): the ids of its chunks, or none
    when the page is the chunk alone or longer than ``PAGE_CHUNKS`` (a long file without
    pages), where the chunk counts alone."""
    return members if 1 < len(members) <= PAGE_CHUNKS else ()


def gives_tokens(embedder: object) -> bool:
    """Whether ``embedder`` gives ``Tokens`` (``embed_with_tokens``, ``tokens``): the onnx
    backends do, torch does not."""
    return bool(getattr(embedder, "gives_tokens", False))


def embed_for_store(
    embedder: object, texts: list[str], *, depth: int
) -> tuple[list[list[float]], list[Tokens] | None]:
    """Chunks' vectors, and their ``Tokens`` when the store keeps them: the search re-scores
    (``depth`` > 1) and ``embedder`` gives them; else ``None``. One pass either way: the
    token vectors and their word-piece ids come from the batches that make the vectors."""
    if depth > 1 and gives_tokens(embedder):
        return embedder.embed_with_tokens(texts)  # type: ignore[attr-defined]
    return embedder.embed(texts), None  # type: ignore[attr-defined]


def document_frequencies(pieces: Iterable[np.ndarray]) -> tuple[Counter[int], int]:
    """In how many of the texts each word piece occurs, and how many texts there were.
    Counted in numpy (each text's distinct pieces, then all of them at once): a Python set
    a text took 0.18-0.25 s of 3,000 chunks, this 0.07-0.09 s (BENCHMARKS.md, stop 36)."""
    distinct = [np.unique(np.asarray(p, dtype=np.int64)) for p in pieces]
    if not distinct:
        return Counter(), 0
    found, counts = np.unique(np.concatenate(distinct), return_counts=True)
    return Counter(dict(zip(found.tolist(), counts.tolist(), strict=True))), len(distinct)


def idf_weights(pieces: np.ndarray, df: Mapping[int, int], total: int) -> np.ndarray | None:
    """The question's word pieces' weights in MaxSim: the square root of their idf,
    log((N + 1) / (df + 0.5)) over the ``total`` chunks counted (at least ``MIN_IDF``);
    ``None`` (all alike) when none were. The root: the full idf put the right page first
    more often still on the policies, but cost SciFact 0.011 (BENCHMARKS.md, stop 24)."""
    if total <= 0 or not len(pieces):
        return None
    n = np.asarray([df.get(int(p), 0) for p in pieces], dtype=np.float64)
    return np.sqrt(np.clip(np.log((total + 1) / (n + 0.5)), MIN_IDF, None)).astype(np.float32)


def _mean(best: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """Over the query's pieces (axis 0): the mean, or the mean weighted by ``weights``."""
    if weights is None:
        return best.mean(axis=0)
    w = np.asarray(weights, dtype=np.float32)
    return (w @ best) / w.sum()


def maxsim(query: np.ndarray, chunk: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Each query word piece's best cosine with any of the chunk's, averaged over the query
    (both unit-length rows), weighted by ``weights`` (one per query piece) when given."""
    if not len(query) or not len(chunk):
        return 0.0
    return float(_mean((query @ chunk.T).max(axis=1), weights))


def maxsims(
    query: np.ndarray, chunks: Sequence[np.ndarray], weights: np.ndarray | None = None
) -> list[float]:
    """``maxsim`` of the query with each of ``chunks``, in one product (small products one
    by one cost more in calls than in arithmetic)."""
    if not len(query):
        return [0.0] * len(chunks)
    return np.asarray(_mean(best_pieces(query, chunks), weights)).reshape(-1).tolist()


def best_pieces(query: np.ndarray, chunks: Sequence[np.ndarray]) -> np.ndarray:
    """(query pieces, chunks): each query piece's best cosine with any piece of each chunk
    (0 for a chunk without pieces), in one product."""
    sizes = [len(c) for c in chunks]
    if not chunks:
        return np.zeros((len(query), 0), dtype=np.float32)
    if min(sizes) == 0:
        return np.stack(
            [(query @ c.T).max(axis=1) if len(c) else np.zeros(len(query)) for c in chunks],
            axis=1,
        )
    return _best_in_spans(query, np.concatenate(chunks), np.cumsum([0, *sizes[:-1]]))


def _best_in_spans(
    query: np.ndarray, rows: np.ndarray, starts: Sequence[int], scales: np.ndarray | None = None
) -> np.ndarray:
    """(query pieces, spans): each query piece's best product with the rows of each span
    (``rows[starts[n]:starts[n + 1]]``, none empty), each row's product times its scale
    (``scales``) when given, in one product."""
    # one BLAS thread: a search's product is small, and BLAS's spinning worker threads fight
    # onnxruntime's for the cores (measured: 3.7 ms a search with them, well under 1 without)
    with _blas().limit(limits=1, user_api="blas"):
        sims = query @ rows.T  # (query pieces, all rows)
    if scales is not None:
        sims *= scales
    return np.maximum.reduceat(sims, starts, axis=1)


def rerank(
    fused: Sequence[tuple[str, float]],
    query_tokens: np.ndarray,
    tokens: Mapping[str, np.ndarray] | PackedTokens,
    *,
    depth: int = DEPTH,
    weight: float = WEIGHT,
    query_weights: np.ndarray | None = None,
    pages: Mapping[str, Sequence[str]] | None = None,
    page_weight: float = PAGE_WEIGHT,
) -> list[tuple[str, float]]:
    """The top ``depth`` of ``fused`` (id, score) re-ordered by (1 - weight) x fused +
    weight x MaxSim (its query pieces weighted by ``query_weights``, see ``idf_weights``),
    each min-max normalised over them; the rest stay below in their order. With ``pages``
    (a chunk id -> the ids of every chunk of its page, their token vectors in ``tokens``),
    a chunk's MaxSim is (1 - page_weight) x its own + page_weight x its page's, the page
    compared as one text (each query piece's best over all its chunks): a passage whose
    page also holds the rest of the answer goes up. The scores stay those of the places (the first
    keeps the first's fused score, and so on), so they still fall down the list. Unchanged
    unless every one of the top has its token vectors in ``tokens``."""
    head, tail = list(fused[:depth]), list(fused[depth:])
    if len(head) < 2 or not len(query_tokens) or any(i not in tokens for i, _ in head):
        return list(fused)
    if query_weights is not None and len(query_weights) != len(query_tokens):
        query_weights = None  # not one a piece (an embedder's own tokenizer): all alike
    ids = [i for i, _ in head]
    if pages and page_weight:  # every chunk involved compared once
        ids += [m for i, _ in head for m in pages.get(i, ()) if m in tokens]
    column = {i: n for n, i in enumerate(dict.fromkeys(ids))}
    if isinstance(tokens, PackedTokens):  # as the store reads them: scaled after the product
        best = tokens.best_pieces(query_tokens, list(column))
    else:
        best = best_pieces(query_tokens, [tokens[i] for i in column])
    raw = _mean(best[:, [column[i] for i, _ in head]], query_weights)
    if pages and page_weight:
        page = np.stack(
            [
                best[:, [column[m] for m in pages.get(i, ()) if m in column] or [column[i]]].max(
                    axis=1
                )
                for i, _ in head
            ],
            axis=1,
        )
        raw = (1 - page_weight) * raw + page_weight * _mean(page, query_weights)
    late = min_max(np.asarray(raw).tolist())
    early = min_max([s for _, s in head])
    mixed = [(1 - weight) * e + weight * m for e, m in zip(early, late, strict=True)]
    order = sorted(range(len(head)), key=lambda n: -mixed[n])  # stable: ties keep fused order
    return [(head[n][0], score) for n, (_, score) in zip(order, head, strict=True)] + tail


def quantize(vectors: np.ndarray) -> bytes:
    """int8 rows with a float16 scale each: (rows, dim) -> bytes."""
    v = np.asarray(vectors, dtype=np.float32)
    scale = np.abs(v).max(axis=1, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    # |v / scale| <= 127 by the scale's making: rounded straight into int8, no clip pass
    q = np.empty(v.shape, dtype=np.int8)
    np.rint(v / scale, out=q, casting="unsafe")
    header = np.asarray(v.shape, dtype=np.int32).tobytes()
    return header + scale.astype(np.float16).tobytes() + q.tobytes()


def _stored(blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``quantize``'s bytes as views, nothing copied: (each row's float16 scale, the int8
    rows, shaped (rows, dim))."""
    rows, dim = (int(x) for x in np.frombuffer(blob, dtype=np.int32, count=2))
    scale = np.frombuffer(blob, dtype=np.float16, count=rows, offset=8)
    return scale, np.frombuffer(blob, dtype=np.int8, offset=8 + 2 * rows).reshape(rows, dim)


def dequantize(blob: bytes) -> np.ndarray:
    """``quantize``'s rows back. Rows that were unit length come back within about 0.5 % of
    it, which is left as it is: normalising again would cost a search more than the
    re-scoring itself."""
    scale, q = _stored(blob)
    return q.astype(np.float32) * scale.astype(np.float32)[:, None]


class PackedTokens:
    """Chunks' token vectors as a search reads them (``TokenStore.packed``): every chunk's
    int8 values in one float32 array, each row's scale apart, and each chunk's span of rows.
    ``best_pieces`` applies the scales to the products, not to the rows: a search's 20-30
    chunks are about 7,000 rows of 384 and only a dozen query pieces, and turning each chunk
    back into float32 rows one by one, then joining them, took four times as long as the
    product itself (BENCHMARKS.md, stop 33)."""

    def __init__(self, blobs: Sequence[tuple[str, bytes]]) -> None:
        stored = [(chunk_id, *_stored(blob)) for chunk_id, blob in blobs]
        dim = max((q.shape[1] for *_, q in stored), default=0)
        # a chunk whose rows are narrower than the widest (another embedder's) counts as not
        # stored, as a missing one does: the search then keeps the fused order
        kept = [(chunk_id, scale, q) for chunk_id, scale, q in stored if q.shape[1] == dim]
        self.rows = np.empty((sum(len(q) for *_, q in kept), dim), dtype=np.float32)
        self.scales = np.empty(len(self.rows), dtype=np.float32)
        self.spans: dict[str, tuple[int, int]] = {}
        at = 0
        for chunk_id, scale, q in kept:
            n = len(q)
            self.rows[at : at + n] = q
            self.scales[at : at + n] = scale
            self.spans[chunk_id] = (at, at + n)
            at += n

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self.spans

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, chunk_id: str) -> np.ndarray:
        """One chunk's rows, scaled: what ``dequantize`` gives."""
        start, stop = self.spans[chunk_id]
        return self.rows[start:stop] * self.scales[start:stop, None]

    def best_pieces(self, query: np.ndarray, ids: Sequence[str]) -> np.ndarray:
        """``best_pieces(query, [self[i] for i in ids])``, in one product over every row
        read, scaled afterwards."""
        if not ids or any(start == stop for start, stop in self.spans.values()):
            return best_pieces(query, [self[i] for i in ids])  # a chunk without rows
        # the chunks' rows lie one after the other, in the order of ``spans``
        starts = [start for start, _ in self.spans.values()]
        best = _best_in_spans(query, self.rows, starts, self.scales)
        column = {chunk_id: n for n, chunk_id in enumerate(self.spans)}
        return best[:, [column[i] for i in ids]]


PAGE_SIZE = 32768  # SQLite page size of a new token store (an existing file keeps its own)


class TokenStore:
    """Chunks' token vectors in one SQLite file (WAL: searches read while ingest writes),
    with their word-piece ids and, in table ``df``, in how many chunks each piece occurs
    (row -1: how many chunks were counted), kept in step with every write and delete.
    Derived data: a missing or unreadable file only turns the re-scoring off.

    A write's commit does not wait for the disk: the file runs with ``synchronous=NORMAL``
    (in WAL mode a crash of the program loses nothing and a power cut at most the last
    writes, never the file) and without automatic checkpoints; after each write a thread of
    its own copies the WAL into the file (``_checkpoint``), where it waits for the disk
    while the ingest goes on: about 0.2 s less of a 1,000-page ingest's main thread, 0.6 s
    of 3,000 synthetic chunks' writes (BENCHMARKS.md, stop 34)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._checkpoints = threading.Lock()  # guards the two below
        self._checkpointer: threading.Thread | None = None
        self._checkpoint_wanted = False

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            # a new file gets pages of 32 KiB: a chunk's rows (about 50-70 KB) then span 2-3
            # pages, not 13-18, and the ingest's writes and commits take about 40 % less
            # (BENCHMARKS.md, stop 33); it only applies before the first table and WAL
            db.execute(f"PRAGMA page_size={PAGE_SIZE}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA wal_autocheckpoint=0")  # ``_checkpoint`` does it, aside
            db.execute(
                "CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, vectors BLOB, pieces BLOB)"
            )
            columns = {row[1] for row in db.execute("PRAGMA table_info(tokens)")}
            if "pieces" not in columns:  # a file of stop 23: its rows stay, uncounted
                db.execute("ALTER TABLE tokens ADD COLUMN pieces BLOB")
            db.execute("CREATE TABLE IF NOT EXISTS df (piece INTEGER PRIMARY KEY, n INTEGER)")
            db.commit()
            self._db = db
        return self._db

    def put(self, items: Iterable[tuple[str, Tokens]]) -> None:
        given = list(items)
        rows = [
            (
                chunk_id,
                quantize(t.vectors),
                None if t.pieces is None else np.asarray(t.pieces, dtype=np.int32).tobytes(),
            )
            for chunk_id, t in given
        ]
        added, chunks = document_frequencies(t.pieces for _, t in given if t.pieces is not None)
        added[-1] = chunks
        with self._lock:
            db = self._conn()
            counts = self._uncount(db, [r[0] for r in rows])  # rows written again
            counts.update(added)
            db.executemany(
                "INSERT OR REPLACE INTO tokens (id, vectors, pieces) VALUES (?, ?, ?)", rows
            )
            self._count(db, counts)
            db.commit()
        self._checkpoint()

    @staticmethod
    def _uncount(db: sqlite3.Connection, ids: Sequence[str]) -> Counter[int]:
        """Minus the counts of the stored ``ids``' pieces (to be deleted or written again)."""
        stored = []
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            found = db.execute(
                f"SELECT pieces FROM tokens WHERE pieces IS NOT NULL AND id IN "
                f"({','.join('?' * len(part))})",
                part,
            )
            stored += [np.frombuffer(blob, dtype=np.int32) for (blob,) in found]
        df, chunks = document_frequencies(stored)
        df[-1] = chunks
        return Counter({piece: -n for piece, n in df.items()})

    @staticmethod
    def _count(db: sqlite3.Connection, counts: Counter[int]) -> None:
        db.executemany(
            "INSERT INTO df (piece, n) VALUES (?, ?) "
            "ON CONFLICT(piece) DO UPDATE SET n = n + excluded.n",
            [(piece, n) for piece, n in counts.items() if n],
        )

    def get(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The token vectors of those of ``ids`` that have them."""
        return {chunk_id: dequantize(blob) for chunk_id, blob in self._blobs(ids)}

    def packed(self, ids: Sequence[str]) -> PackedTokens:
        """``get``'s token vectors as a search reads them: ``PackedTokens``."""
        return PackedTokens(self._blobs(ids))

    def _blobs(self, ids: Sequence[str]) -> list[tuple[str, bytes]]:
        if not ids or not self.path.exists():
            return []
        marks = ",".join("?" * len(ids))
        try:
            with self._lock:
                found = self._conn().execute(
                    f"SELECT id, vectors FROM tokens WHERE id IN ({marks})", list(ids)
                )
                return found.fetchall()
        except sqlite3.Error:
            return []

    def weights(self, pieces: np.ndarray) -> np.ndarray | None:
        """``idf_weights`` of a question's word pieces over the stored chunks; ``None`` (all
        alike) when no chunk was counted or the file cannot be read."""
        if not len(pieces) or not self.path.exists():
            return None
        wanted = sorted({int(p) for p in pieces} | {-1})
        try:
            with self._lock:
                found = self._conn().execute(
                    f"SELECT piece, n FROM df WHERE piece IN ({','.join('?' * len(wanted))})",
                    wanted,
                )
                df = dict(found.fetchall())
        except sqlite3.Error:
            return None
        return idf_weights(pieces, df, df.pop(-1, 0))

    def delete(self, ids: Sequence[str]) -> None:
        if not ids or not self.path.exists():
            return
        with self._lock:
            db = self._conn()
            counts = self._uncount(db, list(ids))
            for start in range(0, len(ids), 500):
                part = list(ids[start : start + 500])
                db.execute(f"DELETE FROM tokens WHERE id IN ({','.join('?' * len(part))})", part)
            self._count(db, counts)
            db.commit()
        self._checkpoint()

    def _checkpoint(self) -> None:
        """Copy what was written into the file, on a thread of its own: one at a time, and
        once more after the last write that came while one ran."""
        with self._checkpoints:
            self._checkpoint_wanted = True
            if self._checkpointer is None:
                self._checkpointer = threading.Thread(
                    target=self._checkpoint_loop, name="token-store-checkpoint", daemon=True
                )
                self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        while True:
            with self._checkpoints:
                if not self._checkpoint_wanted:
                    self._checkpointer = None
                    return
                self._checkpoint_wanted = False
            try:  # its own connection: the store's stays free for reads and writes
                # read-write, never create: a file removed meanwhile stays removed
                db = sqlite3.connect(
                    f"{self.path.resolve().as_uri()}?mode=rw", uri=True, timeout=30.0
                )
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                finally:
                    db.close()
            except sqlite3.Error as exc:  # the next write's checkpoint tries again
                log.warning("token store checkpoint failed: %s", exc)

    def settle(self) -> None:
        """Wait for the checkpoint in progress, if any (tests, ``close``)."""
        with self._checkpoints:
            thread = self._checkpointer
        if thread is not None:
            thread.join()

    def count(self) -> int:
        if not self.path.exists():
            return 0
        with self._lock:
            return int(self._conn().execute("SELECT COUNT(*) FROM tokens").fetchone()[0])

    def close(self) -> None:
        self.settle()
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
