"""The embedded model's speed on the app's real prompts: first token, total, answer length.

    python -m bench.model_bench [--qa data/eval/dev.jsonl] [--limit 12] [--budgets 0,400,250]
                                [--data-dir DIR] [--no-write]

Each question of the QA file (answerable ones, spread over the file) is retrieved as the app
does (hybrid, top_k) and put in the founding ICL prompt, once per resource budget
(``RAG_CONTEXT_TOKENS``; 0 = whole chunks, the app before the budget existed). Questions
differ, so llama.cpp's prompt cache can skip only the template's shared opening, as it can
between a user's questions.

First token = prompt evaluation (prefill) plus the first generated token; tokens/s counts the
generated tokens (the model's own tokenizer) after the first, over the time after the first.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from app.context import CachedEmbedder, select_excerpts
from app.errors import USER_ERRORS
from app.eval import load_qa, markdown_table, prepare_index, spread
from app.metrics import answer_correct, percentile
from app.settings import REPO_ROOT, load_settings
from bench.common import machine, write_section
from llm.prompt import build_prompt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.model_bench", description=__doc__)
    parser.add_argument("--qa", type=Path, default=REPO_ROOT / "data" / "eval" / "dev.jsonl")
    parser.add_argument("--limit", type=int, default=12, help="questions (default 12)")
    parser.add_argument(
        "--budgets", default="0,400", help="resource budgets in tokens, 0 = whole chunks"
    )
    parser.add_argument("--data-dir", type=Path, help="stores to retrieve from (default: settings)")
    parser.add_argument("--no-write", action="store_true", help="don't update BENCHMARKS.md")
    args = parser.parse_args(argv)
    budgets = [int(b) for b in args.budgets.split(",")]

    try:
        settings = load_settings(data_dir=args.data_dir)
        items = spread([i for i in load_qa(args.qa) if i.answerable], args.limit)
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

    embedder = CachedEmbedder(index.embedder)
    runs: dict[int, list[dict]] = {b: [] for b in budgets}
    for item in items:
        hits = retriever.search(item.question, settings.top_k)
        if not hits:
            continue
        for budget in budgets:  # the same question under each budget, one after the other
            excerpts = select_excerpts(item.question, hits, embedder, budget=budget or None)
            prompt = build_prompt(item.question, excerpts.resources)
            parts: list[str] = []
            started = time.perf_counter()
            first = None
            for piece in llm.stream(prompt):
                if first is None:
                    first = time.perf_counter() - started
                parts.append(piece)
            total = time.perf_counter() - started
            answer = "".join(parts)
            generated = count(answer)
            rate = (generated - 1) / (total - first) if first and generated > 1 else 0.0
            runs[budget].append(
                {
                    "prompt": count(prompt),
                    "first": first or total,
                    "total": total,
                    "chars": len(answer),
                    "rate": rate,
                    "correct": answer_correct(answer, item.answers),
                }
            )
            print(f"{item.id} budget {budget}: {runs[budget][-1]} {answer[:70]!r}", file=sys.stderr)

    header = [
        "resource budget (tokens)",
        "questions",
        "prompt tokens p50",
        "first token p50 / p95 (s)",
        "total p50 / p95 (s)",
        "answer chars p50",
        "tokens/s p50",
        "accepted answer in it",
    ]
    rows = []
    for budget, rs in runs.items():

        def p(key: str, q: float, rs: list[dict] = rs) -> float:
            return percentile([r[key] for r in rs], q) or 0.0

        rows.append(
            [
                budget or "whole chunks",
                len(rs),
                f"{p('prompt', 50):.0f}",
                f"{p('first', 50):.2f} / {p('first', 95):.2f}",
                f"{p('total', 50):.2f} / {p('total', 95):.2f}",
                f"{p('chars', 50):.0f}",
                f"{p('rate', 50):.1f}",
                f"{sum(r['correct'] for r in rs)}/{len(rs)}",
            ]
        )
    table = markdown_table([header, *rows])
    summary = (
        f"Model load {load_s:.1f} s; {settings.threads or os.cpu_count()} threads; "
        f"max_new_tokens {settings.max_new_tokens}; {len(items)} answerable questions of "
        f"{args.qa.name}, spread over the file."
    )
    print(table)
    print(summary)
    if not args.no_write:
        write_section(
            "model_bench",
            f"""## Embedded model speed (`python -m bench.model_bench`)

Machine: {machine()}.
{MODEL_LABEL} through llama-cpp-python on the CPU. Each question: its hybrid-retrieved
resources in the founding ICL prompt, cut to the budget (`RAG_CONTEXT_TOKENS`) by
`app/context.py`; temperature {settings.temperature}. Command: `python -m bench.model_bench
--limit {args.limit} --budgets {args.budgets}`.

{table}

{summary}
""",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
