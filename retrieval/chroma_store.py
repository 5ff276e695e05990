"""The Chroma store: the source of truth for chunks, their metadata and their embeddings.

Embedded (``PersistentClient`` under the data dir) by default; a Chroma server
(``HttpClient``) when ``chroma_host`` is set, through the same code.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from app.errors import StoreError
from app.settings import Settings
from retrieval.types import Chunk, Embedder, Hit

_BATCH = 1000


def _chroma_embedding_function(embedder: Embedder) -> Any:
    """Wrap our embedder for Chroma, so Chroma never reaches for its own default model
    (which downloads weights at run time and fails offline)."""
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class OurEmbeddingFunction(EmbeddingFunction[Documents]):
        def __init__(self) -> None:
            self._embedder = embedder

        def __call__(self, input: Documents) -> Embeddings:
            return self._embedder.embed(list(input))

        @staticmethod
        def name() -> str:
            return "handbook_rag"

        def get_config(self) -> dict[str, Any]:
            return {"model": embedder.name}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> OurEmbeddingFunction:
            raise StoreError("this collection's embeddings are made by Handbook RAG's embedder")

        def default_space(self) -> str:
            return "cosine"

    return OurEmbeddingFunction()


@dataclass(frozen=True)
class DocumentInfo:
    source: str
    doc_id: str
    chunks: int
    pages: int


class ChromaStore:
    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        try:
            if settings.chroma_host:
                client = chromadb.HttpClient(
                    host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
                )
            else:
                settings.chroma_dir.mkdir(parents=True, exist_ok=True)
                client = chromadb.PersistentClient(
                    path=str(settings.chroma_dir), settings=chroma_settings
                )
            self._collection = client.get_or_create_collection(
                settings.collection,
                embedding_function=_chroma_embedding_function(embedder),
                configuration={"hnsw": {"space": "cosine"}},
            )
        except Exception as exc:  # chromadb raises many types; all mean the same to a user
            where = (
                f"{settings.chroma_host}:{settings.chroma_port}"
                if settings.chroma_host
                else settings.chroma_dir
            )
            raise StoreError(f"Could not open the Chroma store at {where}: {exc}") from exc
        self.embedder = embedder

    # ---- writing -------------------------------------------------------------------------
    def add(self, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> None:
        for i in range(0, len(chunks), _BATCH):
            part = chunks[i : i + _BATCH]
            self._collection.upsert(
                ids=[c.id for c in part],
                documents=[c.text for c in part],
                metadatas=[c.metadata() for c in part],
                embeddings=[list(e) for e in embeddings[i : i + _BATCH]],
            )

    def delete_source(self, source: str) -> int:
        ids = self._collection.get(where={"source": source}, include=[])["ids"]
        for i in range(0, len(ids), _BATCH):
            self._collection.delete(ids=ids[i : i + _BATCH])
        return len(ids)

    # ---- reading -------------------------------------------------------------------------
    def count(self) -> int:
        return self._collection.count()

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), _BATCH):
            found.update(self._collection.get(ids=list(ids[i : i + _BATCH]), include=[])["ids"])
        return found

    def doc_ids_of(self, source: str) -> set[str]:
        got = self._collection.get(where={"source": source}, include=["metadatas"])
        return {m["doc_id"] for m in got["metadatas"] if m}

    def iter_chunks(self) -> Iterator[tuple[str, str, str, int | None]]:
        """Every stored chunk as (id, text, source, page), in batches."""
        offset = 0
        while True:
            got = self._collection.get(
                include=["documents", "metadatas"], limit=_BATCH, offset=offset
            )
            if not got["ids"]:
                return
            for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=False):
                yield cid, text, meta["source"], meta.get("page")
            offset += len(got["ids"])

    def all_ids(self) -> list[str]:
        ids: list[str] = []
        offset = 0
        while True:
            got = self._collection.get(include=[], limit=_BATCH * 10, offset=offset)["ids"]
            if not got:
                return ids
            ids.extend(got)
            offset += len(got)

    def documents(self) -> list[DocumentInfo]:
        """What is indexed, one row per file."""
        per_source: dict[str, tuple[str, int, set[int]]] = {}
        for offset in range(0, self.count(), _BATCH):
            got = self._collection.get(include=["metadatas"], limit=_BATCH, offset=offset)
            for meta in got["metadatas"]:
                doc_id, n, pages = per_source.get(meta["source"], (meta["doc_id"], 0, set()))
                if meta.get("page") is not None:
                    pages.add(meta["page"])
                per_source[meta["source"]] = (doc_id, n + 1, pages)
        return [
            DocumentInfo(source=s, doc_id=d, chunks=n, pages=len(p))
            for s, (d, n, p) in sorted(per_source.items())
        ]

    def query(self, vector: Sequence[float], k: int) -> list[Hit]:
        """Nearest chunks by cosine similarity, best first."""
        n = min(k, self.count())
        if n <= 0:
            return []
        got = self._collection.query(
            query_embeddings=[list(vector)],
            n_results=n,
            include=["documents", "metadatas", "distances"],
        )
        hits = []
        for cid, text, meta, dist in zip(
            got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0], strict=False
        ):
            sim = 1.0 - float(dist)  # Chroma's cosine distance is 1 - cosine similarity
            hits.append(Hit(cid, text, meta["source"], meta.get("page"), score=sim, similarity=sim))
        return hits

    def embeddings(self, ids: Sequence[str]) -> dict[str, list[float]]:
        if not ids:
            return {}
        got = self._collection.get(ids=list(ids), include=["embeddings"])
        return {cid: list(vec) for cid, vec in zip(got["ids"], got["embeddings"], strict=False)}
