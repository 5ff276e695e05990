"""Bulk embedding in bfloat16 on OpenVINO: the ONNX export of ``OnnxEmbedder``, compiled by
OpenVINO's CPU plugin with bf16 inference precision, fed by the same tokenizer and
length-sorted batches, with the same pooling.

Where the CPU multiplies bf16 in hardware (AVX-512 BF16, AMX), OpenVINO runs the graph in
bf16 wherever it can, not only its matrix products, and keeps several inference streams
busy, each with its own batch (its throughput hint picks them for the cores: one per core on
2 cores). On this project's 2-core Zen 4 that is about 2.1x onnxruntime's fp32 rate and
2.5x torch's, with the same vectors for retrieval (cosine above 0.9999 to the fp32 model on
every chunk; ``retrieval.embedder_check``). BENCHMARKS.md, "Embedding backends", has the
figures.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from retrieval.embedder_check import signature
from retrieval.onnx_embedder import (
    EMPTY_TOKENS,
    in_text_order,
    mean_pool_normalize,
    model_feeds,
    token_rows,
)
from retrieval.types import Tokens

if TYPE_CHECKING:
    from retrieval.onnx_embedder import OnnxEmbedder

# texts per inference request: with one request per stream in flight, smaller batches keep
# every core busy to the end of a call (16 measured best of 8, 16, 32 and 64)
BATCH = 16


class OpenVinoBF16:
    """``Embedder`` for long calls: ``onnx``'s model and tokens on OpenVINO in bf16, on the
    threads ``onnx`` may use. Import and compile take under 1 s."""

    def __init__(self, onnx: OnnxEmbedder) -> None:
        import openvino as ov

        self._onnx = onnx
        core = ov.Core()
        compiled = core.compile_model(
            core.read_model(str(onnx.path)),
            "CPU",
            {
                "INFERENCE_PRECISION_HINT": "bf16",
                "PERFORMANCE_HINT": "THROUGHPUT",
                "INFERENCE_NUM_THREADS": onnx.threads,
                # unpinned: a pinned stream stalls whenever other work takes its core (the
                # ingest worker parsing the next file, a search); ingest of the public
                # policies took 52.5 s pinned, 32.1 s unpinned, with the same bare speed
                "ENABLE_CPU_PINNING": False,
            },
        )
        self._inputs = {port.any_name for port in compiled.inputs}
        # one request in flight per stream
        self._queue = ov.AsyncInferQueue(
            compiled, compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        )
        self._lock = threading.Lock()  # one call at a time owns the queue and its callback
        self.name = onnx.name
        self.signature = signature(onnx.name, "openvino", "bf16")

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self._run(texts, tokens=False)[0]

    def embed_with_tokens(self, texts: list[str]) -> tuple[list[list[float]], list[Tokens]]:
        """``embed``'s vectors and each text's ``Tokens`` (``token_rows``), one pass."""
        return self._run(texts, tokens=True)

    def _run(self, texts: list[str], *, tokens: bool) -> tuple[list[list[float]], list[Tokens]]:
        if not texts:
            return [], []
        parts: list[tuple[list[int], np.ndarray]] = []
        kept: list[Tokens] = [EMPTY_TOKENS] * len(texts)
        errors: list[Exception] = []

        def done(request, job: tuple[list[int], np.ndarray, np.ndarray]) -> None:
            # on an OpenVINO thread, as each batch finishes (appending to a list is atomic);
            # an exception must not escape into that thread (the process aborts at exit):
            # it is raised again below, in the caller's
            try:
                rows, ids, mask = job
                hidden = np.array(request.get_output_tensor(0).data, dtype=np.float32)
                if tokens:
                    for row, t in zip(rows, token_rows(hidden, mask, ids), strict=True):
                        kept[row] = t
                parts.append((rows, mean_pool_normalize(hidden, mask)))
            except Exception as exc:
                errors.append(exc)

        with self._lock:
            self._queue.set_callback(done)
            sent = 0
            for rows, ids, mask in self._onnx.batches(texts, BATCH):
                self._queue.start_async(model_feeds(ids, mask, self._inputs), (rows, ids, mask))
                sent += 1
            self._queue.wait_all()
        if errors:
            raise errors[0]
        if len(parts) != sent:  # never a vector left unset
            raise RuntimeError(f"OpenVINO returned {len(parts)} of {sent} batches")
        return in_text_order(parts, len(texts)), kept
