"""python -m app.eval QA.jsonl [--mode M] [--compare-modes] [--retrieval-only] [--prompt NAME]
[--judge] [--docs PATH...] [--data-dir DIR] [--limit N] [--out DIR]

Measures retrieval, answers, citations, refusals and latency on a file of questions with
known answers, prints a summary table, and writes a per-question CSV, a Markdown report and
the summary as JSON to --out.

The format of QA.jsonl is described in ``app/eval/qa_file.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from app.errors import USER_ERRORS, RagError
from app.eval.qa_file import QAItem, load_qa, spread
from app.eval.report import (
    DEFAULT_OUT,
    _no_nan,
    answer_table,
    markdown_table,
    misses,
    retrieval_table,
    text_table,
    write_csv,
)
from app.eval.runner import (
    MODES,
    RANK_DEPTH,
    evaluate_answers,
    evaluate_retrieval,
    prepare_index,
    summarize_answers,
    summarize_retrieval,
)
from app.settings import Settings, load_settings


# ---- the command --------------------------------------------------------------------------
def docs_data_dir(data_dir: Path, docs: Sequence[Path]) -> Path:
    """A data dir of its own for a set of documents, so that evaluating on them never mixes
    them into the app's store: DATA_DIR/eval/<first name>-<hash of the paths>."""
    key = "\n".join(sorted(str(p.resolve()) for p in docs))
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return data_dir / "eval" / f"{docs[0].resolve().name or 'docs'}-{digest}"


def main(argv: list[str] | None = None) -> int:
    from llm.prompt import PROMPTS

    parser = argparse.ArgumentParser(
        prog="python -m app.eval", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument("qa", type=Path, help="the QA file (jsonl)")
    parser.add_argument("--data-dir", type=Path, help="the stores to evaluate (env RAG_DATA_DIR)")
    parser.add_argument("--mode", choices=MODES, help="retrieval mode (default: settings)")
    parser.add_argument(
        "--compare-modes",
        action="store_true",
        help="retrieval metrics for bm25, dense and hybrid side by side",
    )
    parser.add_argument(
        "--prompt", choices=list(PROMPTS), default="icl", help="prompt variant (default icl)"
    )
    parser.add_argument(
        "--retrieval-only",
        action="store_true",
        help="skip the model: retrieval metrics only (seconds)",
    )
    parser.add_argument(
        "--judge",
        action="store_true",
        help="also ask the configured model to grade each answer (YES/NO)",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        nargs="+",
        help="documents to evaluate on; ingested into a data dir of their own unless --data-dir is given",
    )
    parser.add_argument(
        "--limit", type=int, help="evaluate N questions, spread evenly over the file"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="where the CSV and report go (default data/eval/out)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.judge and args.retrieval_only:
        parser.error("--judge grades answers; it cannot be combined with --retrieval-only")

    try:
        items = spread(load_qa(args.qa), args.limit)
        missing = [str(p) for p in args.docs or () if not p.exists()]
        if missing:
            raise RagError(f"No such file or folder: {', '.join(missing)}")
        settings = load_settings(data_dir=args.data_dir, retrieval_mode=args.mode)
        if args.docs and args.data_dir is None:
            # a data dir of their own, sharing the app's assembled model file
            settings = settings.model_copy(
                update={
                    "data_dir": docs_data_dir(settings.data_dir, args.docs),
                    "model_dir": settings.model_dir or settings.models_dir,
                }
            )
        return _run(args, items, settings)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, items: list[QAItem], settings: Settings) -> int:
    progress = not args.quiet
    index = prepare_index(settings, args.docs, progress=progress)

    mode = settings.retrieval_mode
    modes = list(MODES) if args.compare_modes else [mode]
    retrieval = {
        m: evaluate_retrieval(index, items, m, top_k=settings.top_k, progress=progress)
        for m in modes
    }
    by_mode = {m: summarize_retrieval(items, retrieval[m]) for m in modes}

    answers = summary = None
    llm_name = None
    if not args.retrieval_only:
        from app.qa import QAService
        from app.wiring import make_llm

        llm = make_llm(settings)
        llm_name = llm.name
        qa = QAService(
            index.retriever(mode),
            llm,
            top_k=settings.top_k,
            prompt=args.prompt,
            context_tokens=settings.context_tokens,
        )
        answers = evaluate_answers(qa, items, judge=llm if args.judge else None, progress=progress)
        summary = summarize_answers(items, answers)

    n_ans = sum(i.answerable for i in items)
    scope = (
        f"{len(items)} questions ({n_ans} answerable, {len(items) - n_ans} unanswerable) from "
        f"{args.qa}; data dir {settings.data_dir} ({index.store.count()} chunks); "
        f"top_k {settings.top_k}, relevance floor {settings.relevance_floor}"
    )
    r_rows = retrieval_table(by_mode)
    print(f"\n{scope}\n\nRetrieval (floor off for the ranks; MRR over the top {RANK_DEPTH}):")
    print(text_table(r_rows))
    if summary is not None:
        print(f"\nAnswers ({mode} retrieval, prompt {args.prompt}, {llm_name}):")
        print(text_table(answer_table(summary)))

    stem = args.qa.stem
    name = f"{stem}-{'compare' if args.compare_modes else mode}-{'retrieval' if args.retrieval_only else args.prompt}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path, json_path = (out / f"{name}.{ext}" for ext in ("csv", "md", "json"))
    write_csv(csv_path, items, retrieval, answers)
    problems = misses(items, retrieval[mode], answers)
    md = [
        f"# Evaluation: {stem}",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. {scope}.",
        "",
        f"## Retrieval (floor off for the ranks; MRR over the top {RANK_DEPTH})",
        "",
        markdown_table(r_rows),
    ]
    if summary is not None:
        md += ["", f"## Answers ({mode} retrieval, prompt `{args.prompt}`, {llm_name})", ""]
        md += [markdown_table(answer_table(summary))]
    md += ["", f"## What went wrong ({mode})", "", *(problems or ["Nothing."])]
    md += ["", f"Per question: `{csv_path.name}`."]
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")
    record = {
        "qa": str(args.qa),
        "questions": len(items),
        "answerable": n_ans,
        "mode": mode,
        "prompt": None if args.retrieval_only else args.prompt,
        "model": llm_name,
        "retrieval": by_mode,
        "answers": summary,
    }
    json_path.write_text(json.dumps(_no_nan(record), indent=2), encoding="utf-8")
    print(f"\nWrote {csv_path}, {md_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
