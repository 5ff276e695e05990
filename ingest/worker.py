"""Run loaders in a child process with a time limit that a hang cannot escape.

One worker process is started on first use and reused for every file (starting Python and
importing pypdf costs a few hundred milliseconds; a round trip costs well under one).
When a file overruns its time limit the worker is killed (SIGKILL: a parser stuck in C code
cannot catch it) and a fresh one is started for the next file. A worker that dies on its own
(out of memory, a crash in a C extension) is reported the same way.

The child is a plain ``python -m ingest.worker FD`` rather than a multiprocessing child:
multiprocessing's spawn re-runs the parent's main script, which would re-run any caller's
unguarded top-level code. Messages are JSON over a socket pair (no pickle from a process
that parses untrusted files); a loader is named by ``module:qualname`` and imported there.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import time
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path

from ingest.errors import IngestError
from ingest.loaders import Loader, Page

# A ceiling on the child's address space, so a file that would eat all memory fails alone.
_MEMORY_LIMIT = 4 * 1024**3
_REPLY_BUFFER = 4 * 1024**2
_REPO_ROOT = Path(__file__).resolve().parent.parent


def _run_job(job: dict) -> dict:
    path = Path(job["path"])
    try:
        module, _, qualname = job["loader"].partition(":")
        loader = importlib.import_module(module)
        for part in qualname.split("."):
            loader = getattr(loader, part)
        pages = loader(path)
        return {"pages": [[p.text, p.number, p.created] for p in pages]}
    except IngestError as exc:
        return {"error": str(exc)}
    except OSError as exc:
        return {"error": f"{path.name}: cannot read the file ({exc.strerror or exc})"}
    except MemoryError:
        return {"error": f"{path.name}: needs more than {_MEMORY_LIMIT // 2**30} GB to read"}
    except Exception as exc:  # a parser's bug on a strange file: that file fails, not all
        return {"error": f"{path.name}: could not be read ({type(exc).__name__}: {exc})"}


def serve(fd: int) -> None:
    """The child's loop: one job in, one reply out, until the parent closes the socket."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_LIMIT, _MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):
        pass
    # a stray print from a parser must not reach anything but stderr
    os.dup2(2, 1)
    conn = Connection(fd)
    while True:
        try:
            job = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if "sys_path" in job:  # the parent's import path, so its loaders import here too
            sys.path[:] = list(dict.fromkeys([*sys.path, *job["sys_path"]]))
            continue
        conn.send_bytes(json.dumps(_run_job(job)).encode())


def loader_name(loader: Loader) -> str:
    return f"{loader.__module__}:{loader.__qualname__}"


class LoaderWorker:
    """``load(loader, path)`` in a reusable child process, at most ``timeout_s`` per file.
    ``submit`` queues files to read ahead: the child reads them one after the other and
    ``load`` collects each reply in that order."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        # (loader, path) of the jobs sent whose replies are not read, in the order sent
        self._pending: deque[tuple[str, str]] = deque()

    def _start(self) -> Connection:
        if self._proc is not None and self._proc.poll() is None and self._conn is not None:
            return self._conn
        self._kill()
        ours, theirs = socket.socketpair()
        # replies of files read ahead wait in the socket until collected: room for a few
        # (the kernel caps it, at about 400 KB by default; a child with no room just waits)
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _REPLY_BUFFER)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.worker", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            env=env,
        )
        theirs.close()
        self._conn = Connection(ours.detach())
        self._conn.send_bytes(json.dumps({"sys_path": [p for p in sys.path if p]}).encode())
        return self._conn

    def submit(self, loader: Loader, path: Path) -> None:
        """Queue ``path`` to be read in the child and return at once; ``load`` with the
        same arguments collects the pages. Ingest reads the next files this way while it
        chunks, embeds and writes the ones before. A file already queued is not sent again."""
        job = (loader_name(loader), str(path))
        if job in self._pending:
            return
        conn = self._start()
        try:
            conn.send_bytes(json.dumps({"loader": job[0], "path": job[1]}).encode())
        except OSError:
            self._kill()  # ``load`` starts a fresh child and sends it again
            return
        self._pending.append(job)

    def load(self, loader: Loader, path: Path) -> list[Page]:
        """The pages of ``path``, read in the child (collected, when ``submit`` queued it).
        Files queued before it that nobody collected are dropped, with the child reading
        them. The time limit runs from when this call starts waiting: a file read ahead had
        the time before it too."""
        started = time.monotonic()
        job = (loader_name(loader), str(path))
        if self._pending and self._pending[0] != job:
            self._kill()  # the replies before its own would have to be waited for
        self.submit(loader, path)
        conn = self._conn
        if self._pending:
            self._pending.popleft()
        try:
            if conn is None:
                raise OSError("the reader process could not be started")
            if not conn.poll(self.timeout_s):
                self._kill()
                raise IngestError(
                    f"{path.name}: took longer than {self.timeout_s:g} s to read and was "
                    f"stopped (setting file_timeout_s)"
                )
            reply = json.loads(conn.recv_bytes())
        except (EOFError, OSError, ValueError):
            code = self._proc.poll() if self._proc else None
            self._kill()
            raise IngestError(
                f"{path.name}: the reader process died after {time.monotonic() - started:.1f} s "
                f"(exit code {code}; out of memory?)"
            ) from None
        if "error" in reply:
            raise IngestError(reply["error"])
        return [Page(*page) for page in reply["pages"]]

    def _kill(self) -> None:
        self._pending.clear()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    def close(self) -> None:
        """Let the child finish (closing the socket ends its loop); kill it if it hangs,
        or at once when it is still reading a file nobody will collect."""
        if self._pending:
            self._kill()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            try:
                self._proc.wait(2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            self._proc = None


if __name__ == "__main__":
    serve(int(sys.argv[1]))
