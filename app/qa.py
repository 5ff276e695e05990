"""The question-answering service: retrieve, show what was found, prompt, stream, check.

What a small model cannot be trusted with, the code does: it refuses without calling the
model when nothing relevant was found; after the model finishes, every sentence of the answer
is matched to the resource sentence that supports it (``app.attribution``: numbers must
appear in the support, the claim's subject too); citations are the resources that support a
sentence, each with its verbatim quote; unsupported sentences are listed; an answer with no
supported sentence becomes a refusal that shows the closest passages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from app import conflicts as conflicts_
from app import guard
from app.attribution import (
    Attribution,
    Passage,
    Refusal,
    SentenceSupport,
    answers_question,
    check_answer,
)
from app.citations import Citation, inferred_citations, snippet
from app.condense import condense
from app.context import CachedEmbedder, Excerpts, select_excerpts
from llm.base import LLM
from llm.press import Retry, revising
from llm.prompt import I_DONT_KNOW, build_prompt, build_revision
from llm.queue import Ticket
from retrieval.types import Embedder, Hit, Retriever

# Retrieval counts as confident when the best resource's question-chunk cosine reaches this;
# then a model "I don't know" is shown with the passage that may help. Above the relevance
# floor (0.25): the dev set's answerable questions have a top cosine of 0.45 or more at p90.
CONFIDENT_SIMILARITY = 0.45

EMPTY_QUESTION = "Please type a question."


@dataclass(frozen=True)
class Answer:
    text: str
    refused: bool
    citations: list[Citation] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)  # the resources the model was given
    timings: dict[str, float] = field(
        default_factory=dict
    )  # seconds: retrieval, first_token, total, check
    withheld: bool = False  # the model repeated what a planted instruction asked for
    unsupported: list[str] = field(default_factory=list)  # sentences no resource supports
    sentences: list[SentenceSupport] = field(default_factory=list)  # each answer sentence
    # under a refusal: the closest passages ("not_found") or the one that may help
    # ("dont_know"); ``lead`` introduces them
    passages: list[Passage] = field(default_factory=list)
    lead: str | None = None
    reason: str | None = None  # why refused: "no_hits", "not_found", "dont_know", "withheld"
    conflicts: list[conflicts_.Conflict] = field(default_factory=list)  # newer replaces older
    # the model said "I don't know", was asked again (llm.press) and this answer passed the
    # check and answers the question (a pressed answer that did not is a refusal, not this)
    pressed: bool = False
    # the check found that the model's first answer gave one subject's value to another;
    # told what the passage gives, the model answered again and this answer passed the check
    # and answers the question (``first_try`` keeps the first answer for the record)
    revised: bool = False
    first_try: str | None = None

    def to_json(self) -> dict:
        out = {
            "answer": self.text,
            "refused": self.refused,
            "citations": [c.to_json() for c in self.citations],
            "unsupported": list(self.unsupported),
            "sources": [
                {"n": n, "source": h.source, "page": h.page, "score": round(h.score, 6)}
                for n, h in enumerate(self.hits, start=1)
            ],
        }
        if self.sentences:
            out["sentences"] = [s.to_json() for s in self.sentences]
        if self.passages:
            out["lead"] = self.lead
            out["passages"] = [p.to_json() for p in self.passages]
        if self.reason:
            out["reason"] = self.reason
        out["conflicts"] = [c.to_json() for c in self.conflicts]
        if self.withheld:  # only then, so the usual shape stays as documented
            out["withheld"] = True
        if self.pressed:  # likewise: a second try after "I don't know" (llm.press)
            out["pressed"] = True
        if self.revised:  # likewise: a second try after the check (llm.press.Revised)
            out["revised"] = True
            out["first_try"] = self.first_try
        return out


class AnswerStream:
    """Iterate for the answer's text as it is generated; ``result()`` then gives the checked
    ``Answer`` (finishing the generation first if the caller stopped early).

    Retrieval is done when the stream is made: ``hits`` (the resources) and ``preview`` (the
    sentence of the top resource closest to the question) can be shown before the model's
    first token. Nothing is generated until the stream is iterated.

    What is yielded has passed ``app.guard``: if a retrieved chunk holds an instruction aimed
    at the model and the model starts repeating what it asked for, not even the start of it
    is shown, and the answer becomes ``guard.WITHHELD``. Every front end reads this stream,
    so the chat page, ``app.ask`` and ``app.eval`` are all covered."""

    def __init__(
        self,
        question: str,
        hits: list[Hit],
        tokens: Iterator[str] | None,
        fixed_text: str | None,
        started: float,
        retrieval_s: float,
        *,
        embedder: Embedder | None = None,
        excerpts: Excerpts | None = None,
        conflicts: Sequence[conflicts_.Conflict] = (),
        checked: dict[str, Attribution | Refusal] | None = None,
    ) -> None:
        self.question, self.hits = question, hits
        self.conflicts = list(conflicts)
        # answers already checked (by QAService's reviser, inside the model's turn), by text
        self._checked = checked if checked is not None else {}
        self._tokens, self._fixed = tokens, fixed_text
        self._embedder = embedder
        self.excerpts = excerpts
        self._parts: list[str] = []
        self._started, self._retrieval_s = started, retrieval_s
        self._first_token_s: float | None = None
        self._answer: Answer | None = None
        self._markers = guard.planted_markers((h.text for h in hits), question)
        self._shown = 0  # characters of the raw text already yielded
        self._first_try: str | None = None  # the first answer, when the model answers again

    @property
    def preview(self) -> Passage | None:
        """The top resource's sentence closest to the question (before any token)."""
        return self.excerpts.preview if self.excerpts else None

    @property
    def generating(self) -> bool:
        """Whether a model will be asked (False: a fixed reply such as "I don't know.")."""
        return self._fixed is None

    def __iter__(self) -> Iterator[str]:
        if self._fixed is not None:
            if not self._parts:
                self._parts.append(self._fixed)
                yield self._fixed
            return
        assert self._tokens is not None
        raw = "".join(self._parts)  # non-empty when a caller stopped early and resumes
        for token in self._tokens:
            if self._first_token_s is None:
                self._first_token_s = time.perf_counter() - self._started
            if self.revising and self._first_try is None:  # the second try begins
                self._first_try, self._parts, raw = "".join(self._parts), [], ""
                yield ""  # nothing to show; a front end may say that the answer is re-asked
            self._parts.append(token)
            raw += token
            if self.pressing or self.revising:  # shown only once checked: see result()
                continue
            safe = guard.shown_text(raw, self._markers)
            if safe == guard.WITHHELD:  # stop generating; show none of it
                close = getattr(self._tokens, "close", None)
                if close is not None:
                    close()
                return
            if len(safe) > self._shown:
                yield safe[self._shown :]
                self._shown = len(safe)
        if self.pressing or self.revising:
            return
        if len(raw) > self._shown and not guard.repeats_marker(raw, self._markers):
            yield raw[self._shown :]  # a held-back tail that turned out not to be a marker
            self._shown = len(raw)

    @property
    def revising(self) -> bool:
        """The check found that the model's answer gave one subject's value to another, and
        the model is answering again, told what the passage gives (``llm.press.Revised``):
        that answer is not streamed; ``result()`` has it, if the check supports it and it
        answers the question, or else the first answer's refusal."""
        return bool(getattr(self._tokens, "revised", False))

    @property
    def pressing(self) -> bool:
        """The model said "I don't know" and is answering a second time (``llm.press``):
        that answer is not streamed, since it is kept only if the check finds it supported
        and about the question; ``result()`` has it, or the refusal."""
        return bool(getattr(self._tokens, "pressed", False))

    @property
    def ticket(self) -> Ticket | None:
        """This answer's place in the model's queue (``llm.queue``), None without a queue."""
        return getattr(self._tokens, "ticket", None)

    def close(self) -> None:
        """Stop (a stop button, a closed tab): the model's turn goes to the next question at
        once, whether this one was waiting or generating."""
        close = getattr(self._tokens, "close", None)
        if close is not None:
            close()

    def result(self) -> Answer:
        if self._answer is None:
            for _ in self:
                pass
            answer = self._finish("".join(self._parts))
            self._answer = conflicts_.with_conflicts(answer, self.hits, self.conflicts)
        return self._answer

    def _finish(self, raw: str) -> Answer:
        timings = {"retrieval": self._retrieval_s}
        if self._first_token_s is not None:
            timings["first_token"] = self._first_token_s
        if self._fixed is not None:
            timings["total"] = time.perf_counter() - self._started
            refused = raw == I_DONT_KNOW
            reason = "no_hits" if refused else None
            return Answer(raw, refused=refused, hits=self.hits, timings=timings, reason=reason)
        if guard.repeats_marker(raw, self._markers):
            timings["total"] = time.perf_counter() - self._started
            # the resources stay listed: the notice asks an admin to check them
            citations = inferred_citations(self.hits)
            return Answer(
                guard.WITHHELD, True, citations, self.hits, timings, True, reason="withheld"
            )
        checking = time.perf_counter()
        assert self._embedder is not None
        embedder = self._embedder

        def check(text: str) -> Attribution | Refusal:
            if text not in self._checked:
                self._checked[text] = check_answer(
                    text, self.question, self.hits, embedder, min_similarity=CONFIDENT_SIMILARITY
                )
            return self._checked[text]

        checked = check(raw)
        pressed, revised = self.pressing, self._first_try is not None
        if (pressed or revised) and not (
            isinstance(checked, Attribution)
            and answers_question(checked, self.question, self.hits, embedder)
        ):  # a second try that is not a supported answer to the question: the first stands
            if pressed:  # the model's own "I don't know"
                checked, pressed = check(I_DONT_KNOW), False
            else:  # the first answer's refusal
                checked, revised = check(self._first_try or ""), False
        now = time.perf_counter()
        timings["check"] = now - checking
        timings["total"] = now - self._started
        if isinstance(checked, Refusal):
            return Answer(
                checked.text,
                True,
                [],
                self.hits,
                timings,
                unsupported=list(checked.withheld),
                passages=list(checked.passages),
                lead=checked.lead if checked.passages else None,
                reason=checked.reason,
            )
        return Answer(
            checked.text,
            False,
            _citations(checked, self.hits),
            self.hits,
            timings,
            unsupported=list(checked.unsupported),
            sentences=list(checked.sentences),
            pressed=pressed,
            revised=revised,
            first_try=(self._first_try or "").strip() if revised else None,
        )


def _citations(checked: Attribution, hits: list[Hit]) -> list[Citation]:
    return [
        Citation(
            c.n,
            c.source,
            c.page,
            snippet(hits[c.n - 1].text),
            quote=c.quote,
            quotes=c.quotes,
            checked=c.checked,
        )
        for c in checked.citations
    ]


class QAService:
    def __init__(
        self,
        retriever: Retriever,
        llm: LLM,
        *,
        top_k: int = 5,
        prompt: str = "icl",
        condense_with_model: bool = False,
        embedder: Embedder | None = None,
        context_tokens: int | None = None,
        press: bool = True,
        revise: bool = True,
    ) -> None:
        """``embedder``: for the answer check and the prompt's excerpts (default: the
        retriever's). ``context_tokens``: budget for the resources in the prompt, filled
        with the sentences that matter for the question (None: whole chunks). ``press``:
        when the backend can (``llm.press``), a model "I don't know" is asked once more.
        ``revise``: when the check finds that an answer gave one subject's value to another,
        the model is told what the passage gives and asked once more (``llm.press.Revised``)."""
        self.retriever, self.llm, self.top_k = retriever, llm, top_k
        self.prompt = prompt  # a name in llm.prompt.PROMPTS
        self.condense_with_model = condense_with_model
        embedder = embedder or getattr(retriever, "embedder", None)
        if embedder is None:
            raise ValueError("QAService needs an embedder for the answer check")
        self.embedder = CachedEmbedder(embedder)
        self.context_tokens = context_tokens
        self.press, self.revise = press, revise
        self.embed = self.embedder.embed  # to compare resources' sentences

    def standalone(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """The question as a search query that needs no conversation (see app.condense)."""
        if not history:
            return question
        return condense(question, history, self.llm if self.condense_with_model else None)

    def ask_stream(self, question: str, history: Sequence[tuple[str, str]] = ()) -> AnswerStream:
        """Retrieve now; the model starts when the stream is iterated. ``history`` is the
        earlier (question, answer) turns."""
        started = time.perf_counter()
        question = question.strip()
        if not question:
            return AnswerStream(question, [], None, EMPTY_QUESTION, started, 0.0)
        question = self.standalone(question, history)
        hits = self.retriever.search(question, self.top_k * conflicts_.POOL)
        if not hits:  # nothing cleared the relevance floor: don't let the model guess
            retrieval_s = time.perf_counter() - started
            return AnswerStream(question, [], None, I_DONT_KNOW, started, retrieval_s)
        hits = conflicts_.widen(
            hits, self.top_k, lambda docs, n: self.retriever.search_in(question, docs, n)
        )
        hits, found = conflicts_.arrange(hits, self.embed, question, self.top_k)  # newer first
        excerpts = select_excerpts(question, hits, self.embedder, budget=self.context_tokens)
        retrieval_s = time.perf_counter() - started
        # an older sentence a newer resource changes says so where the model reads it
        shown = conflicts_.mark_replaced(excerpts.resources, hits, found)
        prompt = build_prompt(question, shown, self.prompt)
        # a model "I don't know" is asked again (llm.press); _finish keeps the second
        # answer only when the check supports it and it answers the question. Asked
        # whenever resources passed the floor: the check, not a similarity, decides
        # (dev q55's answer stands in a resource at cosine 0.41)
        options = {"press": True} if self.press and getattr(self.llm, "presses", False) else {}
        checked: dict[str, Attribution | Refusal] = {}  # the reviser's checks, reused after
        revise = self._reviser(question, hits, prompt, checked) if self.revise else None
        if revise is None:
            tokens = self.llm.stream(prompt, **options)
        elif getattr(self.llm, "revises", False):  # llm.queue: both tries in one turn
            tokens = self.llm.stream(prompt, revise=revise, **options)  # type: ignore[call-arg]
        else:  # a backend without llm.queue: the same two tries, outside any queue
            tokens = revising(self.llm.stream, prompt, revise, **options)
        return AnswerStream(
            question,
            hits,
            tokens,
            None,
            started,
            retrieval_s,
            embedder=self.embedder,
            excerpts=excerpts,
            conflicts=found,
            checked=checked,
        )

    def _reviser(
        self,
        question: str,
        hits: list[Hit],
        prompt: str,
        checked: dict[str, Attribution | Refusal],
    ) -> Callable[[str], Retry | None]:
        """Given the model's first answer, a second try, or None. A second try only when
        the check finds no sentence supported and either what the passage gives for a
        subject the answer put another value on (``Refusal.corrections``: the model is told)
        or a sentence that stops where its value should be ("... is [1].": asked again with
        "[" not allowed, when the backend ``bans_markers``). The check's result goes into
        ``checked`` (by text), so the answer is not checked twice."""
        embedder = self.embedder
        bans_markers = bool(getattr(self.llm, "bans_markers", False))

        def revise(first: str) -> Retry | None:
            result = checked[first] = check_answer(
                first, question, hits, embedder, min_similarity=CONFIDENT_SIMILARITY
            )
            if not isinstance(result, Refusal):
                return None
            if result.corrections:
                return Retry(build_revision(prompt, first, result.corrections))
            if result.incomplete and bans_markers:
                return Retry(prompt, ban_markers=True)
            return None

        return revise

    def ask(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Answer:
        return self.ask_stream(question, history).result()
