"""The embedder factory: one closed set of backends, each imported only when chosen.

- ``torch``: sentence-transformers on torch, the reference path.
- ``onnx``: the same model exported to ONNX and run by onnxruntime (``OnnxEmbedder``),
  fp32, or int8 with ``quantize=True`` (faster, vectors move slightly); see BENCHMARKS.md,
  the ``embed_bench`` section.

Both give unit-length vectors and a ``signature`` (``MODEL|BACKEND|PRECISION``) that the
store records, so that vectors from two embedders are never mixed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from retrieval.errors import EmbedderError
from retrieval.types import Embedder

EmbedBackend = Literal["torch", "onnx"]
BACKENDS: tuple[str, ...] = get_args(EmbedBackend)


def make_embedder(
    model: str,
    backend: EmbedBackend,
    cache_dir: Path,
    *,
    quantize: bool = False,
    threads: int | None = None,
    batch_size: int = 32,
) -> Embedder:
    """The embedder for ``backend``. ``cache_dir`` holds the onnx backend's exported model
    (the app passes ``DATA_DIR/models/embeddings``); ``quantize`` and ``threads`` apply to
    the onnx backend only (torch picks its own threads and runs fp32)."""
    match backend:
        case "torch":
            from retrieval.embedder import SentenceTransformerEmbedder

            return SentenceTransformerEmbedder(model, batch_size=batch_size)
        case "onnx":
            try:
                import onnxruntime  # noqa: F401
            except ImportError as exc:
                raise EmbedderError(
                    "RAG_EMBED_BACKEND=onnx needs onnxruntime: pip install -r requirements.txt "
                    "(it pins onnxruntime and onnx), or set RAG_EMBED_BACKEND=torch."
                ) from exc
            from retrieval.onnx_embedder import OnnxEmbedder

            return OnnxEmbedder(
                model, cache_dir, quantize=quantize, threads=threads, batch_size=batch_size
            )
        case _:
            raise EmbedderError(
                f"Unknown embedding backend {backend!r}: use one of {', '.join(BACKENDS)}."
            )
