"""The embedding backends: same vectors as the torch reference, a checked export cache, and
a store that refuses vectors from another embedder."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from retrieval.embedder_check import REBUILD_COMMAND, check_embedder, signature
from retrieval.errors import EmbedderError, RetrievalError

pytest.importorskip("onnxruntime")

from retrieval.embedders import make_embedder  # noqa: E402
from retrieval.onnx_embedder import OnnxEmbedder  # noqa: E402

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TEXTS = [
    "How many days of annual leave do I get in my first year?",
    "Expense claims must be approved by your manager within 30 working days.",
    "Remote work is allowed up to three days a week after the probation period, subject "
    "to the agreement of the team lead and the security training being complete. " * 3,
    "Laptop",
    "Les congés payés sont de 25 jours ouvrés par an.",
    "",
]


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session", params=[False, True], ids=["fp32", "int8"])
def onnx_embedder(request, onnx_cache):
    return OnnxEmbedder(MODEL, onnx_cache, quantize=request.param, batch_size=4)


def _cosines(a, b) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_torch_vectors_are_unit_length(embedder):
    vectors = np.asarray(embedder.embed(TEXTS))
    assert vectors.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert embedder.signature == f"{MODEL}|torch|fp32"


def test_onnx_vectors_match_the_torch_reference(onnx_embedder, embedder):
    got = onnx_embedder.embed(TEXTS)
    assert len(got) == len(TEXTS)
    vectors = np.asarray(got)
    assert vectors.shape == (len(TEXTS), 384) and onnx_embedder.dimension == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    cos = _cosines(vectors, embedder.embed(TEXTS))
    if onnx_embedder.precision == "fp32":
        assert cos.min() >= 0.9999, cos  # the same arithmetic up to rounding
    else:
        # int8 weights move vectors a little; a one-word text moves most
        assert cos.mean() >= 0.99 and cos.min() >= 0.97, cos


def test_onnx_keeps_the_order_of_texts_across_length_sorted_batches(onnx_embedder):
    """Batches are formed after sorting by length; each vector must come back in its place."""
    texts = [f"{'word ' * n}about topic {n}" for n in (30, 1, 12, 50, 3, 7, 25)]
    together = np.asarray(onnx_embedder.embed(texts))
    alone = np.asarray([onnx_embedder.embed([t])[0] for t in texts])
    if onnx_embedder.precision == "fp32":
        assert np.allclose(together, alone, atol=1e-5)
    else:
        # dynamic int8 quantizes activations per batch, so a vector depends a little on the
        # texts it was batched with: check each came back to its own place
        sims = together @ alone.T
        assert (sims.argmax(axis=1) == np.arange(len(texts))).all()
        assert np.diag(sims).min() >= 0.97
    assert onnx_embedder.embed([]) == []


def test_token_vectors_come_one_per_word_piece_in_text_order(onnx_embedder):
    """Late interaction's input: each text's own token vectors, [CLS] and [SEP] left out,
    unit length, in the caller's order although batches are sorted by length; each with its
    word pieces' ids, the ones the tokenizer alone gives."""
    texts = [f"{'word ' * n}about topic {n}" for n in (30, 1, 12, 400)]
    tokens = onnx_embedder.tokens(texts)
    # one word-piece id a row (their weights), the long text cut where the model cuts it
    for got, alone in zip(tokens, onnx_embedder.pieces(texts), strict=True):
        assert got.pieces is not None and len(got.pieces) == len(got.vectors)
        np.testing.assert_array_equal(got.pieces, alone)
    assert len(tokens[-1].vectors) == onnx_embedder.max_tokens - 2
    texts, together = texts[:-1], [t.vectors for t in tokens[:-1]]
    for text, got in zip(texts, together, strict=True):
        alone = onnx_embedder.tokens([text])[0].vectors
        assert got.shape == alone.shape == (len(text.split()), 384)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        if onnx_embedder.precision == "fp32":
            np.testing.assert_allclose(got, alone, atol=1e-4)
        else:  # int8 quantizes activations per batch
            assert (got * alone).sum(axis=1).min() >= 0.95


def test_signatures_name_model_backend_and_precision(onnx_embedder):
    assert onnx_embedder.signature == f"{MODEL}|onnx|{onnx_embedder.precision}"
    assert onnx_embedder.name == MODEL


def test_a_mismatched_store_is_refused_with_the_rebuild_command():
    torch_sig = signature(MODEL, "torch", "fp32")
    onnx_sig = signature(MODEL, "onnx", "int8")
    check_embedder(None, onnx_sig)  # a new store records what it is given
    check_embedder(torch_sig, signature(MODEL, "onnx", "fp32"))  # the same vectors
    check_embedder(onnx_sig, onnx_sig)
    with pytest.raises(EmbedderError) as err:
        check_embedder(torch_sig, onnx_sig)
    message = str(err.value)
    assert REBUILD_COMMAND == "python -m ingest --rebuild"
    assert REBUILD_COMMAND in message
    assert "torch" in message and "onnx" in message and "int8" in message
    assert isinstance(err.value, RetrievalError)
    with pytest.raises(EmbedderError, match="python -m ingest --rebuild"):
        check_embedder(signature("other/model", "torch", "fp32"), torch_sig)


def _cached_file(cache_dir, precision):
    [path] = cache_dir.glob(f"all-MiniLM-L6-v2-{precision}-*/model.onnx")
    return path


def test_the_export_is_cached_and_reused(onnx_cache, monkeypatch):
    OnnxEmbedder(MODEL, onnx_cache, quantize=False)  # exported by the session fixture or now
    path = _cached_file(onnx_cache, "fp32")
    stamp = path.stat().st_mtime_ns

    def no_export(self, path):
        raise AssertionError("a valid cached export was exported again")

    monkeypatch.setattr(OnnxEmbedder, "_export", no_export)
    again = OnnxEmbedder(MODEL, onnx_cache, quantize=False)
    assert again.path == path and path.stat().st_mtime_ns == stamp
    meta = json.loads(path.with_name("model.onnx.json").read_text())
    assert meta["precision"] == "fp32" and len(meta["sha256"]) == 64


@pytest.mark.parametrize("damage", ["bytes changed", "loads badly, hash rewritten"])
def test_a_corrupt_cache_is_rebuilt_not_loaded(onnx_cache, tmp_path, embedder, damage):
    OnnxEmbedder(MODEL, onnx_cache, quantize=False)
    source = _cached_file(onnx_cache, "fp32").parent
    cache = tmp_path / "cache"
    shutil.copytree(source, cache / source.name)
    path = cache / source.name / "model.onnx"
    good = path.read_bytes()
    if damage == "bytes changed":
        # same size, a few bytes flipped in the middle of the weights: it may well load
        broken = bytearray(good)
        broken[len(good) // 2 : len(good) // 2 + 64] = b"\xff" * 64
        path.write_bytes(bytes(broken))
    else:
        # a file that matches its sidecar but is not a model: the load check must catch it
        path.write_bytes(b"not an onnx model")
        sidecar = path.with_name("model.onnx.json")
        meta = json.loads(sidecar.read_text())
        meta["sha256"] = hashlib.sha256(b"not an onnx model").hexdigest()
        sidecar.write_text(json.dumps(meta))

    rebuilt = OnnxEmbedder(MODEL, cache, quantize=False)
    assert rebuilt.path == path
    assert path.read_bytes() != b"not an onnx model"
    meta = json.loads(path.with_name("model.onnx.json").read_text())
    assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    cos = _cosines(rebuilt.embed(TEXTS[:3]), embedder.embed(TEXTS[:3]))
    assert cos.min() >= 0.9999


def test_factory_gives_each_backend_and_refuses_unknown_ones(onnx_cache, monkeypatch):
    with pytest.raises(EmbedderError, match="torch, onnx"):
        make_embedder(MODEL, "tensorflow", onnx_cache)  # type: ignore[arg-type]
    onnx = make_embedder(MODEL, "onnx", onnx_cache, quantize=True)
    assert onnx.signature.endswith("|onnx|int8")
    # onnxruntime missing: a message that says what to install and the way back
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(EmbedderError, match="pip install .*RAG_EMBED_BACKEND=torch"):
        make_embedder(MODEL, "onnx", onnx_cache)


def test_a_store_refuses_another_embedders_query_until_rebuilt(empty_index, embedder, tmp_path):
    """The store records the signature of its vectors; a different one is refused at open,
    with the command that fixes it, and accepted after that command re-embeds."""
    from ingest import ingest_paths, rebuild
    from retrieval import open_index
    from retrieval.errors import EmbedderError

    class Int8Like:  # another precision: the same vectors would not do
        name = embedder.name
        signature = signature(MODEL, "onnx", "int8")

        def embed(self, texts):
            return embedder.embed(texts)

    doc = tmp_path / "leave.md"
    doc.write_text("Full-time employees receive 28 days of paid annual leave.")
    ingest_paths(empty_index, [doc])
    config = empty_index.config
    assert empty_index.store.recorded_embedder() == embedder.signature
    with pytest.raises(EmbedderError, match=re.escape(REBUILD_COMMAND)):
        open_index(config, embedder=Int8Like())
    fixing = open_index(config, embedder=Int8Like(), check_embedder=False)
    assert rebuild(fixing) == 1
    assert open_index(config, embedder=Int8Like()).store.recorded_embedder().endswith("|int8")
    with pytest.raises(EmbedderError, match="torch, fp32"):
        open_index(config, embedder=embedder)


# ---- bulk embedding in bf16 (retrieval.embedders.BulkEmbedder) -----------------------------

CHUNKS = [
    f"Section {n}.2: requests about {topic} must be approved by your manager within {n} "
    f"working days; the People team keeps the record for {n + 3} years."
    for n, topic in enumerate(
        ["annual leave", "sick leave", "travel", "overtime", "pensions", "laptops"] * 3, start=1
    )
]


def test_bulk_bf16_gives_the_reference_vectors_and_leaves_questions_on_onnx(onnx_cache, embedder):
    from retrieval.embedders import BULK_FROM, BulkEmbedder
    from retrieval.openvino_engine import OpenVinoBF16

    split = make_embedder(MODEL, "onnx", onnx_cache, bulk_bf16=True)
    assert isinstance(split, BulkEmbedder)
    assert split.signature == f"{MODEL}|onnx|fp32"  # what the store records: fp32's vectors
    split.embed(TEXTS[:2])
    assert split._loader is None  # a question never loads the bulk engine
    assert len(CHUNKS) >= BULK_FROM
    split.load_after = 2 * len(CHUNKS)
    early = np.asarray(split.embed(CHUNKS))
    assert split._loader is None  # nor does a small job: onnxruntime embeds
    split.embed(CHUNKS)  # the second long call reaches load_after: loading starts
    assert split._loader is not None
    assert isinstance(split.bulk, OpenVinoBF16)  # waits for the load
    vectors = np.asarray(split.embed(CHUNKS))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # each vector in its own place, and the reference's to within bf16's rounding
    cos = _cosines(vectors, embedder.embed(CHUNKS))
    assert cos.min() >= 0.9999, cos
    assert _cosines(vectors, early).min() >= 0.9999  # either engine: the same vectors
    assert (vectors @ np.asarray(embedder.embed(CHUNKS)).T).argmax(axis=1).tolist() == list(
        range(len(CHUNKS))
    )
    # the chunks' token vectors from the same pass, each with its own text's word pieces
    _, tokens = split.bulk.embed_with_tokens(CHUNKS)
    for got, want in zip(tokens, split.small.tokens(CHUNKS), strict=True):
        np.testing.assert_array_equal(got.pieces, want.pieces)
        assert (got.vectors * want.vectors).sum(axis=1).min() >= 0.99  # bf16's rounding
    # two uploads at once share the engine: each call still gets its own vectors
    calls = [CHUNKS, CHUNKS[::-1], CHUNKS[3:] + CHUNKS[:3]]
    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(split.bulk.embed, calls))
    for texts, vecs in zip(calls, got, strict=True):
        assert _cosines(np.asarray(vecs), embedder.embed(texts)).min() >= 0.9999


def test_an_error_on_an_openvino_thread_reaches_the_caller_and_the_process_ends_cleanly(
    onnx_cache,
):
    """An exception must not escape into OpenVINO's callback thread: the call raised, but the
    process then aborted at exit (status 134), after an ingest had written everything."""
    import subprocess
    import textwrap

    script = textwrap.dedent(
        f"""
        import retrieval.openvino_engine as engine
        from retrieval.embedders import make_embedder

        bulk = make_embedder({MODEL!r}, "onnx", {str(onnx_cache)!r}, bulk_bf16=True).bulk
        assert isinstance(bulk, engine.OpenVinoBF16)
        real = engine.mean_pool_normalize

        def broken(hidden, mask):
            raise ValueError("pooling broke")

        engine.mean_pool_normalize = broken
        try:
            bulk.embed(["a chunk of text"] * 40)
        except ValueError as exc:
            print("raised:", exc)
        engine.mean_pool_normalize = real
        print("after:", len(bulk.embed(["a chunk of text"] * 40)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[1],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "raised: pooling broke" in done.stdout and "after: 40" in done.stdout


def test_a_call_long_enough_to_earn_the_load_waits_for_the_bulk_engine(onnx_cache):
    from retrieval.embedders import BulkEmbedder

    small = make_embedder(MODEL, "onnx", onnx_cache, bulk_bf16=False)
    used: list[int] = []

    class SlowToLoad:  # OpenVINO compiles for about half a second
        name, signature = MODEL, f"{MODEL}|openvino|bf16"

        def __init__(self) -> None:
            time.sleep(1.0)

        def embed(self, texts):
            used.append(len(texts))
            return small.embed(texts)

    split = BulkEmbedder(small, SlowToLoad, bulk_from=4, load_after=len(CHUNKS))
    split.embed(CHUNKS[:10])
    split.embed(CHUNKS[:10])  # brings load_after: loading starts, this short call goes on
    assert split._loader is not None and split._bulk is None and used == []
    split.embed(CHUNKS)  # as long as load_after: waits, and the bulk engine embeds it
    assert used[-1] == len(CHUNKS) and isinstance(split._bulk, SlowToLoad)


def test_bulk_engine_that_disagrees_or_fails_is_not_used(onnx_cache, caplog):
    from retrieval.embedders import BulkEmbedder

    small = make_embedder(MODEL, "onnx", onnx_cache, bulk_bf16=False)
    assert isinstance(small, OnnxEmbedder)

    class Scrambled:  # another space: it would quietly return worse hits
        name, signature = MODEL, f"{MODEL}|openvino|bf16"

        def embed(self, texts):
            rng = np.random.default_rng(0)
            v = rng.normal(size=(len(texts), 384))
            return (v / np.linalg.norm(v, axis=1, keepdims=True)).tolist()

    def no_openvino():
        raise ImportError("No module named 'openvino'")

    for load in (Scrambled, no_openvino):
        split = BulkEmbedder(small, load)
        with caplog.at_level("WARNING"):
            assert split.bulk is small
            got = split.embed(CHUNKS)
        assert np.allclose(got, small.embed(CHUNKS), atol=1e-6)
    assert "disagrees" in caplog.text and "unavailable" in caplog.text

    class BreaksLater:  # agrees on the probes, then fails a call (a driver, memory)
        name, signature = MODEL, f"{MODEL}|openvino|bf16"
        calls = 0

        def embed(self, texts):
            BreaksLater.calls += 1
            if BreaksLater.calls > 1:
                raise RuntimeError("Exception from src/inference: out of memory")
            return small.embed(texts)

    split = BulkEmbedder(small, BreaksLater)
    assert isinstance(split.bulk, BreaksLater)
    with caplog.at_level("WARNING"):
        got = split.embed(CHUNKS)  # the file is embedded all the same
    assert np.allclose(got, small.embed(CHUNKS), atol=1e-6)
    assert "failed" in caplog.text and split.bulk is small
    split.embed(CHUNKS)
    assert BreaksLater.calls == 2  # never asked again


def test_bulk_bf16_defaults_to_cpus_that_have_it(onnx_cache, tmp_path, monkeypatch):
    import retrieval.embedders as embedders
    from retrieval.embedders import BulkEmbedder, native_bf16

    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n")
    assert native_bf16(info)
    info.write_text("processor : 0\nflags : fpu sse avx2 avx512f\n")
    assert not native_bf16(info)
    info.write_text("processor : 0\nflags : fpu amx_bf16 amx_tile\n")
    assert native_bf16(info)
    assert not native_bf16(tmp_path / "missing")  # macOS, Windows

    for has, kind in ((True, BulkEmbedder), (False, OnnxEmbedder)):
        monkeypatch.setattr(embedders, "native_bf16", lambda has=has: has)
        assert type(make_embedder(MODEL, "onnx", onnx_cache)) is kind
    # int8 has its own vectors: no bulk engine whatever the CPU
    assert isinstance(
        make_embedder(MODEL, "onnx", onnx_cache, quantize=True, bulk_bf16=True), OnnxEmbedder
    )


def test_bf16_and_fp32_vectors_are_interchangeable_int8_are_not():
    fp32, bf16, int8 = (
        signature(MODEL, b, p)
        for b, p in (("onnx", "fp32"), ("openvino", "bf16"), ("onnx", "int8"))
    )
    check_embedder(fp32, bf16)
    check_embedder(bf16, fp32)
    with pytest.raises(EmbedderError, match="python -m ingest --rebuild"):
        check_embedder(bf16, int8)
    with pytest.raises(EmbedderError):
        check_embedder(signature("other/model", "openvino", "bf16"), bf16)
