"""How near the hardware the bulk embedder is: all-MiniLM-L6-v2's matrix products alone,
against the whole model, on OpenVINO bf16 (the bulk engine) and on torch fp32 (the
reference).

    python -m bench.embed_ceiling [--pages 200] [--rounds 5] [--no-write]

Issue 15 asks the bulk path for 3x torch's chunks per second with the same vectors. The
model's work is mostly matrix products by its weights (the Q, K, V and output projections
and the two feed-forward layers of each of the 6 layers: 21 MFLOP a token); attention's own
products, softmax, layer norms, GELU, tokenizing and pooling are the rest. This script
times, on the same machine and in the same process, interleaved round by round:

- **products alone**: a graph of just those 36 products, with the model's shapes, fed one
  batch of 16 chunks of the corpus's mean length at a time. On OpenVINO it is compiled with
  the bulk engine's settings (bf16, throughput streams, the cores' threads, unpinned); on
  torch, fp32 matrix products on the cores' threads. Nothing the real model does besides
  them is counted: no path that keeps the vectors can embed faster than this row;
- **the whole model**: the bulk engine (``retrieval.openvino_engine``) and torch
  (sentence-transformers) on the same chunks of the ingest benchmark's corpus;
- **where the engine's time goes**: OpenVINO's own per-node counters for the real model on
  one stream, one thread, by kind of node, and the rate its matrix products reach there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from app.eval import markdown_table
from bench.common import machine, write_section
from bench.embed_bench import ingest_chunks, load_backend
from retrieval.config import DEFAULT_EMBEDDING_MODEL
from retrieval.openvino_engine import BATCH


def shapes(config: dict) -> list[tuple[int, int]]:
    """(in, out) of every product by a weight matrix, in order, for a BERT encoder."""
    h, ffn = config["hidden_size"], config["intermediate_size"]
    layer = [(h, h)] * 4 + [(h, ffn), (ffn, h)]
    return layer * config["num_hidden_layers"]


def flop_per_token(config: dict) -> int:
    return sum(2 * i * o for i, o in shapes(config))


def model_config() -> dict:
    """The packaged model's transformer config (hidden size, layers, feed-forward width)."""
    from retrieval.embedder import resolve_model_path

    return json.loads(
        (Path(resolve_model_path(DEFAULT_EMBEDDING_MODEL)) / "config.json").read_text()
    )


class ProductsOpenVino:
    """The products alone on OpenVINO, compiled as the bulk engine compiles the model."""

    def __init__(self, weights: list[np.ndarray], rows: int, threads: int) -> None:
        import openvino as ov
        import openvino.opset13 as ops

        x = ops.parameter([rows, weights[0].shape[0]], np.float32, name="x")
        h = x
        for w in weights:
            h = ops.matmul(h, ops.constant(w), False, False)
        compiled = ov.Core().compile_model(
            ov.Model([h], [x]),
            "CPU",
            {
                "INFERENCE_PRECISION_HINT": "bf16",
                "PERFORMANCE_HINT": "THROUGHPUT",
                "INFERENCE_NUM_THREADS": threads,
                "ENABLE_CPU_PINNING": False,
            },
        )
        self._queue = ov.AsyncInferQueue(
            compiled, compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        )
        self._input = np.random.default_rng(1).standard_normal((rows, weights[0].shape[0]))
        self._input = self._input.astype(np.float32)

    def run(self, batches: int) -> None:
        for _ in range(batches):
            self._queue.start_async({0: self._input})
        self._queue.wait_all()


class ProductsTorch:
    def __init__(self, weights: list[np.ndarray], rows: int) -> None:
        import torch

        self._torch = torch
        self._weights = [torch.from_numpy(w) for w in weights]
        self._input = torch.randn(rows, weights[0].shape[0])

    def run(self, batches: int) -> None:
        with self._torch.inference_mode():
            for _ in range(batches):
                h = self._input
                for w in self._weights:
                    h = h @ w


def profile(onnx: Any, texts: list[str]) -> tuple[Counter, int]:
    """Seconds by kind of node of the real model on OpenVINO bf16, one stream on one
    thread; and the padded tokens it ran."""
    import openvino as ov

    from retrieval.onnx_embedder import model_feeds

    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(str(onnx.path)),
        "CPU",
        {
            "INFERENCE_PRECISION_HINT": "bf16",
            "PERF_COUNT": True,
            "NUM_STREAMS": 1,
            "INFERENCE_NUM_THREADS": 1,
        },
    )
    request = compiled.create_infer_request()
    names = {port.any_name for port in compiled.inputs}
    seconds: Counter = Counter()
    tokens = 0
    for _, ids, mask in onnx.batches(texts, BATCH):
        request.infer(model_feeds(ids, mask, names))
        tokens += ids.size
        for node in request.profiling_info:
            seconds[node.node_type] += node.real_time.total_seconds()
    return seconds, tokens


# what OpenVINO's CPU plugin names the model's parts after its fusions
KINDS = {
    "FullyConnected": "products by the weights (36)",
    "Subgraph": "attention (fused: Q·K, softmax, ·V)",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.embed_ceiling", description=__doc__)
    parser.add_argument("--pages", type=int, default=200, help="ingest benchmark corpus size")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds, interleaved")
    parser.add_argument("--no-write", action="store_true", help="don't update BENCHMARKS.md")
    args = parser.parse_args(argv)

    import torch

    texts = ingest_chunks(args.pages)
    bulk = load_backend("onnx-bf16")
    reference = load_backend("torch")
    onnx = bulk.small
    config = model_config()
    tokens = [int(m.sum()) for _, _, m in onnx.batches(texts, len(texts))]
    mean_tokens = round(sum(tokens) / len(texts))
    rows = BATCH * mean_tokens
    rng = np.random.default_rng(0)
    weights = [
        (rng.standard_normal((i, o)) / np.sqrt(i)).astype(np.float32) for i, o in shapes(config)
    ]
    threads = onnx.threads
    torch.set_num_threads(threads)
    batches = max(1, len(texts) // BATCH)
    contenders = {
        "OpenVINO bf16, products alone": lambda: ov_products.run(batches),
        "torch fp32, products alone": lambda: torch_products.run(batches),
        "OpenVINO bf16, whole model": lambda: bulk.bulk.embed(texts[: batches * BATCH]),
        "torch fp32, whole model": lambda: reference.embed(texts[: batches * BATCH]),
    }
    ov_products = ProductsOpenVino(weights, rows, threads)
    torch_products = ProductsTorch(weights, rows)
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    chunks = batches * BATCH
    for run in contenders.values():
        run()  # warm-up
    for r in range(args.rounds):
        for name, run in contenders.items():
            started = time.perf_counter()
            run()
            rates[name].append(chunks / (time.perf_counter() - started))
        line = ", ".join(f"{n} {v[-1]:.1f}" for n, v in rates.items())
        print(f"round {r + 1}: {line} chunks/s", file=sys.stderr, flush=True)
    rate = {name: statistics.median(v) for name, v in rates.items()}

    gflop_chunk = flop_per_token(config) * mean_tokens / 1e9
    torch_whole = rate["torch fp32, whole model"]
    table = [
        [
            "path",
            "products alone: chunks/s (median)",
            "whole model: chunks/s (median)",
            "whole / products alone",
            "products alone vs torch's whole model",
            "whole model vs torch's whole model",
            "products' GFLOP/s (alone)",
        ]
    ]
    for path in ("OpenVINO bf16", "torch fp32"):
        alone, whole = rate[f"{path}, products alone"], rate[f"{path}, whole model"]
        table.append(
            [
                path,
                f"{alone:.1f}",
                f"{whole:.1f}",
                f"{whole / alone:.2f}",
                f"{alone / torch_whole:.2f}x",
                f"{whole / torch_whole:.2f}x",
                f"{alone * gflop_chunk:.0f}",
            ]
        )
    spread = {name: f"{min(v):.1f}-{max(v):.1f}" for name, v in rates.items() if len(v) > 1}

    seconds, padded = profile(onnx, texts[:chunks])
    total = sum(seconds.values())
    parts = [["kind of node (OpenVINO's name)", "share of the time", "seconds", "GFLOP/s"]]
    shown = 0.0
    for node, label in KINDS.items():
        s = seconds.get(node, 0.0)
        shown += s
        rate_cell = (
            f"{flop_per_token(config) * padded / s / 1e9:.0f}"
            if node == "FullyConnected" and s
            else ""
        )
        parts.append([f"{label} (`{node}`)", f"{100 * s / total:.1f} %", f"{s:.2f}", rate_cell])
    rest = total - shown
    parts.append(
        [
            "the rest: layer norms, adds, GELU, reorders",
            f"{100 * rest / total:.1f} %",
            f"{rest:.2f}",
            "",
        ]
    )
    profile_table = markdown_table(parts)
    main_table = markdown_table(table)
    three_x = 3 * torch_whole
    summary = (
        f"3x torch's whole model would be {three_x:.1f} chunks/s; OpenVINO bf16's products "
        f"alone reach {rate['OpenVINO bf16, products alone']:.1f} "
        f"({rate['OpenVINO bf16, products alone'] / torch_whole:.2f}x), the whole model "
        f"{rate['OpenVINO bf16, whole model']:.1f} ({rate['OpenVINO bf16, whole model'] / torch_whole:.2f}x)."
    )
    print(main_table)
    print(profile_table)
    print(summary)
    if not args.no_write:
        write_section(
            "embed_ceiling",
            f"""## How near the hardware the bulk embedder is (`python -m bench.embed_ceiling`)

Machine: {machine()}. {chunks} chunks of the ingest benchmark's {args.pages}-page corpus
({mean_tokens} word pieces a chunk on average, {gflop_chunk:.2f} GFLOP of products by the
weights each), {args.rounds} rounds, every path in turn in each round; medians (spread:
{"; ".join(f"{k} {v}" for k, v in spread.items())}). "Products alone" = a graph of only
the model's 36 products by its weight matrices, in batches of {BATCH} chunks of the mean
length; "whole model" = the bulk engine and torch embedding the chunks themselves.

{main_table}

Where the bulk engine's time goes (OpenVINO's per-node counters, the real model on one
stream and one thread, {padded:,} padded tokens):

{profile_table}

{summary}
""",
        )
        print("wrote its section of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
