"""Which embedder made a store's vectors, and the refusal to mix two of them.

A signature is ``MODEL|BACKEND|PRECISION`` (``sentence-transformers/all-MiniLM-L6-v2|onnx|int8``).
The same model at full precision gives the same vectors through torch and through onnx
(cosine 1.0000 on 1,000 chunks, ``bench/embed_bench.py``), so those two are interchangeable;
an int8 model moves every vector a little, and a different model puts them in another space
altogether. A query embedded one
way and matched against chunks embedded another way still returns hits, just worse ones,
so nothing downstream would notice: the store records the signature that wrote it and
refuses any other until it is rebuilt.
"""

from __future__ import annotations

from retrieval.errors import EmbedderError

REBUILD_COMMAND = "python -m ingest --rebuild"


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


def compatible(a: str, b: str) -> bool:
    """Same model and precision: the backend does not change the vectors."""
    pa, pb = a.split("|"), b.split("|")
    if len(pa) != 3 or len(pb) != 3:
        return a == b
    return (pa[0], pa[2]) == (pb[0], pb[2])


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
