"""The answer check replayed on recorded answers: citation figures without running a model.

    python -m bench.recheck_answers CSV [--qa data/eval/dev.jsonl] [--data-dir DIR] [--show]

``CSV`` is a per-question file written by ``python -m app.eval`` (columns ``id``, ``answer``,
``refused``, ``citations``). Each recorded answer is given back to ``QAService`` by a
scripted model that replies with it, so retrieval, the prompt's excerpts, the answer check
(``app.attribution``) and ``app.conflicts`` run as in the app, on the current code; the
result is graded by ``app.eval.runner.grade_answer``. Change the check, re-run, compare.

The CSV holds the checked answer, not the model's raw text: a ``[n]`` the check added or
moved is taken out again (the model wrote none there, or another one, unrecorded); a ``[n]``
the check kept stays. A refusal is replayed as the model's "I don't know.", or, when the
check turned the model's answer into a refusal, as the sentences it withheld (column
``withheld``, written by ``app.eval`` since stop 19; older CSVs lack it, and such a refusal
stays a refusal).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from app.citations import _CITE, _numbers
from app.errors import USER_ERRORS
from app.eval import load_qa, prepare_index
from app.eval.runner import grade_answer, summarize_answers
from app.settings import REPO_ROOT, load_settings
from llm.prompt import I_DONT_KNOW

FIGURES = [
    ("answerable wrongly refused", "refused_answerable"),
    ("unanswerable answered I don't know", "refused_unanswerable"),
    ("accuracy (accepted answer in the answer)", "accuracy"),
    ("citation precision (on the expected source / all)", "citation_precision"),
    ("cited the right page", "page_hit"),
    ("answers with a supported citation", "has_citation"),
    ("answers whose every sentence is supported", "all_supported"),
    ("quotes found verbatim in their chunk", "quotes_verbatim"),
]


class ReplyLLM:
    """Replies with the text it is given for the next question."""

    name = "recorded answers (no model)"

    def __init__(self) -> None:
        self.reply = ""

    def stream(self, prompt: str, *, max_tokens: int | None = None) -> Iterator[str]:
        yield self.reply


def raw_answer(row: dict[str, str]) -> str:
    """The recorded answer as the model wrote it, as near as the CSV tells: the markers
    the check kept, none of those it added or moved."""
    if row["refused"] == "True":
        # the model's sentences, when the check turned them into a refusal (CSVs written
        # since the "withheld" column came); else the model's own "I don't know."
        return row.get("withheld") or I_DONT_KNOW
    kept = {int(m) for m in re.findall(r"\[(\d+)\][^;]*\(kept\)", row["citations"])}

    def marker(m: re.Match[str]) -> str:
        mine = [n for n in _numbers(m.group(1)) if n in kept]
        return f"[{', '.join(map(str, mine))}]" if mine else ""

    text = _CITE.sub(marker, row["answer"])
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recheck_answers", description=__doc__)
    parser.add_argument("csv", type=Path, help="per-question CSV of an app.eval run")
    parser.add_argument("--qa", type=Path, default=REPO_ROOT / "data" / "eval" / "dev.jsonl")
    parser.add_argument("--data-dir", type=Path, help="the stores of that run")
    parser.add_argument("--show", action="store_true", help="print each answer's citations")
    args = parser.parse_args(argv)
    from app.qa import QAService

    try:
        settings = load_settings(data_dir=args.data_dir)
        items = {i.id: i for i in load_qa(args.qa)}
        rows = list(csv.DictReader(args.csv.open(encoding="utf-8")))
        index = prepare_index(settings)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    llm = ReplyLLM()
    qa = QAService(
        index.retriever(settings.retrieval_mode),
        llm,
        top_k=settings.top_k,
        context_tokens=settings.context_tokens,
    )
    graded, results, changed = [], [], []
    for row in rows:
        item = items[row["id"]]
        llm.reply = raw_answer(row)
        result = grade_answer(item, qa.ask(item.question))
        graded.append(item)
        results.append(result)
        before = row["citations"]
        after = "; ".join(result.citations)
        if str(result.refused) != row["refused"] or before != after:
            changed.append(
                f"{item.id}: refused {row['refused']} -> {result.refused}; "
                f"citations {before or '-'} -> {after or '-'}"
            )
        if args.show:
            print(f"{item.id} [{item.source} p.{item.page}] {after or '-'}", file=sys.stderr)
    summary = summarize_answers(graded, results)
    n_ans = sum(i.answerable for i in graded)
    answered = sum(
        1 for i, r in zip(graded, results, strict=True) if i.answerable and not r.refused
    )
    print(
        f"{args.csv}: {len(graded)} questions ({n_ans} answerable, {answered} answered; "
        f"{len(graded) - n_ans} unanswerable), data dir {settings.data_dir}"
    )
    for label, key in FIGURES:
        value = summary.get(key)
        print(f"{label:52s} {'n/a' if value is None else f'{value:.3f}'}")
    print("changed against the CSV:" if changed else "nothing changed against the CSV")
    for line in changed:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
