"""Run the questions: retrieval ranks (floor off) and refusals (floor on), then answers
graded for accuracy, citations, refusals and speed."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from app import metrics
from app.eval.qa_file import QAItem
from app.settings import SAMPLE_DOCS_DIR

if TYPE_CHECKING:
    from app.qa import Answer, QAService
    from app.settings import Settings
    from llm.base import LLM
    from retrieval import Index

MODES = ("bm25", "dense", "hybrid")
RANK_DEPTH = 10  # hits looked at for the ranking metrics: MRR is MRR@10
HIT_KS = (1, 3, 5)

JUDGE_PROMPT = """You are grading an answer to a question about company documents.

Question: {question}
Correct answer: {accepted}
Answer to grade: {answer}

Does the answer to grade state the correct answer? Reply with one word: YES or NO."""


# ---- retrieval ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RetrievalResult:
    rank: int | None  # of the expected source (and page), floor off; None when not found
    doc_rank: int | None  # of the expected source, any page
    floor_refused: bool  # the app's relevance floor left nothing: it would say "I don't know"
    seconds: float  # the floor-off search
    top: tuple[tuple[str, int | None], ...]  # (source, page) of the first hits


def evaluate_retrieval(
    index: Index,
    items: Sequence[QAItem],
    mode: str,
    *,
    top_k: int = 5,
    progress: bool = False,
) -> list[RetrievalResult]:
    """Rank of the expected source with the floor off (``floor=-1``), and whether the
    configured floor would refuse, for each question."""
    ranker = index.retriever(mode, floor=-1)
    gate = index.retriever(mode)
    k = top_k
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
    out["doc_hit@1"] = metrics.mean(metrics.hit_at(r.doc_rank, 1) for r in ranked)
    out["doc_hit@5"] = metrics.mean(metrics.hit_at(r.doc_rank, 5) for r in ranked)
    # the right page first, over the questions that name a page
    paged = [r for item, r in zip(items, results, strict=True) if item.page is not None]
    out["questions_paged"] = len(paged)
    out["page_hit@1"] = metrics.mean(metrics.hit_at(r.rank, 1) for r in paged)
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


def prepare_index(
    settings: Settings, docs: Sequence[Path] | None = None, *, progress: bool = False
) -> Index:
    """Open the stores; ingest ``docs`` (unchanged files are skipped), or the sample
    documents when no docs are given and the store is empty."""
    from app.wiring import ingest_config, open_index
    from ingest.pipeline import ingest_paths

    index = open_index(settings)
    if not docs and index.store.count() == 0:
        docs = [SAMPLE_DOCS_DIR]
    if docs:
        report = ingest_paths(index, docs, config=ingest_config(settings), progress=progress)
        print(f"Ingested into {settings.data_dir}: {report.summary()}", file=sys.stderr)
        for r in report.failed:
            print(f"failed: {r.source}: {r.reason}", file=sys.stderr)
    return index
