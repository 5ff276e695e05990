"""Any Hugging Face causal LM, loaded with transformers + Accelerate as the founding article does.

``from_pretrained(name, device_map="auto", dtype=bfloat16 on GPU / float32 on CPU,
low_cpu_mem_usage=True, max_memory={0: "18GiB", 1: "10GiB", "cpu": "30GiB"})``: Accelerate
fills the devices in order up to each cap, so a model too big for one GPU is split over all
GPUs, then CPU memory, then disk, and the caps leave room on GPU 0 for generation (the
founding article's recipe, quoted in ARCHITECTURE.md). After loading, which layers went where is
logged and available from ``device_map_summary()``.

A GGUF file is accepted too (``gguf_file=``, or ``RAG_LLM_MODEL=DIR::FILE.gguf`` or a path
ending in ``.gguf``): transformers de-quantises it to ``dtype`` on load, so it costs full-size
memory. On a CPU the embedded backend (llama.cpp) runs the same file far faster.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from llm.errors import LLMError

log = logging.getLogger(__name__)

GGUF_SEPARATOR = "::"
_LAYER = re.compile(r"\.(\d+)$")  # "model.layers.17" -> 17


def split_gguf(model: str) -> tuple[str, str | None]:
    """``"DIR_OR_NAME::FILE.gguf"`` or ``"path/to/FILE.gguf"`` -> (dir or name, file name);
    anything else -> (model, None)."""
    if GGUF_SEPARATOR in model:
        where, _, file = model.partition(GGUF_SEPARATOR)
        return where, file
    if model.lower().endswith(".gguf"):
        path = Path(model)
        return str(path.parent), path.name
    return model, None


def parse_max_memory(max_memory: Mapping[str, str] | None) -> dict[int | str, str] | None:
    """Settings keys are strings (JSON); Accelerate wants GPU indices as ints: {"0": x} -> {0: x}."""
    if not max_memory:
        return None
    return {int(k) if str(k).isdigit() else k: v for k, v in max_memory.items()}


def summarise_device_map(device_map: Mapping[str, Any], num_layers: int | None = None) -> dict:
    """``hf_device_map`` (module name -> device) grouped by device, in the map's order:
    ``{"cuda:0": {"modules": 14, "first": "model.embed_tokens", "last": "model.layers.12",
    "layers": "0..12"}, "cpu": {...}}``. A map of ``{"": device}`` (the whole model on one
    device) counts every layer, given ``num_layers``."""
    summary: dict[str, dict[str, Any]] = {}
    for module, device in device_map.items():
        key = _device_name(device)
        entry = summary.setdefault(key, {"modules": 0, "first": module or "(whole model)"})
        entry["modules"] += 1
        entry["last"] = module or "(whole model)"
        layers = entry.setdefault("_layers", [])
        if (module == "" or module.endswith("layers")) and num_layers:  # all of them at once
            layers.extend(range(num_layers))
        elif match := _LAYER.search(module):
            layers.append(int(match.group(1)))
    for entry in summary.values():
        layers = entry.pop("_layers")
        entry["layers"] = f"{min(layers)}..{max(layers)}" if layers else None
    return summary


def _device_name(device: Any) -> str:
    if isinstance(device, int):
        return f"cuda:{device}"
    return str(device)


def _default_dtype(torch: Any, name: str | None) -> Any:
    if name:
        return getattr(torch, name)
    return torch.bfloat16 if torch.cuda.is_available() else torch.float32


class LocalLLM:
    """``LLM`` over a transformers model in this process. Loads on first use; one generation at
    a time (a second caller waits), because the model's memory was sized for one."""

    def __init__(
        self,
        model: str,
        *,
        gguf_file: str | None = None,
        max_memory: Mapping[str, str] | Mapping[int | str, str] | None = None,
        dtype: str | None = None,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        offload_dir: Path | None = None,
    ) -> None:
        label = f"{model}::{gguf_file}" if gguf_file else model
        self.name = f"local: {label} (transformers)"
        self.model_name = model
        self.gguf_file = gguf_file
        self.max_memory = parse_max_memory({str(k): v for k, v in (max_memory or {}).items()})
        self._dtype_name = dtype
        self._max_new_tokens = max_new_tokens
        self._temperature = temperature
        self._offload_dir = offload_dir
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self.last_usage: dict[str, int] | None = None  # tokens of the last finished generation

    # -- loading ---------------------------------------------------------------------------

    def load(self) -> None:
        """Load now rather than at the first question."""
        with self._lock:
            self._load()

    def _load(self) -> None:
        if self._model is not None:
            return
        missing = [m for m in ("torch", "transformers", "accelerate") if not _installed(m)]
        if self.gguf_file and not _installed("gguf"):
            missing.append("gguf")
        if missing:
            raise LLMError(
                f"The local backend needs {', '.join(missing)}: pip install -r requirements.txt "
                f"(or pip install {' '.join(missing)})."
            )
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        extra: dict[str, Any] = {}
        if self.gguf_file:
            extra["gguf_file"] = self.gguf_file
        if self.max_memory:
            extra["max_memory"] = dict(self.max_memory)  # Accelerate rewrites it in place
        if self._offload_dir is not None:  # used only if the caps push layers to "disk"
            extra["offload_folder"] = str(self._offload_dir)
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model_name, **_only_gguf(extra))
            model = AutoModelForCausalLM.from_pretrained(
                self.model_name,
                device_map="auto",
                dtype=_default_dtype(torch, self._dtype_name),  # transformers 5's torch_dtype
                low_cpu_mem_usage=True,
                **extra,
            )
        except torch.OutOfMemoryError as exc:
            raise LLMError(
                f"Out of memory loading {self.model_name}: lower the caps in RAG_LLM_MAX_MEMORY "
                'so layers spill to other devices or "cpu" (e.g. {"0": "18GiB", "cpu": '
                '"30GiB"}), or choose a smaller model.'
            ) from exc
        except (OSError, ValueError) as exc:
            raise LLMError(
                f"Could not load the local model {self.name.removeprefix('local: ')}: {exc}. "
                "Set RAG_LLM_MODEL to a Hugging Face name (downloaded once, needs the network) "
                "or a local folder, and RAG_LLM_MAX_MEMORY to caps that fit this machine."
            ) from exc
        self._model, self._tokenizer = model, tokenizer
        for device, entry in self.device_map_summary().items():
            log.info(
                "%s on %s: %d module(s), %s .. %s, layers %s",
                self.name, device, entry["modules"], entry["first"], entry["last"],
                entry["layers"],
            )  # fmt: skip

    @property
    def model(self) -> Any:
        """The loaded transformers model (loads it if needed)."""
        if self._model is None:
            self.load()
        return self._model

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self.load()
        return self._tokenizer

    def device_map_summary(self) -> dict[str, dict[str, Any]]:
        """Which modules went to which device (loads the model if needed); see
        ``summarise_device_map``. Without a split transformers records no ``hf_device_map``:
        the whole model is on ``model.device``."""
        model = self.model
        device_map = getattr(model, "hf_device_map", None) or {"": model.device}
        return summarise_device_map(device_map, getattr(model.config, "num_hidden_layers", None))

    # -- generation ------------------------------------------------------------------------

    def _inputs(self, prompt: str) -> dict[str, Any]:
        tokenizer = self._tokenizer
        if getattr(tokenizer, "chat_template", None):
            inputs = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}],
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )
        else:  # a base model: the prompt as plain text
            inputs = tokenizer(prompt, return_tensors="pt")
        device = self._model.device
        if device.type == "meta":  # the first layer is offloaded; Accelerate's hooks move inputs
            device = "cpu"
        return {k: v.to(device) for k, v in inputs.items()}

    def stream(self, prompt: str, *, max_tokens: int | None = None) -> Iterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        stop = threading.Event()

        class _StopWhenAsked(StoppingCriteria):
            """Ends generation when the reader stops reading (closed the generator)."""

            def __call__(self, input_ids, scores, **kwargs):  # noqa: ANN001, ANN204
                import torch

                return torch.full(
                    (input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device
                )

        with self._lock:
            self._load()
            inputs = self._inputs(prompt)
            streamer = TextIteratorStreamer(
                self._tokenizer, skip_prompt=True, skip_special_tokens=True
            )
            options: dict[str, Any] = {
                "max_new_tokens": max_tokens or self._max_new_tokens,
                "streamer": streamer,
                "stopping_criteria": StoppingCriteriaList([_StopWhenAsked()]),
            }
            if self._tokenizer.pad_token_id is None:  # silences "Setting pad_token_id" warnings
                options["pad_token_id"] = self._tokenizer.eos_token_id
            if self._temperature > 0:
                options |= {"do_sample": True, "temperature": self._temperature}
            else:
                options["do_sample"] = False
            failure: list[BaseException] = []
            prompt_tokens = int(inputs["input_ids"].shape[1])

            def generate() -> None:
                try:
                    out = self._model.generate(**inputs, **options)
                    self.last_usage = {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": int(out.shape[1]) - prompt_tokens,
                    }
                except BaseException as exc:  # noqa: BLE001 - handed to the reading thread
                    failure.append(exc)
                    streamer.end()  # unblock the reader

            worker = threading.Thread(target=generate, name="local-llm-generate", daemon=True)
            worker.start()
            try:
                for text in streamer:
                    if text:
                        yield text
            finally:
                stop.set()
                worker.join()
            if failure:
                raise LLMError(f"The local model failed while generating: {failure[0]}") from (
                    failure[0]
                )


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _only_gguf(extra: dict[str, Any]) -> dict[str, Any]:
    return {"gguf_file": extra["gguf_file"]} if "gguf_file" in extra else {}
