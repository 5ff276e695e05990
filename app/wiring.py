"""The one place where settings become the lower packages' plain values.

``retrieval``, ``ingest`` and ``llm`` never read settings: each takes a small frozen config
or keyword arguments. Everything that starts them (the services behind the UI, the CLIs,
the evaluation) calls these functions, so a setting is mapped in one place.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from app.errors import ConfigError
from app.settings import Settings
from ingest.config import IngestConfig
from llm.base import LLM
from retrieval import Index, RetrievalConfig
from retrieval.types import Embedder

_MODEL_HINT = {
    "local": "a Hugging Face name (e.g. Qwen/Qwen2.5-1.5B-Instruct), a local folder, or "
    "DIR::FILE.gguf",
    "openai": "the model the server serves (e.g. gpt-4o-mini, or the name given to "
    "`vllm serve` / `ollama pull`)",
}


def retrieval_config(settings: Settings) -> RetrievalConfig:
    return RetrievalConfig(
        data_dir=settings.data_dir,
        collection=settings.collection,
        chroma_host=settings.chroma_host,
        chroma_port=settings.chroma_port,
        embedding_model=settings.embedding_model,
        embedding_backend=settings.embed_backend,
        embedding_int8=settings.embed_int8,
        embedding_bulk_bf16=settings.embed_bulk_bf16,
        embedding_cache=settings.models_dir / "embeddings",
        mode=settings.retrieval_mode,
        candidates=settings.candidates,
        rrf_k=settings.rrf_k,
        fusion=settings.fusion,
        dense_weight=settings.dense_weight,
        relevance_floor=settings.relevance_floor,
        rerank_depth=settings.rerank_depth,
        rerank_page_weight=settings.rerank_page_weight,
    )


def ingest_config(settings: Settings) -> IngestConfig:
    return IngestConfig(
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        max_file_mb=settings.max_file_mb,
        file_timeout_s=settings.file_timeout_s,
        embed_batch=settings.ingest_batch_chunks,
    )


def open_index(
    settings: Settings, embedder: Embedder | None = None, *, check_embedder: bool = True
) -> Index:
    """The stores under ``settings.data_dir`` (pass ``embedder`` to share a loaded model;
    ``check_embedder=False`` only to re-embed a store another embedder made)."""
    from retrieval import open_index as open_retrieval_index

    return open_retrieval_index(
        retrieval_config(settings), embedder=embedder, check_embedder=check_embedder
    )


def _required_model(settings: Settings) -> str:
    if not settings.llm_model:
        raise ConfigError(
            f"The {settings.llm_backend} backend needs a model: set RAG_LLM_MODEL to "
            f"{_MODEL_HINT[settings.llm_backend]}."
        )
    return settings.llm_model


def make_llm(settings: Settings) -> LLM:
    """The backend ``settings.llm_backend`` names, each imported only when chosen. Backends
    that answer one question at a time (embedded, local) sit behind a first-come-first-served
    queue; an OpenAI-compatible server serves many at once. Every answer is bounded by
    ``answer_timeout_s``."""
    from llm.queue import AnswerQueue, QueuedLLM

    one_at_a_time = settings.llm_backend in ("embedded", "local")
    return QueuedLLM(
        _backend(settings),
        queue=AnswerQueue() if one_at_a_time else None,
        answer_timeout_s=settings.answer_timeout_s,
    )


def _backend(settings: Settings) -> LLM:
    match settings.llm_backend:
        case "embedded":
            from llm.embedded import EmbeddedLLM

            return EmbeddedLLM(
                settings.models_dir,
                context_tokens=settings.llm_context_window,
                max_new_tokens=settings.max_new_tokens,
                temperature=settings.temperature,
                threads=settings.threads,
            )
        case "local":
            from llm.local import LocalLLM, split_gguf

            model, gguf_file = split_gguf(_required_model(settings))
            return LocalLLM(
                model,
                gguf_file=gguf_file,
                max_memory=settings.llm_max_memory,
                max_new_tokens=settings.max_new_tokens,
                temperature=settings.temperature,
                offload_dir=settings.models_dir / "offload",
            )
        case "openai":
            from llm.openai_backend import KEY_HINT, OpenAILLM

            model = _required_model(settings)
            api_key = settings.api_key()
            if not api_key and urlsplit(settings.llm_base_url).hostname == "api.openai.com":
                raise ConfigError(f"The OpenAI API needs a key: {KEY_HINT}.")
            return OpenAILLM(
                model,
                base_url=settings.llm_base_url,
                api_key=api_key,
                timeout=settings.llm_timeout,
                retries=settings.llm_retries,
                max_new_tokens=settings.max_new_tokens,
                temperature=settings.temperature,
            )
