"""The embedder factory: one closed set of backends, each imported only when chosen.

- ``torch``: sentence-transformers on torch, the reference path.
- ``onnx``: the same model exported to ONNX and run by onnxruntime (``OnnxEmbedder``),
  fp32, or int8 with ``quantize=True`` (faster, vectors move slightly); see BENCHMARKS.md,
  the ``embed_bench`` section. At fp32 on a CPU with native bfloat16 (AVX-512 BF16, AMX),
  long calls (a file at ingest) go to OpenVINO in bf16 instead (``BulkEmbedder`` over
  ``retrieval.openvino_engine``): about 2.1x onnxruntime's fp32 rate (2.5x torch's), the
  same vectors (cosine above 0.9999), while a question stays on onnxruntime, which embeds
  one short text fastest.

Both give unit-length vectors and a ``signature`` (``MODEL|BACKEND|PRECISION``) that the
store records, so that vectors from two embedders are never mixed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from retrieval.embedder_check import PROBES
from retrieval.errors import EmbedderError
from retrieval.types import Embedder, Tokens

EmbedBackend = Literal["torch", "onnx"]
BACKENDS: tuple[str, ...] = get_args(EmbedBackend)
# a call with this many texts or more is bulk work (ingest embeds a file per call)
BULK_FROM = 16
# the bulk engine is loaded once this many texts came in long calls: loading and compiling
# it costs about 0.7 s of CPU and 0.25 GiB (more at work), earned back after about 60 chunks; a
# smaller job (the sample documents are 53 chunks) never loads it
BULK_LOAD_AFTER = 128
# the bulk engine must agree with the query engine this closely on the probes, or it is not used
MIN_BULK_COSINE = 0.999

log = logging.getLogger(__name__)


def native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX-512 BF16 or AMX). Elsewhere
    bf16 is emulated, slower than fp32. Read from /proc/cpuinfo, so that asking does not
    import torch; False where there is none (macOS, Windows)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


class BulkEmbedder:
    """One embedder over two engines with the same vectors: ``small`` for calls of fewer
    than ``bulk_from`` texts (a question), and the engine ``load_bulk`` makes for the rest.

    The bulk engine is loaded in a background thread once long calls have brought
    ``load_after`` texts; until it is ready shorter calls go to ``small``, so they never
    wait for it and a small job never loads it. A call of ``load_after`` texts or more
    waits for it (under a second): ingest embeds several files in one call, and the first
    such call would otherwise run wholly on ``small``. Before it is trusted it must agree with
    ``small`` on probe sentences (cosine >= ``MIN_BULK_COSINE``); if it does not, does not
    load or later fails a call, ``small`` does all the work from then on and the log says
    why."""

    def __init__(
        self,
        small: Embedder,
        load_bulk: Callable[[], Embedder],
        bulk_from: int = BULK_FROM,
        load_after: int = BULK_LOAD_AFTER,
    ) -> None:
        self.small = small
        self.name = small.name
        self.signature = small.signature  # the vectors of both engines are those of small
        self.bulk_from = bulk_from
        self.load_after = load_after
        self._long_texts = 0
        self._load_bulk = load_bulk
        self._bulk: Embedder | None = None
        self._loader: threading.Thread | None = None
        self._lock = threading.Lock()

    def start_loading(self) -> threading.Thread:
        """Start loading the bulk engine (once); the thread that does it."""
        with self._lock:
            if self._loader is None:
                # not a daemon: a process that ends while the engine imports waits for
                # the import, rather than tearing it down halfway
                self._loader = threading.Thread(target=self._load, name="bulk-embedder-load")
                self._loader.start()
            return self._loader

    @property
    def bulk(self) -> Embedder:
        """The engine for long calls, waiting for it to load (``small`` when the bulk one
        failed its check). ``embed`` waits only in a call of ``load_after`` texts or more."""
        self.start_loading().join()
        assert self._bulk is not None
        return self._bulk

    def _load(self) -> None:
        self._bulk = self._checked_bulk()

    def _checked_bulk(self) -> Embedder:
        try:
            bulk = self._load_bulk()
            got = np.asarray(bulk.embed(list(PROBES)))
        except Exception as exc:  # missing or broken: the query engine can do it all
            log.warning("Bulk embedding engine unavailable (%s); using %s", exc, self.signature)
            return self.small
        want = np.asarray(self.small.embed(list(PROBES)))
        worst = float((got * want).sum(axis=1).min())
        if worst < MIN_BULK_COSINE:
            log.warning(
                "Bulk embedding engine %s disagrees with %s (cosine %.4f); not used",
                bulk.signature,
                self.signature,
                worst,
            )
            return self.small
        return bulk

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self._call(texts, "embed")

    def embed_with_tokens(self, texts: list[str]) -> tuple[list[list[float]], list[Tokens]]:
        """``embed``'s vectors and each text's ``Tokens``, from the same pass."""
        return self._call(texts, "embed_with_tokens")

    @property
    def gives_tokens(self) -> bool:
        """Whether ``embed_with_tokens`` and ``tokens`` work (``small`` has them)."""
        return hasattr(self.small, "embed_with_tokens")

    def tokens(self, texts: list[str]) -> list[Tokens]:
        """A question's ``Tokens`` (late interaction), on the small engine."""
        return self.small.tokens(texts)  # type: ignore[attr-defined]

    def pieces(self, texts: list[str]) -> list[np.ndarray]:
        """Each text's word-piece ids from the tokenizer alone (both engines share it)."""
        return self.small.pieces(texts)  # type: ignore[attr-defined]

    def _call(self, texts: list[str], method: str) -> Any:
        if len(texts) < self.bulk_from:
            return getattr(self.small, method)(texts)
        self._long_texts += len(texts)
        if self._long_texts >= self.load_after:
            loader = self.start_loading()
            if len(texts) >= self.load_after:  # earns the load back alone: worth the wait
                loader.join()
        bulk = self._bulk
        run = getattr(bulk, method, None)
        if bulk is None or bulk is self.small or run is None:
            return getattr(self.small, method)(texts)
        try:
            return run(texts)
        except Exception as exc:  # an accelerator that breaks must not fail the file
            log.warning(
                "Bulk embedding engine %s failed (%s); %s embeds from now on",
                bulk.signature,
                exc,
                self.signature,
            )
            self._bulk = self.small
            return getattr(self.small, method)(texts)


def make_embedder(
    model: str,
    backend: EmbedBackend,
    cache_dir: Path,
    *,
    quantize: bool = False,
    threads: int | None = None,
    batch_size: int = 32,
    bulk_bf16: bool | None = None,
) -> Embedder:
    """The embedder for ``backend``. ``cache_dir`` holds the onnx backend's exported model
    (the app passes ``DATA_DIR/models/embeddings``); ``quantize`` and ``threads`` apply to
    the onnx backend only (torch picks its own threads and runs fp32: the reference).
    ``bulk_bf16``: onnx at fp32 only, long calls on OpenVINO in bf16 (``BulkEmbedder``);
    None = where the CPU has native bf16 (``native_bf16``)."""
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

            onnx = OnnxEmbedder(
                model, cache_dir, quantize=quantize, threads=threads, batch_size=batch_size
            )
            if quantize or not (native_bf16() if bulk_bf16 is None else bulk_bf16):
                return onnx
            from retrieval.openvino_engine import OpenVinoBF16

            return BulkEmbedder(onnx, lambda: OpenVinoBF16(onnx))
        case _:
            raise EmbedderError(
                f"Unknown embedding backend {backend!r}: use one of {', '.join(BACKENDS)}."
            )
