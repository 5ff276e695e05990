"""Late interaction: the fused top re-scored token by token (hand-built vectors), the store of
the chunks' token vectors, and the real path: ingest keeps them, a search uses them, a
deleted document takes them along, and a missing one leaves the fused order."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.late_interaction import TokenStore, dequantize, maxsim, maxsims, quantize, rerank
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


def test_maxsims_in_one_product_equal_maxsim_one_by_one():
    rng = np.random.default_rng(0)
    q = unit(*rng.standard_normal((5, DIM)).tolist())
    chunks = [unit(*rng.standard_normal((n, DIM)).tolist()) for n in (7, 1, 3)]
    np.testing.assert_allclose(maxsims(q, chunks), [maxsim(q, c) for c in chunks], atol=1e-6)


def test_token_store_keeps_vectors_in_int8_and_forgets_deleted_chunks(tmp_path):
    rng = np.random.default_rng(1)
    vectors = {f"id{i}": unit(*rng.standard_normal((20 + i, 384)).tolist()) for i in range(3)}
    store = TokenStore(tmp_path / "tokens" / "x.sqlite")
    assert store.get(["id0"]) == {}  # no file yet: nothing, no error
    store.put(vectors.items())
    got = store.get(["id0", "id2", "missing"])
    assert set(got) == {"id0", "id2"}
    for key, v in got.items():
        assert v.shape == vectors[key].shape
        assert (v * vectors[key]).sum(axis=1).min() >= 0.999  # int8, one scale a row
    store.delete(["id0"])
    assert set(store.get(list(vectors))) == {"id1", "id2"} and store.count() == 2
    np.testing.assert_allclose(dequantize(quantize(np.zeros((2, 4)))), 0.0)


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


def test_ingest_keeps_every_chunks_token_vectors(onnx_index):
    ids = [cid for cid, _, _ in onnx_index.store.records(include=["documents"])]
    assert len(ids) > 40
    assert onnx_index.store.tokens.count() == len(ids)
    assert set(onnx_index.store.tokens.get(ids)) == set(ids)


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


def test_a_search_reorders_the_fused_top_by_the_stored_token_vectors(onnx_index):
    question = "Until what time do I need to phone my boss when I am ill?"
    plain = onnx_index.retriever(floor=-1)
    plain.rerank_depth = 0
    late = onnx_index.retriever(floor=-1)
    assert late.rerank_depth == 10  # the default
    fused = [(h.id, h.score) for h in plain.search(question, 10)]
    head = [i for i, _ in fused[:10]]
    query_tokens = onnx_index.embedder.token_vectors([question])[0]
    want = rerank(fused, query_tokens, onnx_index.store.tokens.get(head), depth=10)
    assert _ids(late.search(question, 10)) == [i for i, _ in want[:10]]
    assert [i for i, _ in want[:10]] != head  # this question does move
    # a chunk of the top without its token vectors (a store from before, a crash between
    # the two writes): the fused order, no error
    onnx_index.store.tokens.delete([head[0]])
    assert _ids(late.search(question, 10)) == head
