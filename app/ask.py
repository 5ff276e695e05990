"""python -m app.ask "QUESTION" [--json] [--batch FILE] [--backend NAME] [--data-dir DIR]"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.attribution import strip_markers
from app.errors import USER_ERRORS, RagError
from app.settings import load_settings


def _print_json(answer) -> None:  # noqa: ANN001 - app.qa.Answer
    print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)


def _where(source: str, page: int | None) -> str:
    return source + (f", page {page}" if page else "")


def _same_text(streamed: str, checked: str) -> bool:
    """Whether the checked answer says what was streamed (the check may only add, move or
    drop ``[n]`` markers)."""
    return strip_markers(streamed) == strip_markers(checked)


def _print_answer(stream, live: bool) -> None:  # noqa: ANN001 - app.qa.AnswerStream
    """The answer, then what the check decided. On a terminal (``live``) the model's text is
    shown as it is written; when the check changes it (not found in the documents, a
    withheld planted instruction, a second try that is shown only once checked), the checked
    answer follows, marked as such. Piped, only the checked answer is printed."""
    streamed = ""
    for token in stream:
        streamed += token
        if live:
            print(token, end="", flush=True)
    answer = stream.result()
    if live and streamed:
        print()
    if not live or not _same_text(streamed, answer.text):
        if live and streamed.strip():
            print("\nChecked against the documents:")
        print(answer.text)
    _print_sources(answer)


def _print_sources(answer) -> None:  # noqa: ANN001 - app.qa.Answer
    """After the answer: what the answer check decided."""
    for sentence in answer.unsupported:
        print(f"  not found in the documents: {sentence}")
    if answer.passages:
        print(answer.lead)
        for p in answer.passages:
            print(f'  "{p.quote}" ({_where(p.source, p.page)})')
    if answer.citations:
        print("\nSources:")
        for c in answer.citations:
            mark = " (given to the model)" if c.inferred else ""
            print(f"  [{c.n}] {_where(c.source, c.page)}{mark}")
            if c.quote:
                print(f'      "{c.quote}"')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.ask", description="Answer from the documents."
    )
    parser.add_argument("question", nargs="?", help="the question (or use --batch)")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    parser.add_argument(
        "--batch", type=Path, help="file with one question per line; one JSON line each"
    )
    parser.add_argument(
        "--backend", choices=["embedded", "local", "openai"], help="override RAG_LLM_BACKEND"
    )
    parser.add_argument("--data-dir", type=Path, help="where the stores live (env RAG_DATA_DIR)")
    args = parser.parse_args(argv)
    if args.question is None and not args.batch:
        parser.error("give a QUESTION or --batch FILE")

    try:
        if args.batch and not args.batch.is_file():
            raise RagError(f"{args.batch}: no such file")
        settings = load_settings(data_dir=args.data_dir, llm_backend=args.backend)
        questions = (
            [q.strip() for q in args.batch.read_text(encoding="utf-8").splitlines() if q.strip()]
            if args.batch
            else [args.question]
        )
        if not args.batch and not args.question.strip():
            print("error: the question is empty; type a question.", file=sys.stderr)
            return 2
        from app.services import build_services

        services = build_services(settings)
        for question in questions:
            if args.batch or args.json:
                _print_json(services.qa.ask(question))
            else:
                _print_answer(services.qa.ask_stream(question), sys.stdout.isatty())
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
