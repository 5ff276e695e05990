"""What retrieval needs to know, as plain values. ``app`` maps its settings onto these; a
script or a test builds them directly (``RetrievalConfig(data_dir=Path("store"))``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RetrievalMode = Literal["hybrid", "dense", "bm25"]
RETRIEVAL_MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")
Fusion = Literal["convex", "rrf"]
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# hybrid: the fused top this many re-scored by late interaction (retrieval.late_interaction;
# chosen on the dev and policies sets by bench.retrieval_tuning --maxsim; BENCHMARKS.md, stop 24)
RERANK_DEPTH = 20
# ... each chunk's token comparison mixed with its page's by this share (0: the chunk alone;
# chosen on the dev and policies sets, SciFact unchanged; BENCHMARKS.md, stops 27 and 32)
RERANK_PAGE_WEIGHT = 0.25


@dataclass(frozen=True)
class RetrievalConfig:
    """Where the stores live and how a search runs.

    ``data_dir`` holds the embedded Chroma store, the BM25 index, the writer lock and the
    markers that keep processes in step; with ``chroma_host`` set, the chunks live in that
    Chroma server instead (the rest stays under ``data_dir``)."""

    data_dir: Path
    collection: str = "handbook"
    chroma_host: str | None = None
    chroma_port: int = 8000
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    embedding_backend: str = "torch"  # "torch" (the reference) or "onnx" (faster on a CPU)
    embedding_int8: bool = False  # onnx only: dynamic int8 quantization
    embedding_bulk_bf16: bool | None = None  # onnx fp32: long calls on OpenVINO bf16; None = auto
    embedding_cache: Path | None = (
        None  # onnx only: the exported model (default data_dir/models/embeddings)
    )
    mode: RetrievalMode = "hybrid"
    candidates: int = 20  # hits each side contributes before fusion
    rrf_k: int = 60  # reciprocal-rank-fusion constant (fusion "rrf")
    fusion: Fusion = "convex"  # how hybrid merges its two lists (retrieval.fusion)
    dense_weight: float = 0.5  # the dense side's share in fusion; 0.5 = both alike
    relevance_floor: float | None = 0.25  # minimum question-chunk cosine; None keeps all
    rerank_depth: int = RERANK_DEPTH  # hybrid: the fused top re-scored by late interaction
    rerank_page_weight: float = RERANK_PAGE_WEIGHT  # ... each chunk with its page this much

    def __post_init__(self) -> None:
        if self.mode not in RETRIEVAL_MODES:
            raise ValueError(
                f"unknown retrieval mode {self.mode!r}; choose one of: hybrid, dense, bm25"
            )
        if self.fusion not in ("convex", "rrf"):
            raise ValueError(f"unknown fusion {self.fusion!r}; choose one of: convex, rrf")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise ValueError(f"dense_weight must be within [0, 1], got {self.dense_weight}")

    # one place that knows the layout of the data dir
    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def bm25_dir(self) -> Path:
        return self.data_dir / "bm25"

    @property
    def lock_file(self) -> Path:
        return self.data_dir / "ingest.lock"
