"""One writer at a time across processes (CLI, admin page, recovery at start)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from retrieval.errors import StoreError
from retrieval.files import write_atomic

LOCK_FILE = "ingest.lock"


def lock_file(data_dir: Path) -> Path:
    return Path(data_dir) / LOCK_FILE


def holder_file(data_dir: Path) -> Path:
    """The sidecar naming the lock's holder, so a second writer can say who it waited for."""
    return lock_file(data_dir).with_name(LOCK_FILE + ".holder")


def _describe_holder(data_dir: Path) -> str:
    try:
        h = json.loads(holder_file(data_dir).read_text(encoding="utf-8"))
        return f"pid {h['pid']} on {h['host']} running `{h['command']}` since {h['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def writer_lock(data_dir: Path, timeout: float = 30.0) -> Iterator[None]:
    """Hold the writer lock of ``data_dir``.

    Waits up to ``timeout`` seconds, then raises ``StoreError`` naming the holder. The lock
    is an OS file lock: it is released when its process dies, even by ``kill -9``.
    """
    from filelock import FileLock, Timeout

    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_file(data_dir)), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise StoreError(
            f"Another writer is using {data_dir}: {_describe_holder(data_dir)}. "
            f"Waited {timeout:g} s; wait for it to finish and try again."
        ) from None
    try:
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300],
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_atomic(holder_file(data_dir), json.dumps(holder), durable=False)
        yield
    finally:
        with contextlib.suppress(OSError):
            holder_file(data_dir).unlink()
        lock.release()


def is_held(data_dir: Path) -> bool:
    """Whether a process (this one included) holds the writer lock of ``data_dir`` now. Tried
    without waiting and let go at once: a writer that asks meanwhile waits one poll."""
    from filelock import FileLock, Timeout

    path = lock_file(data_dir)
    if not path.exists():
        return False
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:  # a read-only data dir: no writer can work in it either
        return False
    lock.release()
    return False
