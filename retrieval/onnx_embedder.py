"""The same sentence-transformers model, run by onnxruntime: about 3x the torch path on a CPU.

The ONNX file is exported once from the packaged weights (``torch.onnx``, offline, nothing
downloaded), optionally quantized to int8 (onnxruntime's dynamic quantization: int8
weights, activations quantized per batch), checked against the torch model on probe
sentences, and cached under ``cache_dir`` with a sidecar holding its sha256. A cached file
that fails the hash or fails to load is exported again, never used.

What makes it fast, beside the runtime's fused kernels: texts are tokenized once, sorted by
token count and batched so that a batch pads to its own longest text, not to the longest
text of the call; the pooling (mean over real tokens) and the normalisation are numpy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Container, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.embedder_check import PROBES, signature
from retrieval.errors import EmbedderError
from retrieval.files import sha256_file
from retrieval.types import Tokens

log = logging.getLogger(__name__)

# Bump when the export or quantization recipe changes: old cached files are then re-made.
EXPORT_VERSION = 2
OPSET = 17
# an export whose vectors stray further from torch's on a probe is refused. int8 moves
# vectors more (a one-letter text is the worst case, about 0.98; see BENCHMARKS.md)
MIN_PROBE_COSINE = {"fp32": 0.999, "int8": 0.97}
# what a text's Tokens are before its batch has run (every one is set by the end of a call)
EMPTY_TOKENS = Tokens(np.empty((0, 0), np.float32), None)
INSTALL_HINT = (
    "pip install -r requirements.txt (it pins onnxruntime and onnx), or set RAG_EMBED_BACKEND=torch"
)


def _weights_file(model_dir: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_dir / name).is_file():
            return model_dir / name
    raise EmbedderError(f"No model weights (model.safetensors) in {model_dir}")


def _model_dir(model: str) -> Path:
    """The folder of a sentence-transformers model: the packaged default or a local path."""
    from retrieval.embedder import resolve_model_path

    try:
        path = Path(resolve_model_path(model))
    except Exception as exc:  # the app's ConfigError today; the message says what to install
        raise EmbedderError(str(exc)) from exc
    if not (path / "config.json").is_file():
        raise EmbedderError(
            f"The onnx embedding backend exports from local weights, and {model!r} is not a "
            f"model folder. Use a local path to a sentence-transformers model, or "
            f"RAG_EMBED_BACKEND=torch."
        )
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _check_pooling(model_dir: Path) -> None:
    """This backend does mean pooling and normalisation itself: refuse other recipes."""
    modules = _read_json(model_dir / "modules.json")
    kinds = [m.get("type", "") for m in modules] if isinstance(modules, list) else []
    pooling = next((m for m in modules if m.get("type", "").endswith("Pooling")), None)
    config = _read_json(model_dir / pooling["path"] / "config.json") if pooling else {}
    if not config.get("pooling_mode_mean_tokens") or any(
        config.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens")
    ):
        raise EmbedderError(
            f"The onnx embedding backend supports mean-pooling models; {model_dir} uses "
            f"another pooling ({kinds}). Set RAG_EMBED_BACKEND=torch."
        )


def mean_pool_normalize(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over real tokens (sentence-transformers' ``Pooling`` mean mode), then unit
    length (its ``Normalize``), so cosine similarity is a dot product."""
    m = mask[..., None].astype(np.float32)
    summed = (hidden * m).sum(axis=1)
    pooled = summed / np.clip(m.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled / np.clip(norms, 1e-12, None)


def word_piece_span(n: int) -> slice:
    """Of a text's ``n`` real tokens, its word pieces: [CLS] and [SEP] (the first and the
    last) left out, unless there is nothing else."""
    return slice(1, n - 1) if n > 2 else slice(0, n)


def token_rows(hidden: np.ndarray, mask: np.ndarray, ids: np.ndarray) -> list[Tokens]:
    """Each row's word-piece vectors without [CLS] and [SEP] (the first and the last real
    token), unit length, with those word pieces' ids from the same batch: one ``Tokens``
    per text of the batch, aligned by construction."""
    out = []
    for r in range(hidden.shape[0]):
        keep = word_piece_span(int(mask[r].sum()))
        v = hidden[r, keep]
        norms = np.clip(np.linalg.norm(v, axis=1, keepdims=True), 1e-12, None)
        out.append(Tokens((v / norms).astype(np.float32), ids[r, keep].astype(np.int32)))
    return out


def model_feeds(ids: np.ndarray, mask: np.ndarray, accepted: Container[str]) -> dict:
    """A batch's inputs to the exported model (token ids, attention mask, token types all
    0), those of them the loaded model takes: an export may drop an input it does not use."""
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    return {name: value for name, value in feeds.items() if name in accepted}


def in_text_order(parts: Iterable[tuple[list[int], np.ndarray]], texts: int) -> list[list[float]]:
    """A call's vectors, from its batches' (rows of the call's texts, their vectors) in any
    order, put back in the order of its texts; ``texts``: how many it had."""
    out: np.ndarray | None = None
    for rows, vectors in parts:
        if out is None:
            out = np.empty((texts, vectors.shape[1]), dtype=np.float32)
        out[rows] = vectors
    return [] if out is None else out.tolist()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class OnnxEmbedder:
    """``Embedder`` over onnxruntime; vectors are unit length (cosine = dot).

    ``quantize``: int8 weights (smaller, faster, vectors move slightly: a different
    ``signature``); ``threads``: onnxruntime's intra-op threads, default the cores this
    process may use; ``batch_size``: texts per run, after sorting by length.
    """

    def __init__(
        self,
        model: str,
        cache_dir: Path,
        *,
        quantize: bool = False,
        threads: int | None = None,
        batch_size: int = 32,
    ) -> None:
        try:
            import onnxruntime  # noqa: F401
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EmbedderError(
                f"The onnx embedding backend needs onnxruntime: {INSTALL_HINT} ({exc})"
            ) from exc
        self.name = model
        self.precision = "int8" if quantize else "fp32"
        self.signature = signature(model, "onnx", self.precision)
        self.batch_size = batch_size
        self.threads = threads or (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        )
        self._model_dir = _model_dir(model)
        _check_pooling(self._model_dir)
        st_config = _read_json(self._model_dir / "sentence_bert_config.json")
        self.max_tokens = int(st_config.get("max_seq_length", 256))
        self._tokenizer = Tokenizer.from_file(str(self._model_dir / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.max_tokens)
        self.cache_dir = Path(cache_dir)
        self.path = self._cached_model()
        self._session = self._open(self.path)
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dimension = int(self.embed(["dimension probe"])[0].__len__())

    # ---- the cached export ---------------------------------------------------------------
    def _cache_key(self) -> str:
        import onnxruntime

        weights = _weights_file(self._model_dir)
        h = hashlib.sha256()
        for part in (self.name, sha256_file(weights), self.precision, str(EXPORT_VERSION)):
            h.update(part.encode())
            h.update(b"\x00")
        # quantized kernels and the quantizer's output may change with the runtime
        h.update(onnxruntime.__version__.encode())
        return h.hexdigest()[:16]

    def _cached_model(self) -> Path:
        """The checked ONNX file for this model and precision, exported when missing or bad."""
        from filelock import FileLock

        slug = self.name.rstrip("/").split("/")[-1]
        folder = self.cache_dir / f"{slug}-{self.precision}-{self._cache_key()}"
        path, sidecar = folder / "model.onnx", folder / "model.onnx.json"
        folder.mkdir(parents=True, exist_ok=True)
        # one exporter at a time: a second process waits, then finds the file made
        with FileLock(str(folder / "export.lock"), timeout=600):
            if self._cache_ok(path, sidecar):
                return path
            log.info("Exporting %s to ONNX (%s) under %s", self.name, self.precision, folder)
            sidecar.unlink(missing_ok=True)  # no sidecar = not trusted, even if we die here
            self._export(path)
            meta = {
                "sha256": sha256_file(path),
                "model": self.name,
                "precision": self.precision,
                "export_version": EXPORT_VERSION,
            }
            _write_atomic(sidecar, json.dumps(meta, indent=1))
        return path

    def _cache_ok(self, path: Path, sidecar: Path) -> bool:
        meta = _read_json(sidecar)
        if not path.is_file() or not meta:
            return False
        if meta.get("sha256") != sha256_file(path):
            log.warning("Cached ONNX model %s fails its sha256 check; exporting again", path)
            return False
        try:
            self._open(path)
        except Exception as exc:  # onnxruntime raises its own types for a damaged file
            log.warning("Cached ONNX model %s does not load (%s); exporting again", path, exc)
            return False
        return True

    def _open(self, path: Path) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: no warnings about unused initializers
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _export(self, path: Path) -> None:
        """Export the packaged weights with torch.onnx, quantize, and check the result
        against the torch model on probe sentences before it is trusted."""
        import torch
        from transformers import AutoModel

        folder = path.parent
        tmp = folder / f".export-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            model = AutoModel.from_pretrained(str(self._model_dir), attn_implementation="eager")
            model.eval()

            class Hidden(torch.nn.Module):
                def __init__(self, inner: torch.nn.Module) -> None:
                    super().__init__()
                    self.inner = inner

                def forward(self, input_ids, attention_mask, token_type_ids):
                    # An additive 4D mask, made here from tensor ops: transformers passes a
                    # prepared 4D mask through as it is, where its own 2D-mask logic does
                    # Python arithmetic on shapes that tracing would freeze into constants.
                    keep = attention_mask[:, None, None, :].to(torch.float32)
                    additive = (1.0 - keep) * torch.finfo(torch.float32).min
                    out = self.inner(
                        input_ids=input_ids,
                        attention_mask=additive,
                        token_type_ids=token_type_ids,
                    )
                    return out.last_hidden_state

            ids, mask = self._tokenize(list(PROBES[:2]))
            feeds = (
                torch.from_numpy(ids),
                torch.from_numpy(mask),
                torch.zeros_like(torch.from_numpy(ids)),
            )
            fp32 = tmp / "model.fp32.onnx"
            # eval() on the wrapper too: export restores the wrapper's training flag on every
            # submodule afterwards, and a new Module is in training mode (dropout on)
            wrapper = Hidden(model).eval()
            with torch.no_grad():
                torch.onnx.export(
                    wrapper,
                    feeds,
                    str(fp32),
                    input_names=["input_ids", "attention_mask", "token_type_ids"],
                    output_names=["last_hidden_state"],
                    dynamic_axes={
                        "input_ids": {0: "batch", 1: "tokens"},
                        "attention_mask": {0: "batch", 1: "tokens"},
                        "token_type_ids": {0: "batch", 1: "tokens"},
                        "last_hidden_state": {0: "batch", 1: "tokens"},
                    },
                    opset_version=OPSET,
                    dynamo=False,
                )
            made = fp32
            if self.precision == "int8":
                made = tmp / "model.int8.onnx"
                _quantize(fp32, made)
            self._check_against_torch(made, model.eval())
            os.replace(made, path)
        finally:
            for f in tmp.iterdir():
                f.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                tmp.rmdir()

    def _check_against_torch(self, path: Path, model: Any) -> None:
        import torch

        session = self._open(path)
        ids, mask = self._tokenize(list(PROBES))
        got = self._run(session, ids, mask)
        with torch.no_grad():
            hidden = model(
                input_ids=torch.from_numpy(ids),
                attention_mask=torch.from_numpy(mask),
                token_type_ids=torch.zeros_like(torch.from_numpy(ids)),
            ).last_hidden_state.numpy()
        want = mean_pool_normalize(hidden, mask)
        worst = float((got * want).sum(axis=1).min())
        if worst < MIN_PROBE_COSINE[self.precision]:
            raise EmbedderError(
                f"The ONNX export of {self.name} ({self.precision}) disagrees with the torch "
                f"model (cosine {worst:.4f} < {MIN_PROBE_COSINE[self.precision]}); set RAG_EMBED_BACKEND=torch."
            )

    # ---- embedding -----------------------------------------------------------------------
    def _tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask, padded to the longest of ``texts``."""
        encodings = self._tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        return ids, mask

    def _run(self, session: Any, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        names = {i.name for i in session.get_inputs()}
        hidden = session.run(None, model_feeds(ids, mask, names))[0]
        return mean_pool_normalize(hidden, mask)

    def batches(
        self, texts: list[str], size: int | None = None
    ) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
        """``texts`` tokenized, sorted by length and cut into batches of ``size`` (default
        ``batch_size``) that each pad only to their own longest text: (rows of ``texts``,
        token ids, attention mask) per batch."""
        size = size or self.batch_size
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), size):
            rows = order[start : start + size]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            yield rows, ids, mask

    gives_tokens = True  # embed_with_tokens and tokens (late interaction)

    def tokens(self, texts: Sequence[str]) -> list[Tokens]:
        """Each text's contextual token vectors and word-piece ids (``token_rows``): what
        late interaction compares and weighs (``retrieval.late_interaction``)."""
        return self.embed_with_tokens(list(texts))[1]

    def embed_with_tokens(self, texts: list[str]) -> tuple[list[list[float]], list[Tokens]]:
        """``embed``'s vectors and each text's ``Tokens``, from the same pass."""
        return self._embed(texts, tokens=True)

    def pieces(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Each text's word-piece ids as ``tokens`` gives them, from the tokenizer alone
        (the benches count a corpus's pieces without embedding it)."""
        return [
            np.asarray(e.ids[word_piece_span(len(e.ids))], dtype=np.int32)
            for e in self._tokenizer.encode_batch(list(texts))
        ]

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts, tokens=False)[0]

    def _embed(self, texts: list[str], *, tokens: bool) -> tuple[list[list[float]], list[Tokens]]:
        parts: list[tuple[list[int], np.ndarray]] = []
        kept: list[Tokens] = [EMPTY_TOKENS] * len(texts)
        for rows, ids, mask in self.batches(texts):
            hidden = self._session.run(None, model_feeds(ids, mask, self._inputs))[0]
            parts.append((rows, mean_pool_normalize(hidden, mask)))
            if tokens:
                for row, t in zip(rows, token_rows(hidden, mask, ids), strict=True):
                    kept[row] = t
        return in_text_order(parts, len(texts)), kept


def _quantize(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization of the weights of MatMul/Gemm (onnxruntime's recipe for
    transformer encoders on CPU: activations are quantized per batch at run time)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise EmbedderError(f"int8 quantization needs the onnx package: {INSTALL_HINT}") from exc
    quantize_dynamic(
        str(src),
        str(dst),
        weight_type=QuantType.QInt8,
        per_channel=True,
        # 7-bit weights: without VNNI (AVX2-only CPUs) the 8-bit products saturate, and the
        # export missed the probe check (cosine 0.961 < 0.97 on an AVX2 EPYC); onnxruntime's
        # documented remedy, harmless where VNNI is there
        reduce_range=True,
        op_types_to_quantize=["MatMul", "Gemm"],
    )
