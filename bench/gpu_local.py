"""GPU check for the local backend: a Llama-shaped model split over two devices by Accelerate.

Builds a Llama-style model of a stated size from a config with random weights (no download),
saves it as bf16 safetensors with a word-level tokenizer to a temporary folder, and loads it
through ``LocalLLM`` with a ``max_memory`` that leaves only part of it on the first device:

- with a GPU: ``{0: <fraction of the weights>, "cpu": ...}``, the rest runs from CPU memory;
- without one: ``{"cpu": <fraction>}``, the rest is offloaded to disk (slow; a smoke check).

Then it streams 128 new tokens after a ~500-token prompt and prints load time, memory per
device, first-token latency and tokens/s. The weights are random, so the text is noise: this
measures the machinery, not answers.

    python bench/gpu_local.py --size 3b             # on a GPU machine
    python bench/gpu_local.py --size tiny           # CPU smoke check, a few seconds
    python bench/gpu_local.py --size 3b --fraction 1.1   # everything fits on GPU 0: no split
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from llm.local import LocalLLM  # noqa: E402

GiB = 1024**3
# Llama-3.2-1B / 3B and Llama-3.1-8B shapes; "tiny" and "small" for CPU runs.
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(hidden_size=64, intermediate_size=256, num_hidden_layers=8,
                 num_attention_heads=4, num_key_value_heads=2, vocab_size=512),
    "small": dict(hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                  num_attention_heads=8, num_key_value_heads=4, vocab_size=32000),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
               num_attention_heads=32, num_key_value_heads=8, vocab_size=128256),
    "3b": dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28,
               num_attention_heads=24, num_key_value_heads=8, vocab_size=128256),
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=8, vocab_size=128256),
}  # fmt: skip
SPECIAL = ["<unk>", "<pad>"]


def word(i: int) -> str:
    return f"w{i}"


def build_tokenizer(vocab_size: int):  # noqa: ANN201 - PreTrainedTokenizerFast
    """A word-level tokenizer whose vocabulary is ``w2 .. w{n-1}``: one word, one token, so a
    prompt of N words is N tokens, and every id the model can emit decodes to ``"wK "`` (the
    trailing space lets the streamer hand out each token as soon as it is generated)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL)}
    vocab |= {word(i): i for i in range(len(SPECIAL), vocab_size)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.decoder = decoders.Replace(Regex("$"), " ")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", pad_token="<pad>")
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    return tokenizer


def build_model(size: str, folder: Path, device: str) -> int:
    """Random Llama of ``size`` saved to ``folder`` (bf16 safetensors); returns its bytes."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    shape = SIZES[size]
    config = LlamaConfig(
        **shape,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=1,  # no early stop: N tokens exactly
    )
    torch.manual_seed(0)
    with torch.device(device):  # random init on the GPU is seconds even for 8B
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.generation_config.eos_token_id = None
    model.save_pretrained(folder)
    build_tokenizer(shape["vocab_size"]).save_pretrained(folder)
    size_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return size_bytes


def rss_bytes() -> int:
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        with open("/proc/self/status") as f:
            line = next(x for x in f if x.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024


def memory_rows() -> list[tuple[str, str]]:
    rows = []
    for i in range(torch.cuda.device_count()):
        rows.append(
            (
                f"cuda:{i} allocated / peak",
                f"{torch.cuda.memory_allocated(i) / GiB:.2f} / "
                f"{torch.cuda.max_memory_allocated(i) / GiB:.2f} GiB",
            )
        )
    rows.append(("process RSS (cpu)", f"{rss_bytes() / GiB:.2f} GiB"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="tiny")
    parser.add_argument(
        "--fraction",
        type=float,
        default=0.5,
        help="share of the weights allowed on the first device (default 0.5)",
    )
    parser.add_argument(
        "--max-memory",
        help='explicit caps as JSON, e.g. {"0": "4GiB", "cpu": "64GiB"}; overrides --fraction',
    )
    parser.add_argument("--prompt-tokens", type=int, default=500)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--keep", type=Path, help="save the model here and keep it")
    args = parser.parse_args(argv)

    gpu = torch.cuda.is_available()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="gpu-local-"))
    try:
        started = time.perf_counter()
        size_bytes = build_model(args.size, folder, "cuda" if gpu else "cpu")
        build_s = time.perf_counter() - started

        # bf16 on a GPU; LocalLLM loads float32 on a CPU, twice the bytes
        loaded_bytes = size_bytes * (1 if gpu else 2)
        cap = f"{loaded_bytes * args.fraction / 2**20:.1f}MiB"
        if args.max_memory:
            max_memory = json.loads(args.max_memory)
        elif gpu:
            max_memory = {"0": cap, "cpu": f"{max(64, 4 * size_bytes / GiB):.0f}GiB"}
        else:
            max_memory = {"cpu": cap}  # the rest goes to disk
        llm = LocalLLM(
            str(folder),
            max_memory=max_memory,
            max_new_tokens=args.new_tokens,
            offload_dir=folder / "offload",
        )
        if gpu:
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        llm.load()
        load_s = time.perf_counter() - started
        summary = llm.device_map_summary()
        memory_after_load = memory_rows()

        vocab = SIZES[args.size]["vocab_size"]
        prompt = " ".join(
            word(len(SPECIAL) + (i * 7919) % (vocab - len(SPECIAL)))
            for i in range(args.prompt_tokens)
        )
        list(llm.stream(prompt, max_tokens=2))  # warm-up: kernels, allocator, hooks
        if gpu:
            torch.cuda.synchronize()
        started = time.perf_counter()
        first_s = None
        pieces = 0
        for _ in llm.stream(prompt):
            pieces += 1
            if first_s is None:
                first_s = time.perf_counter() - started
        total_s = time.perf_counter() - started
        usage = llm.last_usage or {}
        new = usage.get("completion_tokens", pieces)
        decode_tps = (new - 1) / (total_s - first_s) if first_s is not None and new > 1 else 0.0

        device = torch.cuda.get_device_name(0) if gpu else f"cpu ({os.cpu_count()} cores)"
        rows = [
            ("device", device),
            (
                "model",
                f"Llama-style {args.size}: {size_bytes / 2 / 1e6:,.1f} M params, "
                f"{size_bytes / 2**20:,.1f} MiB bf16 on disk",
            ),
            ("max_memory", json.dumps(llm.max_memory)),
            ("dtype", str(llm.model.dtype)),
            ("build + save (random init)", f"{build_s:.1f} s"),
            ("load (LocalLLM.load)", f"{load_s:.1f} s"),
        ]
        rows += [
            (
                f"placed on {dev}",
                f"{e['modules']} modules, layers {e['layers']}, {e['first']} .. {e['last']}",
            )
            for dev, e in summary.items()
        ]
        rows += [(f"after load: {k}", v) for k, v in memory_after_load]
        rows += [(f"after generation: {k}", v) for k, v in memory_rows()]
        rows += [
            ("prompt tokens", str(usage.get("prompt_tokens", "?"))),
            ("new tokens", str(new)),
            ("first-token latency", f"{first_s or 0:.3f} s"),
            ("decode speed", f"{decode_tps:.1f} tokens/s"),
            ("end-to-end", f"{new / total_s:.1f} tokens/s over {total_s:.2f} s"),
        ]
        width = max(len(k) for k, _ in rows)
        print(f"{'what'.ljust(width)} | value")
        print(f"{'-' * width}-|-{'-' * 40}")
        for key, value in rows:
            print(f"{key.ljust(width)} | {value}")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
