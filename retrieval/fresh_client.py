"""Fresh reads across processes for the embedded Chroma store.

An embedded ``PersistentClient`` keeps its vector index in memory and does not see another
process's writes. Writers stamp a new generation (a file under the data dir) after each
write; a reader that sees a new stamp re-opens its client. One client per directory and
process, shared by every store object that opens that directory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

GENERATION = "chroma.generation"


class SharedClient:
    """The process's ``PersistentClient`` for one directory, re-opened when another process
    has written (a new generation stamp). The old client is not stopped: a query running on
    it in another thread finishes; it is freed when no collection refers to it any more."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.client: Any = None
        self.generation: str | None = None
        self.epoch = 0

    def get(self, stamp: Callable[[], str | None]) -> tuple[Any, int]:
        """The client and its epoch, re-opened first when ``stamp()`` (the generation on disk,
        read under the lock ``wrote`` writes under) is not the one it was opened at."""
        with self.lock:
            generation = stamp()
            if self.client is None or generation != self.generation:
                import chromadb
                from chromadb.api.shared_system_client import SharedSystemClient
                from chromadb.config import Settings as ChromaSettings

                if self.client is not None:
                    # chromadb caches one system per path; drop ours so the next client
                    # reads the files afresh
                    ident = getattr(self.client, "_identifier", str(self.path))
                    SharedSystemClient._identifier_to_system.pop(ident, None)
                    SharedSystemClient._identifier_to_refcount.pop(ident, None)
                self.path.mkdir(parents=True, exist_ok=True)
                self.client = chromadb.PersistentClient(
                    path=str(self.path), settings=ChromaSettings(anonymized_telemetry=False)
                )
                self.generation = generation
                self.epoch += 1
            return self.client, self.epoch

    def wrote(self, stamp: Callable[[str], None], generation: str) -> None:
        """This process wrote: ``stamp(generation)`` puts the new generation where other
        processes read it, and this process's client is marked current, both under the lock
        ``get`` reads under, so no search in between takes our own stamp for another
        process's write."""
        with self.lock:
            stamp(generation)
            self.generation = generation

    def invalidate(self) -> None:
        """The collection was re-created: every store re-fetches it."""
        with self.lock:
            self.epoch += 1


_SHARED: dict[str, SharedClient] = {}
_SHARED_LOCK = threading.Lock()


def shared_client(path: Path) -> SharedClient:
    key = str(path.resolve())
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = SharedClient(path)
        return _SHARED[key]
