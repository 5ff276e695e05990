"""The embedded model's speed on a real prompt: first-token latency and tokens per second.

    python -m bench.model_bench [--runs 3] [--data-dir DIR] [--no-write]

Each run asks one question about the sample documents with the five resources hybrid
retrieval finds, in the founding ICL prompt, as the app does. The runs use different
questions: llama.cpp reuses the key/value cache of a prompt prefix it has already seen, so the
same prompt three times would measure the cache, not the model. Only the template's opening
lines are shared, as they are between a user's questions.

First token = prompt evaluation (prefill) plus the first generated token; tokens/s counts the
generated tokens (the model's own tokenizer) after the first, over the time after the first.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from app.errors import USER_ERRORS
from app.eval import markdown_table, prepare_index
from app.metrics import percentile
from app.settings import load_settings
from bench.common import machine, write_section
from llm.prompt import build_prompt

QUESTIONS = [
    "How many days per week can I work from home?",
    "How many days of annual leave does a full-time employee get per year?",
    "What is the hotel limit per night in London?",
    "Within what time must a lost laptop be reported to the security team?",
    "How much does a parking space in the new office garage cost per month?",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.model_bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="questions to time (default 3)")
    parser.add_argument("--data-dir", type=Path, help="stores to retrieve from (default: settings)")
    parser.add_argument("--no-write", action="store_true", help="don't update BENCHMARKS.md")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= len(QUESTIONS):
        parser.error(f"--runs must be 1..{len(QUESTIONS)}")

    try:
        settings = load_settings(data_dir=args.data_dir)
        index = prepare_index(settings)
        retriever = index.retriever("hybrid")
        from llm.embedded import MODEL_LABEL, EmbeddedLLM

        llm = EmbeddedLLM(
            settings.models_dir,
            context_tokens=settings.llm_context_window,
            max_new_tokens=settings.max_new_tokens,
            temperature=settings.temperature,
            threads=settings.threads,
        )
        started = time.perf_counter()
        llm.load()
        load_s = time.perf_counter() - started
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    model = llm._model()  # the loaded llama_cpp.Llama: its tokenizer counts the tokens

    def count(text: str) -> int:
        return len(model.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    rows, first_tokens, rates = [], [], []
    for run, question in enumerate(QUESTIONS[: args.runs], start=1):
        hits = retriever.search(question, settings.top_k)
        prompt = build_prompt(question, hits)
        parts: list[str] = []
        started = time.perf_counter()
        first = None
        for piece in llm.stream(prompt):
            if first is None:
                first = time.perf_counter() - started
            parts.append(piece)
        total = time.perf_counter() - started
        generated = count("".join(parts))
        rate = (generated - 1) / (total - first) if first is not None and generated > 1 else 0.0
        first_tokens.append(first or total)
        rates.append(rate)
        rows.append(
            [
                run,
                len(hits),
                count(prompt),
                f"{first or total:.2f}",
                generated,
                f"{total:.2f}",
                f"{rate:.1f}",
            ]
        )
        print(f"run {run}: {rows[-1]}  {''.join(parts)[:80]!r}", file=sys.stderr)

    header = [
        "run",
        "resources",
        "prompt tokens",
        "first token (s)",
        "tokens generated",
        "total (s)",
        "tokens/s",
    ]
    table = markdown_table([header, *rows])
    summary = (
        f"Model load {load_s:.1f} s. First token p50 {percentile(first_tokens, 50):.2f} s; "
        f"generation {percentile(rates, 50):.1f} tokens/s (p50 of {args.runs} runs); "
        f"{settings.threads or os.cpu_count()} threads."
    )
    print(table)
    print(summary)
    if not args.no_write:
        write_section(
            "model_bench",
            f"""## Embedded model speed (`python -m bench.model_bench`)

Machine: {machine()}.
{MODEL_LABEL} through llama-cpp-python on the CPU. Each run: one question about the sample
documents, its five hybrid-retrieved resources in the ICL prompt, `max_new_tokens`
{settings.max_new_tokens}, temperature {settings.temperature}. Different questions per run, so
llama.cpp's prompt cache cannot skip the prefill.

{table}

{summary}
""",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
