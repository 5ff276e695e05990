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
CHECKED = ("kept", "moved", "added")  # a citation the answer check found supports a sentence
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
    top_similarity: float | None = None  # best question-chunk cosine (what the floor reads)
    # conflict questions: the newer document ranks above the older passage, as retrieved
    # and after app.conflicts put the resources in order (None for other questions)
    newer_first: bool | None = None
    newer_first_arranged: bool | None = None
    # the expected source (and page), and the expected source alone, in the resources the
    # model is given: the floor on, app.conflicts' order (newer first), top k; None: absent
    given_rank: int | None = None
    given_doc_rank: int | None = None


def newer_above(found: Sequence[tuple[str, int | None]], item: QAItem) -> bool | None:
    """Whether the newer document of a conflict question comes before the older passage
    (the older page, or any page of it when none is named); None for other questions."""
    if not item.conflict:
        return None
    newer = metrics.first_rank(found, item.newer)
    older = metrics.first_rank(found, item.older, item.older_page)
    return newer is not None and (older is None or newer < older)


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
    from app.conflicts import POOL, arrange, widen
    from app.context import CachedEmbedder

    sentences = CachedEmbedder(index.embedder)  # passages come back question after question

    ranker = index.retriever(mode, floor=-1)
    gate = index.retriever(mode)
    k = top_k
    results = []
    for item in tqdm(items, desc=f"Retrieval ({mode})", unit="q", disable=not progress):
        started = time.perf_counter()
        vector = index.embedder.embed([item.question])[0]  # once for both searches
        hits = ranker.search(item.question, max(RANK_DEPTH, k), vector=vector)
        seconds = time.perf_counter() - started
        found = [(h.source, h.page) for h in hits]
        rank, doc_rank = item.rank_in(found), item.rank_in(found, any_page=True)
        sims = [h.similarity for h in hits if h.similarity is not None]
        # the resources in the order the model is given them, as QAService puts them
        pool = gate.search(item.question, k * POOL, vector=vector)
        pool = widen(
            pool,
            k,
            lambda docs, n, q=item.question, v=vector: gate.search_in(q, docs, n, vector=v),
        )
        given = [(h.source, h.page) for h in arrange(pool, sentences.embed, item.question, k)[0]]
        given_rank, given_doc_rank = item.rank_in(given), item.rank_in(given, any_page=True)
        results.append(
            RetrievalResult(
                rank,
                doc_rank,
                not gate.search(item.question, k, vector=vector),
                seconds,
                tuple(found),
                max(sims) if sims else None,
                newer_above(found, item),
                newer_above(given, item),
                given_rank,
                given_doc_rank,
            )
        )
    return results


def best_floor(
    answerable: Sequence[float | None], unanswerable: Sequence[float | None]
) -> tuple[float, float, float] | None:
    """The relevance floor that best separates answerable questions (best chunk's cosine at
    or above it) from unanswerable ones (below it): the threshold with the most questions
    on the right side, ties to the lower floor (a wrong refusal costs more than a question
    the model can still refuse). Returns (floor, refused answerable, refused unanswerable)."""
    ans = [s for s in answerable if s is not None]
    una = [s for s in unanswerable if s is not None]
    if not ans or not una:
        return None
    best = None
    for t in sorted({round(s, 3) for s in ans + una}):
        right = sum(s >= t for s in ans) + sum(s < t for s in una)
        if best is None or right > best[0]:
            best = (right, t)
    t = best[1]
    return t, sum(s < t for s in ans) / len(ans), sum(s < t for s in una) / len(una)


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
    # what the model is given first (the floor on, app.conflicts' newer-first order)
    out["given_hit@1"] = metrics.mean(metrics.hit_at(r.given_rank, 1) for r in ranked)
    out["given_doc_hit@1"] = metrics.mean(metrics.hit_at(r.given_doc_rank, 1) for r in ranked)
    # the right page first, over the questions that name a page
    paged = [r for item, r in zip(items, results, strict=True) if item.page is not None]
    out["questions_paged"] = len(paged)
    out["page_hit@1"] = metrics.mean(metrics.hit_at(r.rank, 1) for r in paged)
    conflicts = [r for item, r in zip(items, results, strict=True) if item.conflict]
    out["conflict_questions"] = len(conflicts)
    out["newer_first"] = metrics.mean(float(bool(r.newer_first)) for r in conflicts)
    out["newer_first_arranged"] = metrics.mean(
        float(bool(r.newer_first_arranged)) for r in conflicts
    )
    out["floor_refused_answerable"] = metrics.mean(float(r.floor_refused) for r in answerable)
    out["floor_refused_unanswerable"] = metrics.mean(float(r.floor_refused) for r in unanswerable)
    floor = best_floor(
        [r.top_similarity for r in answerable], [r.top_similarity for r in unanswerable]
    )
    if floor is not None:
        out["best_floor"], out["best_floor_refused_answerable"] = floor[0], floor[1]
        out["best_floor_refused_unanswerable"] = floor[2]
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
    # the answer check (answered questions; None otherwise)
    citation_precision: float | None = None  # citations on the expected source / citations
    page_hit: bool | None = None  # a citation on the expected source and page
    all_supported: bool | None = None  # every sentence of the answer is supported
    quotes_verbatim: float | None = None  # quotes found verbatim in their chunk / quotes
    unsupported: int | None = None  # sentences no resource supports
    has_citation: bool | None = None  # at least one supported citation
    # conflict questions: the newer rule in the answer AND the newer document cited
    conflict_correct: bool | None = None
    # before the answer check, from the same run: refused by the floor or by the model
    # itself, and the share of the resources given to the model on the expected source
    # (what the old "sources: all resources given" listing showed)
    refused_before_check: bool = False
    given_precision: float | None = None
    # what the model wrote when the answer check turned it into a refusal (its sentences,
    # markers stripped): ``bench.recheck_answers`` replays them
    withheld: tuple[str, ...] = ()
    pressed: bool = False  # answered on the second try after "I don't know" (llm.press)
    revised: bool = False  # answered again after the check found a value on the wrong subject


def judge_answer(llm: LLM, item: QAItem, answer: str) -> bool | None:
    """Ask ``llm`` whether ``answer`` gives one of the accepted answers (YES/NO)."""
    prompt = JUDGE_PROMPT.format(
        question=item.question, accepted=" / ".join(item.answers), answer=answer
    )
    return metrics.parse_judgement("".join(llm.stream(prompt, max_tokens=4)))


def grade_answer(item: QAItem, answer: Answer, judge: LLM | None = None) -> AnswerResult:
    """Score one answer against the item's accepted answers, source and page."""
    cites = tuple(
        f"[{c.n}] {c.source}"
        + (f" p.{c.page}" if c.page is not None else "")
        + (f" ({c.checked})" if c.checked else "")
        for c in answer.citations
    )
    # the model's own markers that the check kept (it cited the resource that supports)
    own = [c for c in answer.citations if c.checked == "kept"]
    graded = item.answerable and not answer.refused
    checked = _check_figures(item, answer) if not answer.refused else {}

    def cites_expected(citations: list) -> bool | None:
        if not graded or item.source is None:
            return None
        return any(item.names(c.source, c.page) for c in citations)

    correct = f1 = presence = verdict = None
    if item.answerable:
        if item.match == "contains":
            correct = graded and metrics.answer_correct(answer.text, item.answers)
        f1 = metrics.best_f1(answer.text, item.answers) if graded else 0.0
        if item.tokens:
            presence = metrics.token_presence(answer.text, item.tokens) if graded else 0.0
        if judge is not None and item.answers:
            verdict = judge_answer(judge, item, answer.text) if graded else False
    conflict_correct = None
    if item.conflict and item.newer is not None:
        # checked: the answer check found the newer document supports a sentence (not
        # listed as given, nor put in front of an older citation by app.conflicts.cite_newer)
        vouched = [c for c in answer.citations if c.quote is not None and c.checked in CHECKED]
        cites_newer = any(metrics.same_source(c.source, item.newer) for c in vouched)
        conflict_correct = bool(graded and correct) and cites_newer
    given_precision = None
    if item.source is not None and answer.hits and not answer.refused:
        given_precision = metrics.mean(
            float(item.names(h.source, any_page=True)) for h in answer.hits
        )
    return AnswerResult(
        refused_before_check=answer.refused and answer.reason in ("no_hits", "dont_know"),
        withheld=tuple(answer.unsupported) if answer.reason == "not_found" else (),
        pressed=answer.pressed,
        revised=answer.revised,
        given_precision=given_precision,
        conflict_correct=conflict_correct,
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
        **checked,
    )


def _check_figures(item: QAItem, answer: Answer) -> dict:
    """What the answer check did for one answered question."""
    cited = [c for c in answer.citations if c.quote is not None]
    quotes = [(c.n, q) for c in cited for q in (c.quotes or (c.quote,))]
    verbatim = [q in answer.hits[n - 1].text for n, q in quotes]
    on_source = page = None
    if item.source is not None and cited:
        on_source = metrics.mean(float(item.names(c.source, any_page=True)) for c in cited)
        page = any(item.names(c.source, c.page) for c in cited)
    return {
        "citation_precision": on_source,
        "page_hit": page,
        "all_supported": not answer.unsupported,
        "quotes_verbatim": metrics.mean(float(v) for v in verbatim) if verbatim else None,
        "unsupported": len(answer.unsupported),
        "has_citation": bool(cited),
    }


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
        "conflict_accuracy": share(r.conflict_correct for r in answerable),
        "token_f1": metrics.mean(r.f1 for r in answerable),
        "token_presence": metrics.mean(r.token_presence for r in answerable),
        "judge_accuracy": share(r.judge for r in answerable),
        "citation_hit": share(r.citation_hit for r in answered),
        "model_citation_hit": share(r.model_citation_hit for r in answered),
        "cited_by_model": share(r.cited_by_model for r in answered),
        "citation_precision": metrics.mean(r.citation_precision for r in answered),
        "page_hit": share(r.page_hit for r in answered),
        "has_citation": share(r.has_citation for r in answered),
        "all_supported": share(r.all_supported for r in answered),
        "quotes_verbatim": metrics.mean(
            r.quotes_verbatim for item, r in pairs if r.quotes_verbatim is not None
        ),
        "unsupported_per_answer": metrics.mean(
            float(r.unsupported) for item, r in pairs if r.unsupported is not None
        ),
        "answer_chars_p50": metrics.percentile([float(len(r.text)) for r in answered], 50),
        "refused_unanswerable": share(r.refused for r in unanswerable),
        "refused_answerable": share(r.refused for r in answerable),
        "before_check_refused_unanswerable": share(r.refused_before_check for r in unanswerable),
        "before_check_refused_answerable": share(r.refused_before_check for r in answerable),
        "pressed_answerable": share(r.pressed for r in answerable),
        "pressed_unanswerable": share(r.pressed for r in unanswerable),
        "revised_answerable": share(r.revised for r in answerable),
        "revised_unanswerable": share(r.revised for r in unanswerable),
        "before_check_citation_precision": metrics.mean(r.given_precision for r in answered),
    }
    for name in ("retrieval", "first_token", "total", "check"):
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
