"""One writer at a time across hosts that share a Chroma server.

The writer lock (``writer_lock``) is a file lock: it excludes processes on one host only.
Writers on two hosts meet in the Chroma server instead, through a lease: the collection
``BASE-lease``. Creating a collection whose name exists fails in the server, atomically,
so whoever creates it holds the lease. Its metadata names the holder and an expiry
(wall-clock seconds) that the holder pushes forward every ``ttl / 3`` seconds while it
works. A writer that finds the lease held waits (polling), up to its timeout, then is
refused with the holder's name; a lease whose holder died (no renewal for ``ttl``
seconds) is taken over. Hosts' clocks must agree to well within ``ttl``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from retrieval.errors import StoreError
from retrieval.store_state import is_not_found, lease_name

log = logging.getLogger(__name__)

DEFAULT_TTL = 30.0
_POLL = 0.2
_SETTLE = 0.5  # after taking over a dead holder's lease: re-check that we alone did


def _holder(ttl: float) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300],
        "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "expires": time.time() + ttl,
    }


def describe(meta: dict[str, Any] | None) -> str:
    meta = meta or {}
    if "pid" not in meta:
        return "another writer"
    return f"pid {meta['pid']} on {meta.get('host')} running `{meta.get('command')}` since {meta.get('since')}"


class ChromaLease:
    """The writer lease of one store in one Chroma server (see the module's docstring)."""

    def __init__(self, client: Any, base: str, where: str, ttl: float = DEFAULT_TTL) -> None:
        self.client, self.name, self.where, self.ttl = client, lease_name(base), where, ttl

    def _get(self) -> Any | None:
        try:
            return self.client.get_collection(self.name, embedding_function=None)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise

    def _acquire(self, timeout: float) -> tuple[Any, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        took_over = False
        while True:
            meta = _holder(self.ttl)
            try:
                mine = self.client.create_collection(
                    self.name, metadata=meta, embedding_function=None
                )
            except Exception as exc:
                if "already exists" not in str(exc):
                    raise
            else:
                if not took_over:
                    return mine, meta
                # two writers may both have seen the same dead lease and removed it: the
                # one whose lease is still there after a moment goes on, the other waits
                time.sleep(_SETTLE)
                current = self._get()
                if current is not None and current.id == mine.id:
                    return mine, meta
                took_over = False
                continue
            current = self._get()
            if current is None:
                continue  # released just now
            held = current.metadata or {}
            if float(held.get("expires", 0)) < time.time():
                log.warning("Taking over the writer lease of %s: it expired", describe(held))
                with contextlib.suppress(Exception):
                    self.client.delete_collection(self.name)
                took_over = True
                continue
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"Another writer is using the Chroma server at {self.where}: "
                    f"{describe(held)}. Waited {timeout:g} s; wait for it to finish and try again."
                )
            time.sleep(_POLL)

    @contextlib.contextmanager
    def held(self, timeout: float) -> Iterator[None]:
        mine, meta = self._acquire(timeout)
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.ttl / 3):
                try:
                    mine.modify(metadata={**meta, "expires": time.time() + self.ttl})
                except Exception as exc:  # the server is gone or the lease was taken over
                    log.error("Could not renew the writer lease at %s: %s", self.where, exc)

        renewer = threading.Thread(target=renew, name="chroma-lease", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            current = self._get()
            if current is not None and current.id == mine.id:
                with contextlib.suppress(Exception):
                    self.client.delete_collection(self.name)
