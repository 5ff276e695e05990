"""Late interaction: the fused top re-scored token by token (hand-built vectors), the rare
question word weighing more, the store of the chunks' token vectors and word-piece counts,
and the real path: ingest keeps them, a search uses them, a deleted document takes them
along, and a missing one leaves the fused order."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from retrieval import late_interaction
from retrieval.late_interaction import (
    PAGE_SIZE,
    Tokens,
    TokenStore,
    best_pieces,
    dequantize,
    document_frequencies,
    embed_for_store,
    idf_weights,
    maxsim,
    maxsims,
    quantize,
    rerank,
)
from tests.conftest import make_settings

DIM = 8


def unit(*rows: list[float]) -> np.ndarray:
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def axis(i: int) -> list[float]:
    return [1.0 if d == i else 0.0 for d in range(DIM)]


def test_the_chunk_that_matches_every_question_token_goes_first():
    question = unit(axis(0), axis(1))
    tokens = {
        "a": unit(axis(0), axis(5)),  # one of the two question tokens
        "b": unit(axis(0), axis(1), axis(6)),  # both
        "c": unit(axis(7)),  # none
    }
    fused = [("a", 0.9), ("c", 0.8), ("b", 0.7), ("d", 0.1)]
    got = rerank(fused, question, tokens, depth=3, weight=0.8)
    assert [i for i, _ in got] == ["b", "a", "c", "d"]
    # the places keep their scores: still best first, the fourth untouched
    assert [s for _, s in got] == [0.9, 0.8, 0.7, 0.1]
    # weight 0: the fused order
    assert [i for i, _ in rerank(fused, question, tokens, depth=3, weight=0.0)] == list("acbd")


def test_a_candidate_without_token_vectors_leaves_the_fused_order():
    question = unit(axis(0))
    fused = [("a", 0.9), ("b", 0.8)]
    assert rerank(fused, question, {"b": unit(axis(0))}, depth=2) == fused
    assert rerank(fused, np.empty((0, DIM), np.float32), {"a": unit(axis(0))}, depth=2) == fused


def test_a_chunk_whose_page_holds_the_rest_of_the_answer_goes_first():
    # the question asks two things (axes 0 and 1); chunks a and b each answer the first,
    # and a's page-mate answers the second: a's page answers the whole question
    question = unit(axis(0), axis(1))
    tokens = {
        "a": unit(axis(0)),
        "a-next": unit(axis(1)),
        "b": unit(axis(0)),
        "b-next": unit(axis(2)),
        "c": unit(axis(2)),
    }
    fused = [("b", 1.0), ("a", 0.9), ("c", 0.1)]
    pages = {"a": ["a", "a-next"], "b": ["b", "b-next"], "c": ["c"]}
    assert [i for i, _ in rerank(fused, question, tokens, depth=3)] == ["b", "a", "c"]
    got = rerank(fused, question, tokens, depth=3, pages=pages)
    assert [i for i, _ in got] == ["a", "b", "c"]
    assert [s for _, s in got] == [1.0, 0.9, 0.1]  # the places keep their scores
    # the page weighs little: it decides between chunks alike, not over a better one
    assert rerank(fused, question, tokens, depth=3, pages=pages, page_weight=0.0)[0][0] == "b"
    tokens["b"] = unit(axis(0), axis(1))  # b answers both itself
    assert rerank(fused, question, tokens, depth=3, pages=pages)[0][0] == "b"


def test_the_rare_question_word_outweighs_the_common_one():
    # question pieces: a word every chunk has ("the", axis 0) and a rare one (axis 1)
    question = unit(axis(0), axis(1))
    tokens = {
        "a": unit(axis(0), [0.0, 0.6, 0.8, 0, 0, 0, 0, 0]),  # the common word, the rare near
        "b": unit([0.5, 0.0, 0.0, 0.866, 0, 0, 0, 0], axis(1)),  # the rare word itself
    }
    fused = [("a", 0.9), ("b", 0.8)]
    assert [i for i, _ in rerank(fused, question, tokens, depth=2, weight=1.0)] == ["a", "b"]
    # five chunks, all with piece 7 ("the"), one with piece 42
    df, total = document_frequencies([np.array([7, 7, 42]), *[np.array([7, 9])] * 4])
    assert (df[7], df[42], df[9], total) == (5, 1, 4, 5)
    weights = idf_weights(np.array([7, 42]), df, total)
    assert weights is not None
    assert weights[0] == pytest.approx(late_interaction.MIN_IDF**0.5) and weights[1] > 1
    got = rerank(fused, question, tokens, depth=2, weight=1.0, query_weights=weights)
    assert [i for i, _ in got] == ["b", "a"]
    # weights that are not one a question piece are left out, not an error
    odd = rerank(fused, question, tokens, depth=2, weight=1.0, query_weights=weights[:1])
    assert [i for i, _ in odd] == ["a", "b"]
    assert idf_weights(np.array([7]), {}, 0) is None  # nothing counted: all alike


def test_maxsims_in_one_product_equal_maxsim_one_by_one():
    rng = np.random.default_rng(0)
    q = unit(*rng.standard_normal((5, DIM)).tolist())
    chunks = [unit(*rng.standard_normal((n, DIM)).tolist()) for n in (7, 1, 3)]
    np.testing.assert_allclose(maxsims(q, chunks), [maxsim(q, c) for c in chunks], atol=1e-6)
    w = np.array([0.1, 2.0, 1.0, 0.5, 3.0], dtype=np.float32)
    np.testing.assert_allclose(maxsims(q, chunks, w), [maxsim(q, c, w) for c in chunks], atol=1e-6)


def _pieces(store: TokenStore) -> tuple[dict[int, int], int]:
    """The store's word-piece counts as its weights see them (pieces 0-9)."""
    weights = store.weights(np.arange(10))
    if weights is None:
        return {}, 0
    with sqlite3.connect(store.path) as db:
        df = dict(db.execute("SELECT piece, n FROM df WHERE n != 0").fetchall())
    return {p: n for p, n in df.items() if p >= 0}, df.get(-1, 0)


def test_token_store_keeps_word_piece_counts_in_step_with_writes_and_deletes(tmp_path):
    store = TokenStore(tmp_path / "tokens" / "x.sqlite")
    assert store.weights(np.array([1])) is None  # no file yet
    vec = unit(axis(0), axis(1), axis(2))
    store.put([("a", Tokens(vec, np.array([1, 2, 2]))), ("b", Tokens(vec, np.array([2, 3, 4])))])
    assert _pieces(store) == ({1: 1, 2: 2, 3: 1, 4: 1}, 2)
    store.put([("a", Tokens(vec, np.array([5, 5, 3])))])  # written again: counted once
    assert _pieces(store) == ({2: 1, 3: 2, 4: 1, 5: 1}, 2)
    store.delete(["b", "missing"])
    assert _pieces(store) == ({3: 1, 5: 1}, 1)
    want = idf_weights(np.array([3, 9]), {3: 1, 5: 1}, 1)
    np.testing.assert_allclose(store.weights(np.array([3, 9])), want)

    # an embedder that does not tell its word pieces: kept, not counted
    class NoPieces:
        gives_tokens = True

        def embed_with_tokens(self, texts):
            return [[1.0] * DIM for _ in texts], [Tokens(vec, None) for _ in texts]

    _, tokens = embed_for_store(NoPieces(), ["x", "y"], depth=20)
    assert tokens is not None and [t.pieces for t in tokens] == [None, None]
    store.put(zip(["c", "d"], tokens, strict=True))
    assert _pieces(store) == ({3: 1, 5: 1}, 1) and store.count() == 3


def test_a_token_store_of_stop_23_keeps_serving_and_counts_from_then_on(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the schema before word pieces were kept
        db.execute("CREATE TABLE tokens (id TEXT PRIMARY KEY, vectors BLOB)")
        db.execute("INSERT INTO tokens VALUES (?, ?)", ("old", quantize(unit(axis(0)))))
    store = TokenStore(path)
    assert set(store.get(["old"])) == {"old"}
    assert store.weights(np.array([1])) is None  # nothing counted: pieces weigh alike
    store.put([("new", Tokens(unit(axis(1)), np.array([1])))])
    assert _pieces(store) == ({1: 1}, 1) and store.count() == 2
    store.delete(["old"])  # uncounted: the counts stay
    assert _pieces(store) == ({1: 1}, 1)
    with sqlite3.connect(path) as db:  # an existing file keeps its page size
        assert db.execute("PRAGMA page_size").fetchone()[0] == 4096


def test_token_store_keeps_vectors_in_int8_and_forgets_deleted_chunks(tmp_path):
    rng = np.random.default_rng(1)
    vectors = {f"id{i}": unit(*rng.standard_normal((20 + i, 384)).tolist()) for i in range(3)}
    store = TokenStore(tmp_path / "tokens" / "x.sqlite")
    assert store.get(["id0"]) == {}  # no file yet: nothing, no error
    store.put((k, Tokens(v, np.arange(len(v)))) for k, v in vectors.items())
    got = store.get(["id0", "id2", "missing"])
    assert set(got) == {"id0", "id2"}
    for key, v in got.items():
        assert v.shape == vectors[key].shape
        assert (v * vectors[key]).sum(axis=1).min() >= 0.999  # int8, one scale a row
    store.delete(["id0"])
    assert set(store.get(list(vectors))) == {"id1", "id2"} and store.count() == 2
    np.testing.assert_allclose(dequantize(quantize(np.zeros((2, 4)))), 0.0)
    with sqlite3.connect(store.path) as db:  # a new file: large pages for rows of 50-70 KB
        assert db.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
    for v in vectors.values():  # the same bytes as rounding, clipping and casting apart
        scale = np.abs(v).max(axis=1, keepdims=True) / 127.0
        q = np.clip(np.rint(v / scale), -127, 127).astype(np.int8)
        assert quantize(v)[8 + 2 * len(v) :] == q.tobytes()


def test_a_token_stores_writes_reach_the_file_by_a_checkpoint_aside(tmp_path):
    rng = np.random.default_rng(2)
    rows = {f"id{i}": unit(*rng.standard_normal((200, 384)).tolist()) for i in range(40)}
    store = TokenStore(tmp_path / "tokens.sqlite3")
    store.put((k, Tokens(v, np.arange(len(v)))) for k, v in rows.items())
    with sqlite3.connect(store.path) as other:  # a search's connection sees them at once
        assert other.execute("SELECT COUNT(*) FROM tokens").fetchone()[0] == 40
    store.settle()
    # 40 rows of 200 x 384 int8 (3 MB): copied from the WAL into the file by the thread,
    # which no automatic checkpoint of the writer would have done yet (1,000 pages, 32 MB)
    assert store.path.stat().st_size > 40 * 200 * 384
    db = store._conn()
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: no wait a commit
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    store.delete(["id0"])
    store.close()  # waits for the checkpoint
    assert TokenStore(store.path).count() == 39


def test_packed_token_vectors_score_as_the_chunks_rows_do(tmp_path):
    """What a search reads (``TokenStore.packed``: the scales applied to the products)
    gives the chunks' best pieces and the re-ranking of their rows as ``get`` gives them."""
    rng = np.random.default_rng(3)
    store = TokenStore(tmp_path / "tokens.sqlite")
    rows = {f"c{i}": unit(*rng.standard_normal((5 + 7 * i, 384)).tolist()) for i in range(6)}
    store.put((k, Tokens(v, None)) for k, v in rows.items())
    ids = ["c4", "c0", "c5", "c2", "missing"]
    packed, plain = store.packed(ids), store.get(ids)
    assert set(packed.spans) == set(plain) == {"c0", "c2", "c4", "c5"} and "missing" not in packed
    for key, v in plain.items():
        np.testing.assert_array_equal(packed[key], v)
    query = unit(*rng.standard_normal((9, 384)).tolist())
    order = ["c5", "c0", "c4", "c2"]  # not the order they were read in
    np.testing.assert_allclose(
        packed.best_pieces(query, order), best_pieces(query, [plain[i] for i in order]), atol=1e-5
    )
    fused = [(i, 1.0 - n / 10) for n, i in enumerate(order)]
    pages = {"c5": ["c5", "c2"]}
    assert rerank(fused, query, packed, pages=pages) == rerank(fused, query, plain, pages=pages)
    # a chunk without rows, or rows of another width (another embedder's), as get reads them
    store.put([("empty", Tokens(np.zeros((0, 384), dtype=np.float32), None))])
    store.put([("narrow", Tokens(unit(axis(0), axis(1))[:, :8], None))])
    mixed = store.packed(["c0", "empty", "narrow"])
    assert "narrow" not in mixed and len(mixed["empty"]) == 0
    np.testing.assert_allclose(
        mixed.best_pieces(query, ["empty", "c0"]),
        best_pieces(query, [plain["c0"][:0], plain["c0"]]),
        atol=1e-5,
    )


@pytest.fixture(scope="module")
def onnx_index(tmp_path_factory):
    """The samples ingested with the onnx backend (the one that gives token vectors)."""
    from app.wiring import open_index
    from ingest import ingest_paths
    from tests.conftest import SAMPLE_DOCS_DIR

    settings = make_settings(tmp_path_factory.mktemp("late") / "store", embed_backend="onnx")
    index = open_index(settings)
    report = ingest_paths(index, [SAMPLE_DOCS_DIR])
    assert not report.failed, report.failed
    return index


def _ids(hits):
    return [h.id for h in hits]


def _counted_like_the_stored_chunks(index) -> None:
    """The store's word-piece weights are those of the chunks it holds, counted afresh."""
    from retrieval.context import stored_index_text

    texts = [stored_index_text(t, m) for _, t, m in index.store.records(["documents", "metadatas"])]
    df, total = document_frequencies(index.embedder.pieces(texts))
    question = index.embedder.pieces(["How many remote work days are allowed per week?"])[0]
    want = idf_weights(question, df, total)
    assert want is not None and want.max() > 2 * want.min()  # they do differ
    np.testing.assert_allclose(index.store.tokens.weights(question), want, rtol=1e-6)


def test_ingest_keeps_every_chunks_token_vectors(onnx_index):
    ids = [cid for cid, _, _ in onnx_index.store.records(include=["documents"])]
    assert len(ids) > 40
    assert onnx_index.store.tokens.count() == len(ids)
    assert set(onnx_index.store.tokens.get(ids)) == set(ids)
    _counted_like_the_stored_chunks(onnx_index)


def test_a_deleted_document_takes_its_token_vectors_along(onnx_index):
    from ingest.manage import remove_sources

    memo = "memo_2026-06_office_move.txt"
    ids = [
        cid
        for cid, _, meta in onnx_index.store.records(include=["metadatas"])
        if meta["source"] == memo
    ]
    assert ids and set(onnx_index.store.tokens.get(ids)) == set(ids)
    remove_sources(onnx_index, [memo])
    assert onnx_index.store.tokens.get(ids) == {}
    _counted_like_the_stored_chunks(onnx_index)


def test_a_search_reorders_the_fused_top_by_the_stored_token_vectors(onnx_index):
    question = "Until what time do I need to phone my boss when I am ill?"
    plain = onnx_index.retriever(floor=-1)
    plain.rerank_depth = 0
    late = onnx_index.retriever(floor=-1)
    depth = late.rerank_depth
    assert depth == late_interaction.DEPTH  # the default
    fused = [(h.id, h.score) for h in plain.search(question, depth)]
    head = [i for i, _ in fused[:depth]]
    query_tokens, pieces = onnx_index.embedder.tokens([question])[0]
    weights = onnx_index.store.tokens.weights(pieces)
    assert weights is not None
    stored = onnx_index.store.tokens.get(head)
    # each chunk's page: the token vectors of every chunk of it, as one text
    page_of = {
        cid: (m["source"], m.get("page")) for cid, _, m in onnx_index.store.records(["metadatas"])
    }
    members = {
        i: [c for c, p in page_of.items() if p == page_of[i]]
        for i in head[: late_interaction.PAGE_DEPTH]
    }
    assert max(len(m) for m in members.values()) > 1
    pages = {i: m for i, m in members.items() if len(m) > 1}
    stored.update(onnx_index.store.tokens.get([c for m in pages.values() for c in m]))
    want = rerank(fused, query_tokens, stored, depth=depth, query_weights=weights, pages=pages)
    assert _ids(late.search(question, 10)) == [i for i, _ in want[:10]]
    assert [i for i, _ in want[:10]] != head[:10]  # this question does move
    # ... and not as it would with its words alike, or each chunk alone
    alike = rerank(fused, query_tokens, stored, depth=depth, pages=pages)
    assert [i for i, _ in alike[:10]] != [i for i, _ in want[:10]]
    alone = rerank(fused, query_tokens, stored, depth=depth, query_weights=weights)
    assert [i for i, _ in alone[:10]] != [i for i, _ in want[:10]]
    late.page_weight = 0
    assert _ids(late.search(question, 10)) == [i for i, _ in alone[:10]]
    late.page_weight = onnx_index.config.rerank_page_weight
    # a chunk of the top without its token vectors (a store from before, a crash between
    # the two writes): the fused order, no error
    onnx_index.store.tokens.delete([head[0]])
    assert _ids(late.search(question, 10)) == head[:10]
