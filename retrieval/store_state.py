"""What every process using one store must agree on, kept where all of them can read it.

- ``active``: the name of the collection that holds the chunks now. A rebuild fills a new
  collection (``BASE-gN``) beside the serving one, then switches this pointer to it, so a
  search never meets a dropped or half-filled collection.
- ``generation``: a counter a writer bumps when it has finished changing the chunks. A
  replica on another host, whose BM25 index lives in its own data dir, rebuilds BM25 when
  it sees the counter move.

Embedded store: a small file under the data dir (every process on the host sees it).
Chroma server: the metadata of a small collection in that server (every host sees it),
never a local file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Protocol

from retrieval.files import read_or_none, write_atomic

STATE_FILE = "chroma.state.json"


def meta_name(base: str) -> str:
    return f"{base}-meta"


def lease_name(base: str) -> str:
    return f"{base}-lease"


def generation_name(base: str, n: int) -> str:
    return f"{base}-g{n}"


def next_collection(base: str, active: str) -> str:
    """The name the next rebuild fills: ``BASE-g(N+1)`` after ``BASE-gN`` (``BASE-g1`` after
    the original ``BASE``)."""
    m = re.fullmatch(re.escape(base) + r"-g(\d+)", active)
    return generation_name(base, int(m.group(1)) + 1 if m else 1)


def is_chunk_collection(base: str, name: str) -> bool:
    """A collection that holds (or held) this store's chunks: ``BASE`` or ``BASE-gN``."""
    return name == base or re.fullmatch(re.escape(base) + r"-g\d+", name) is not None


def is_not_found(exc: BaseException) -> bool:
    """Chroma's "collection does not exist" (its exception types differ by client)."""
    return type(exc).__name__ == "NotFoundError" or "does not exist" in str(exc)


def is_dropped(exc: BaseException) -> bool:
    """A read met a collection that is gone or going: "does not exist", or the error
    Chroma 1.x raises when another process deletes the collection during the read (its
    metadata segment is already gone)."""
    return is_not_found(exc) or "Missing metadata segment" in str(exc)


class StoreState(Protocol):
    def read(self) -> dict[str, Any]:
        """``{"active": str, "generation": int}``, with defaults filled in."""
        ...

    def write(self, **values: Any) -> None: ...


class FileState:
    """The embedded store's state: one JSON file, replaced atomically."""

    def __init__(self, data_dir: Path, base: str) -> None:
        self.path = Path(data_dir) / STATE_FILE
        self.base = base

    def read(self) -> dict[str, Any]:
        text = read_or_none(self.path)
        try:
            found = json.loads(text) if text else {}
        except ValueError:
            found = {}
        return {"active": self.base, "generation": 0, **found}

    def write(self, **values: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps({**self.read(), **values}))


class ChromaState:
    """The server's state: the metadata of the collection ``BASE-meta`` in that server.
    Only the writer holding the lease changes it, so read-modify-write is safe."""

    def __init__(self, client: Any, base: str) -> None:
        self.client, self.base = client, base
        self.name = meta_name(base)

    def _collection(self) -> Any:
        try:
            return self.client.get_collection(self.name, embedding_function=None)
        except Exception as exc:
            if not is_not_found(exc):
                raise
        try:  # first use of this server: the chunks are in BASE
            return self.client.create_collection(
                self.name,
                metadata={"active": self.base, "generation": 0},
                embedding_function=None,
            )
        except Exception as exc:  # another replica created it first
            if "already exists" not in str(exc):
                raise
            return self.client.get_collection(self.name, embedding_function=None)

    def read(self) -> dict[str, Any]:
        return {"active": self.base, "generation": 0, **(self._collection().metadata or {})}

    def write(self, **values: Any) -> None:
        self._collection().modify(metadata={**self.read(), **values})
