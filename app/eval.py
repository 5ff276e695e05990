"""python -m app.eval QA.jsonl [--mode M] [--compare-modes] [--retrieval-only] [--prompt NAME]
[--judge] [--docs PATH...] [--data-dir DIR] [--limit N] [--out DIR]

Measures retrieval, answers, citations, refusals and latency on a file of questions with
known answers, prints a summary table, and writes a per-question CSV, a Markdown report and
the summary as JSON to --out.

Each line of QA.jsonl is ``{"id", "question", "answers": [...], "source": file or null,
"page": int or null}``. ``answers: []`` with ``source: null`` is a question the documents do
not answer: the right reply is "I don't know." Optional keys: ``"tokens": [...]``, words a
right answer must contain (reported as token presence), and ``"match": "reference"`` when
``answers`` holds a long reference answer rather than short accepted ones (then accuracy is
not graded; token F1, token presence and the judge still are).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tqdm import tqdm

from app import metrics
from app.errors import RagError
from app.settings import REPO_ROOT, SAMPLE_DOCS_DIR, load_settings

if TYPE_CHECKING:
    from app.qa import Answer, QAService
    from app.settings import Settings
    from llm.base import LLM
    from retrieval import Index

MODES = ("bm25", "dense", "hybrid")
DEFAULT_OUT = REPO_ROOT / "data" / "eval" / "out"
RANK_DEPTH = 10  # hits looked at for the ranking metrics: MRR is MRR@10
HIT_KS = (1, 3, 5)
Match = Literal["contains", "reference"]

JUDGE_PROMPT = """You are grading an answer to a question about company documents.

Question: {question}
Correct answer: {accepted}
Answer to grade: {answer}

Does the answer to grade state the correct answer? Reply with one word: YES or NO."""


# ---- the QA file --------------------------------------------------------------------------
@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: tuple[str, ...]
    source: str | None
    page: int | None
    tokens: tuple[str, ...] = ()
    match: Match = "contains"

    @property
    def answerable(self) -> bool:
        return self.source is not None or bool(self.answers)


def load_qa(path: Path) -> list[QAItem]:
    """Read a QA jsonl file; a malformed line stops with its line number."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RagError(f"{path}: cannot read the QA file ({exc.strerror or exc})") from None
    items: list[QAItem] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            answers = row.get("answers") or []
            if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
                raise ValueError('"answers" must be a list of strings')
            match = row.get("match", "contains")
            if match not in ("contains", "reference"):
                raise ValueError('"match" must be "contains" or "reference"')
            page = row.get("page")
            item = QAItem(
                id=str(row["id"]),
                question=str(row["question"]),
                answers=tuple(answers),
                source=row.get("source"),
                page=None if page is None else int(page),
                tokens=tuple(str(t) for t in row.get("tokens") or ()),
                match=match,
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RagError(f"{path}, line {n}: not a QA item ({exc})") from None
        items.append(item)
    if not items:
        raise RagError(f"{path}: no questions in the file")
    return items


def spread(items: Sequence[QAItem], limit: int | None) -> list[QAItem]:
    """``limit`` items spread evenly over the file, so a short run still mixes the kinds of
    question a file groups together (answerable first, unanswerable last in dev.jsonl)."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit <= 0:
        return []
    return [items[math.floor(i * len(items) / limit)] for i in range(limit)]


# ---- retrieval ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RetrievalResult:
    rank: int | None  # of the expected source (and page), floor off; None when not found
    doc_rank: int | None  # of the expected source, any page
    floor_refused: bool  # the app's relevance floor left nothing: it would say "I don't know"
    seconds: float  # the floor-off search
    top: tuple[tuple[str, int | None], ...]  # (source, page) of the first hits


def evaluate_retrieval(
    index: Index, items: Sequence[QAItem], mode: str, *, progress: bool = False
) -> list[RetrievalResult]:
    """Rank of the expected source with the floor off (``floor=-1``), and whether the
    configured floor would refuse, for each question."""
    ranker = index.retriever(mode, floor=-1)
    gate = index.retriever(mode)
    k = index.settings.top_k
    results = []
    for item in tqdm(items, desc=f"Retrieval ({mode})", unit="q", disable=not progress):
        started = time.perf_counter()
        hits = ranker.search(item.question, max(RANK_DEPTH, k))
        seconds = time.perf_counter() - started
        found = [(h.source, h.page) for h in hits]
        rank = doc_rank = None
        if item.source is not None:
            rank = metrics.first_rank(found, item.source, item.page)
            doc_rank = metrics.first_rank(found, item.source)
        results.append(
            RetrievalResult(
                rank, doc_rank, not gate.search(item.question, k), seconds, tuple(found)
            )
        )
    return results


def summarize_retrieval(items: Sequence[QAItem], results: Sequence[RetrievalResult]) -> dict:
    ranked = [r for item, r in zip(items, results, strict=True) if item.source is not None]
    answerable = [r for item, r in zip(items, results, strict=True) if item.answerable]
    unanswerable = [r for item, r in zip(items, results, strict=True) if not item.answerable]
    out: dict = {"questions_ranked": len(ranked)}
    for k in HIT_KS:
        out[f"hit@{k}"] = metrics.mean(metrics.hit_at(r.rank, k) for r in ranked)
    out["mrr@10"] = metrics.mean(metrics.reciprocal_rank(r.rank) for r in ranked)
    out["doc_hit@5"] = metrics.mean(metrics.hit_at(r.doc_rank, 5) for r in ranked)
    out["floor_refused_answerable"] = metrics.mean(float(r.floor_refused) for r in answerable)
    out["floor_refused_unanswerable"] = metrics.mean(float(r.floor_refused) for r in unanswerable)
    seconds = [r.seconds for r in results]
    out["retrieval_p50_s"] = metrics.percentile(seconds, 50)
    out["retrieval_p95_s"] = metrics.percentile(seconds, 95)
    return out


# ---- answers ------------------------------------------------------------------------------
@dataclass(frozen=True)
class AnswerResult:
    text: str
    refused: bool
    correct: bool | None  # an accepted answer appears in it; None when not graded
    f1: float | None
    token_presence: float | None
    citation_hit: bool | None  # its citations include the expected source (and page)
    model_citation_hit: bool | None  # ... counting only those the model wrote itself
    cited_by_model: bool  # the model cited a resource itself (not inferred)
    judge: bool | None  # the grading model's YES/NO; None when not asked
    citations: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict)


def judge_answer(llm: LLM, item: QAItem, answer: str) -> bool | None:
    """Ask ``llm`` whether ``answer`` gives one of the accepted answers (YES/NO)."""
    prompt = JUDGE_PROMPT.format(
        question=item.question, accepted=" / ".join(item.answers), answer=answer
    )
    return metrics.parse_judgement("".join(llm.stream(prompt, max_tokens=4)))


def grade_answer(item: QAItem, answer: Answer, judge: LLM | None = None) -> AnswerResult:
    """Score one answer against the item's accepted answers, source and page."""
    cites = tuple(
        f"{c.source}" + (f" p.{c.page}" if c.page is not None else "") + ("*" if c.inferred else "")
        for c in answer.citations
    )  # "*": inferred, i.e. given to the model but not cited by it
    own = [c for c in answer.citations if not c.inferred]
    graded = item.answerable and not answer.refused

    def cites_expected(citations: list) -> bool | None:
        if not graded or item.source is None:
            return None
        return any(
            metrics.same_source(c.source, item.source) and item.page in (None, c.page)
            for c in citations
        )

    correct = f1 = presence = verdict = None
    if item.answerable:
        if item.match == "contains":
            correct = graded and metrics.answer_correct(answer.text, item.answers)
        f1 = metrics.best_f1(answer.text, item.answers) if graded else 0.0
        if item.tokens:
            presence = metrics.token_presence(answer.text, item.tokens) if graded else 0.0
        if judge is not None and item.answers:
            verdict = judge_answer(judge, item, answer.text) if graded else False
    return AnswerResult(
        text=answer.text,
        refused=answer.refused,
        correct=correct,
        f1=f1,
        token_presence=presence,
        citation_hit=cites_expected(list(answer.citations)),
        model_citation_hit=cites_expected(own),
        cited_by_model=bool(own),
        judge=verdict,
        citations=cites,
        timings=dict(answer.timings),
    )


def evaluate_answers(
    qa: QAService,
    items: Sequence[QAItem],
    *,
    judge: LLM | None = None,
    progress: bool = False,
) -> list[AnswerResult]:
    """Ask ``qa`` each question and grade the answer (``judge``: also ask a grading model)."""
    return [
        grade_answer(item, qa.ask(item.question), judge)
        for item in tqdm(items, desc="Answering", unit="q", disable=not progress)
    ]


def summarize_answers(items: Sequence[QAItem], results: Sequence[AnswerResult]) -> dict:
    pairs = list(zip(items, results, strict=True))
    answerable = [r for item, r in pairs if item.answerable]
    unanswerable = [r for item, r in pairs if not item.answerable]
    answered = [r for r in answerable if not r.refused]

    def share(values: Iterable[bool | None]) -> float | None:
        return metrics.mean(None if v is None else float(v) for v in values)

    out = {
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "accuracy": share(r.correct for r in answerable),
        "token_f1": metrics.mean(r.f1 for r in answerable),
        "token_presence": metrics.mean(r.token_presence for r in answerable),
        "judge_accuracy": share(r.judge for r in answerable),
        "citation_hit": share(r.citation_hit for r in answered),
        "model_citation_hit": share(r.model_citation_hit for r in answered),
        "cited_by_model": share(r.cited_by_model for r in answered),
        "refused_unanswerable": share(r.refused for r in unanswerable),
        "refused_answerable": share(r.refused for r in answerable),
    }
    for name in ("retrieval", "first_token", "total"):
        values = [r.timings[name] for r in results if name in r.timings]
        out[f"{name}_p50_s"] = metrics.percentile(values, 50)
        out[f"{name}_p95_s"] = metrics.percentile(values, 95)
    return out


# ---- output -------------------------------------------------------------------------------
RETRIEVAL_ROWS = [
    ("hit@1", "hit@1"),
    ("hit@3", "hit@3"),
    ("hit@5", "hit@5"),
    ("MRR@10", "mrr@10"),
    ("right document in top 5", "doc_hit@5"),
    ("floor refuses answerable", "floor_refused_answerable"),
    ("floor refuses unanswerable", "floor_refused_unanswerable"),
    ("retrieval p50 (ms)", "retrieval_p50_s"),
    ("retrieval p95 (ms)", "retrieval_p95_s"),
]
ANSWER_ROWS = [
    ("accuracy (accepted answer in the answer)", "accuracy"),
    ("token F1 (best accepted answer)", "token_f1"),
    ("token presence", "token_presence"),
    ("judge accuracy", "judge_accuracy"),
    ("citations include the expected source (as shown)", "citation_hit"),
    ("... counting only the model's own citations", "model_citation_hit"),
    ("answers the model cited itself", "cited_by_model"),
    ('unanswerable answered "I don\'t know"', "refused_unanswerable"),
    ("answerable wrongly refused", "refused_answerable"),
    ("retrieval p50 / p95 (s)", "retrieval"),
    ("first token p50 / p95 (s)", "first_token"),
    ("total p50 / p95 (s)", "total"),
]


def _fmt(value: float | None, key: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if key.endswith("_s"):
        return f"{value * 1000:.0f}"
    return f"{value:.3f}"


def retrieval_table(by_mode: dict[str, dict]) -> list[list[str]]:
    header = ["metric", *by_mode]
    rows = [
        [label, *(_fmt(s[key], key) for s in by_mode.values())] for label, key in RETRIEVAL_ROWS
    ]
    return [header, *rows]


def answer_table(summary: dict) -> list[list[str]]:
    rows = [["metric", "value"]]
    for label, key in ANSWER_ROWS:
        if key in ("retrieval", "first_token", "total"):
            p50, p95 = summary[f"{key}_p50_s"], summary[f"{key}_p95_s"]
            value = "n/a" if _fmt(p50) == "n/a" else f"{p50:.2f} / {p95:.2f}"
        else:
            value = _fmt(summary.get(key))
        rows.append([label, value])
    return rows


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; the first row is the header."""
    lines = ["| " + " | ".join(map(str, rows[0])) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows[1:]]
    return "\n".join(lines)


def _where(source: str | None, page: int | None) -> str:
    if source is None:
        return "(none)"
    return source if page is None else f"{source} p.{page}"


def write_csv(
    path: Path,
    items: Sequence[QAItem],
    retrieval: dict[str, list[RetrievalResult]],
    answers: list[AnswerResult] | None,
) -> None:
    header = ["id", "question", "answerable", "expected"]
    for mode in retrieval:
        header += [
            f"rank_{mode}",
            f"doc_rank_{mode}",
            f"floor_refused_{mode}",
            f"top3_{mode}",
            f"retrieval_ms_{mode}",
        ]
    if answers is not None:
        header += ["answer", "refused", "correct", "f1", "token_presence", "judge"]
        header += ["citation_hit", "model_citation_hit", "cited_by_model", "citations"]
        header += ["retrieval_s", "first_token_s", "total_s"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i, item in enumerate(items):
            row: list[object] = [
                item.id,
                item.question,
                item.answerable,
                _where(item.source, item.page),
            ]
            for results in retrieval.values():
                r = results[i]
                top3 = "; ".join(_where(s, p) for s, p in r.top[:3])
                row += [
                    r.rank or "",
                    r.doc_rank or "",
                    r.floor_refused,
                    top3,
                    f"{r.seconds * 1000:.1f}",
                ]
            if answers is not None:
                a = answers[i]
                f1 = "" if a.f1 is None else f"{a.f1:.3f}"
                tp = "" if a.token_presence is None else f"{a.token_presence:.3f}"
                row += [a.text, a.refused, _blank(a.correct), f1, tp, _blank(a.judge)]
                row += [_blank(a.citation_hit), _blank(a.model_citation_hit), a.cited_by_model]
                row.append("; ".join(a.citations))
                row += [
                    f"{a.timings.get(k, math.nan):.3f}"
                    for k in ("retrieval", "first_token", "total")
                ]
            writer.writerow(row)


def _no_nan(value: object) -> object:
    """JSON has no NaN: a percentile of no values becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    return value


def _blank(value: bool | None) -> object:
    return "" if value is None else value


def misses(
    items: Sequence[QAItem], results: Sequence[RetrievalResult], answers: list[AnswerResult] | None
) -> list[str]:
    """Lines naming what went wrong, for the report."""
    lines = []
    for i, item in enumerate(items):
        r = results[i]
        if item.source is not None and (r.rank is None or r.rank > 5):
            got = _where(*r.top[0]) if r.top else "nothing"
            lines.append(
                f"- {item.id} retrieval: expected {_where(item.source, item.page)} in the top 5, first hit {got} — {item.question}"
            )
        if answers is None:
            continue
        a = answers[i]
        text = " ".join(a.text.split())[:160]
        if item.answerable and a.refused:
            lines.append(f"- {item.id} wrongly refused — {item.question}")
        elif item.answerable and a.correct is False:
            lines.append(f"- {item.id} wrong answer (accepted: {' / '.join(item.answers)}): {text}")
        elif not item.answerable and not a.refused:
            lines.append(f"- {item.id} should have said I don't know: {text}")
    return lines


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
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def prepare_index(
    settings: Settings, docs: Sequence[Path] | None = None, *, progress: bool = False
) -> Index:
    """Open the stores; ingest ``docs`` (unchanged files are skipped), or the sample
    documents when no docs are given and the store is empty."""
    from ingest.pipeline import ingest_paths
    from retrieval import open_index

    index = open_index(settings)
    if not docs and index.store.count() == 0:
        docs = [SAMPLE_DOCS_DIR]
    if docs:
        report = ingest_paths(index, docs, progress=progress)
        print(f"Ingested into {settings.data_dir}: {report.summary()}", file=sys.stderr)
        for r in report.failed:
            print(f"failed: {r.source}: {r.reason}", file=sys.stderr)
    return index


def _run(args: argparse.Namespace, items: list[QAItem], settings: Settings) -> int:
    progress = not args.quiet
    index = prepare_index(settings, args.docs, progress=progress)

    mode = settings.retrieval_mode
    modes = list(MODES) if args.compare_modes else [mode]
    retrieval = {m: evaluate_retrieval(index, items, m, progress=progress) for m in modes}
    by_mode = {m: summarize_retrieval(items, retrieval[m]) for m in modes}

    answers = summary = None
    llm_name = None
    if not args.retrieval_only:
        from app.qa import QAService
        from llm import make_llm

        llm = make_llm(settings)
        llm_name = llm.name
        qa = QAService(index.retriever(mode), llm, top_k=settings.top_k, prompt=args.prompt)
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
