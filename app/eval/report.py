"""What an evaluation writes: the summary tables (text and Markdown), the per-question CSV
and the list of what went wrong."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from app.eval.qa_file import QAItem
from app.eval.runner import AnswerResult, RetrievalResult
from app.settings import REPO_ROOT

DEFAULT_OUT = REPO_ROOT / "data" / "eval" / "out"

# ---- output -------------------------------------------------------------------------------
RETRIEVAL_ROWS = [
    ("hit@1", "hit@1"),
    ("hit@3", "hit@3"),
    ("hit@5", "hit@5"),
    ("MRR@10", "mrr@10"),
    ("right document at rank 1", "doc_hit@1"),
    ("right document in top 5", "doc_hit@5"),
    ("right page at rank 1 (questions with a page)", "page_hit@1"),
    ("hit@1 in the order the model is given (newer first)", "given_hit@1"),
    ("... right document first, as given", "given_doc_hit@1"),
    ("conflicts: newer document above the older", "newer_first"),
    ("... in the order the model is given", "newer_first_arranged"),
    ("floor refuses answerable", "floor_refused_answerable"),
    ("floor refuses unanswerable", "floor_refused_unanswerable"),
    ("best-separating floor (cosine)", "best_floor"),
    ("... it refuses answerable", "best_floor_refused_answerable"),
    ("... it refuses unanswerable", "best_floor_refused_unanswerable"),
    ("retrieval p50 (ms)", "retrieval_p50_s"),
    ("retrieval p95 (ms)", "retrieval_p95_s"),
]
ANSWER_ROWS = [
    ("accuracy (accepted answer in the answer)", "accuracy"),
    ("conflicts: newer rule answered and newer document cited", "conflict_accuracy"),
    ("token F1 (best accepted answer)", "token_f1"),
    ("token presence", "token_presence"),
    ("judge accuracy", "judge_accuracy"),
    ("citations include the expected source", "citation_hit"),
    ("citation precision (on the expected source / all)", "citation_precision"),
    ("cited the right page", "page_hit"),
    ("answers with a supported citation", "has_citation"),
    ("answers whose every sentence is supported", "all_supported"),
    ("quotes found verbatim in their chunk", "quotes_verbatim"),
    ("unsupported sentences per answer", "unsupported_per_answer"),
    ("... the model's own [n] kept by the check", "model_citation_hit"),
    ("answers where the model cited the right resource itself", "cited_by_model"),
    ("answer length p50 (characters, answered)", "answer_chars_p50"),
    ('unanswerable answered "I don\'t know"', "refused_unanswerable"),
    ("answerable wrongly refused", "refused_answerable"),
    (
        '... before the answer check: unanswerable "I don\'t know"',
        "before_check_refused_unanswerable",
    ),
    ("... before the answer check: answerable refused", "before_check_refused_answerable"),
    ("answerable answered on a second try (llm.press)", "pressed_answerable"),
    ("unanswerable answered on a second try (llm.press)", "pressed_unanswerable"),
    ("answerable answered again after the check (llm.press.Revised)", "revised_answerable"),
    ("unanswerable answered again after the check", "revised_unanswerable"),
    (
        "... before the check: resources listed on the expected source",
        "before_check_citation_precision",
    ),
    ("retrieval p50 / p95 (s)", "retrieval"),
    ("first token p50 / p95 (s)", "first_token"),
    ("total p50 / p95 (s)", "total"),
    ("answer check p50 / p95 (s)", "check"),
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
        [label, *(_fmt(s.get(key), key) for s in by_mode.values())] for label, key in RETRIEVAL_ROWS
    ]
    return [header, *rows]


def answer_table(summary: dict) -> list[list[str]]:
    rows = [["metric", "value"]]
    for label, key in ANSWER_ROWS:
        if key in ("retrieval", "first_token", "total", "check"):
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
            f"newer_first_{mode}",
            f"retrieval_ms_{mode}",
            f"given_rank_{mode}",
        ]
    if answers is not None:
        header += ["answer", "refused", "correct", "conflict_correct", "f1", "token_presence"]
        header += ["judge"]
        header += ["citation_hit", "model_citation_hit", "cited_by_model", "citations"]
        header += ["retrieval_s", "first_token_s", "total_s", "withheld"]
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
                    _blank(r.newer_first),
                    f"{r.seconds * 1000:.1f}",
                    r.given_rank or "",
                ]
            if answers is not None:
                a = answers[i]
                f1 = "" if a.f1 is None else f"{a.f1:.3f}"
                tp = "" if a.token_presence is None else f"{a.token_presence:.3f}"
                row += [a.text, a.refused, _blank(a.correct), _blank(a.conflict_correct), f1, tp]
                row += [_blank(a.judge)]
                row += [_blank(a.citation_hit), _blank(a.model_citation_hit), a.cited_by_model]
                row.append("; ".join(a.citations))
                row += [
                    f"{a.timings.get(k, math.nan):.3f}"
                    for k in ("retrieval", "first_token", "total")
                ]
                row.append(" ".join(a.withheld))  # the model's text the check refused
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
        if r.newer_first is False:
            lines.append(
                f"- {item.id} conflict: {item.older} ranked above the newer {item.newer}"
                + ("" if r.newer_first_arranged else ", also as given to the model")
                + f" — {item.question}"
            )
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
