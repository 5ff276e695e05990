"""Which embedder made a store's vectors, and the refusal to mix two of them.

A signature is ``MODEL|BACKEND|PRECISION`` (``sentence-transformers/all-MiniLM-L6-v2|onnx|int8``).
The same model at full precision gives the same vectors through torch and through onnx
(cosine 1.0000 on 1,000 chunks, ``bench/embed_bench.py``), so those two are interchangeable,
and so is bf16 arithmetic over the same weights (cosine above 0.9999);
an int8 model moves every vector a little, and a different model puts them in another space
altogether. A query embedded one
way and matched against chunks embedded another way still returns hits, just worse ones,
so nothing downstream would notice: the store records the signature that wrote it and
refuses any other until it is rebuilt.
"""

from __future__ import annotations

from retrieval.errors import EmbedderError

REBUILD_COMMAND = "python -m ingest --rebuild"
# Sentences two ways of running one model are compared on before the second is trusted (an
# ONNX export against torch, the bf16 engine against onnxruntime): a question, a long
# sentence with numbers, and a one-letter text (the worst case for int8)
PROBES = (
    "How many days of annual leave do new employees get?",
    "Expense claims must be approved by your manager within 30 working days, and section "
    "4.2 applies to travel booked through the finance desk.",
    "x",
)


def signature(model: str, backend: str, precision: str) -> str:
    """The id of an embedder: what decides the vectors it makes."""
    return f"{model}|{backend}|{precision}"


def describe(sig: str) -> str:
    """``MODEL|BACKEND|PRECISION`` in words, for messages."""
    parts = sig.split("|")
    if len(parts) != 3:
        return sig
    model, backend, precision = parts
    return f"{model} ({backend}, {precision})"


# Precisions whose vectors are the same for retrieval. bf16 here is the fp32 model run in
# bfloat16 arithmetic (OpenVINO's bf16 inference precision; earlier torch.autocast): cosine
# with fp32 at least 0.9999 on every chunk and abstract measured (mean 0.99998; int8's mean
# is 0.994), hit@5 unchanged on the dev and policies sets and SciFact within 0.002
# (BENCHMARKS.md, embed_bench)
_SAME_VECTORS = {"fp32": "full", "bf16": "full"}


def compatible(a: str, b: str) -> bool:
    """Same model and the same vectors: the backend does not change them, nor does bf16
    arithmetic over fp32 weights; int8 weights do."""
    pa, pb = a.split("|"), b.split("|")
    if len(pa) != 3 or len(pb) != 3:
        return a == b
    family = [_SAME_VECTORS.get(p[2], p[2]) for p in (pa, pb)]
    return pa[0] == pb[0] and family[0] == family[1]


def check_embedder(recorded: str | None, configured: str) -> None:
    """Refuse to use a store whose vectors were made by another embedder.

    ``recorded`` is the signature stored with the vectors; None when the store has none (a
    new, empty store: the caller records ``configured`` with the first vectors it writes).
    Raises ``EmbedderError`` naming both embedders and the command that re-embeds the store.
    """
    if recorded is None or compatible(recorded, configured):
        return
    raise EmbedderError(
        f"The store's vectors were made by {describe(recorded)}, but the configured embedder "
        f"is {describe(configured)}; mixing them would quietly return worse hits. Re-embed "
        f"the store with the configured embedder: `{REBUILD_COMMAND}` (or set "
        f"RAG_EMBEDDING_MODEL / RAG_EMBED_BACKEND back to what built it)."
    )
