"""Small files under the data dir, written so that a reader never sees half of one."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path


def write_atomic(path: Path, text: str, *, durable: bool = True) -> None:
    """Write ``text`` to a temporary sibling, then rename it over ``path`` (atomic on POSIX).
    ``durable`` also fsyncs, for files that must survive a power cut."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_or_none(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None
