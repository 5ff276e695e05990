"""The question-answering service: retrieve, prompt, stream, cite.

What a small model cannot be trusted with, the code does: it refuses without calling the
model when nothing relevant was found, builds citations from the chunks' own metadata, and
drops citations from an "I don't know".
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from app import guard
from app.citations import Citation, inferred_citations, is_refusal, resolve_citations
from app.condense import condense
from llm.base import LLM
from llm.prompt import I_DONT_KNOW, build_prompt
from llm.queue import Ticket
from retrieval.types import Hit, Retriever

EMPTY_QUESTION = "Please type a question."


@dataclass(frozen=True)
class Answer:
    text: str
    refused: bool
    citations: list[Citation] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)  # the resources the model was given
    timings: dict[str, float] = field(
        default_factory=dict
    )  # seconds: retrieval, first_token, total
    withheld: bool = False  # the model repeated what a planted instruction asked for

    def to_json(self) -> dict:
        out = {
            "answer": self.text,
            "refused": self.refused,
            "citations": [c.to_json() for c in self.citations],
            "sources": [
                {"n": n, "source": h.source, "page": h.page, "score": round(h.score, 6)}
                for n, h in enumerate(self.hits, start=1)
            ],
        }
        if self.withheld:  # only then, so the usual shape stays as documented
            out["withheld"] = True
        return out


class AnswerStream:
    """Iterate for the answer's text as it is generated; ``result()`` then gives the
    ``Answer`` (finishing the generation first if the caller stopped early).

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
    ) -> None:
        self.question, self.hits = question, hits
        self._tokens, self._fixed = tokens, fixed_text
        self._parts: list[str] = []
        self._started, self._retrieval_s = started, retrieval_s
        self._first_token_s: float | None = None
        self._answer: Answer | None = None
        self._markers = guard.planted_markers((h.text for h in hits), question)
        self._shown = 0  # characters of the raw text already yielded

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
            self._parts.append(token)
            raw += token
            safe = guard.shown_text(raw, self._markers)
            if safe == guard.WITHHELD:  # stop generating; show none of it
                close = getattr(self._tokens, "close", None)
                if close is not None:
                    close()
                return
            if len(safe) > self._shown:
                yield safe[self._shown :]
                self._shown = len(safe)
        if len(raw) > self._shown and not guard.repeats_marker(raw, self._markers):
            yield raw[self._shown :]  # a held-back tail that turned out not to be a marker
            self._shown = len(raw)

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
            self._answer = self._finish("".join(self._parts))
        return self._answer

    def _finish(self, raw: str) -> Answer:
        timings = {"retrieval": self._retrieval_s, "total": time.perf_counter() - self._started}
        if self._first_token_s is not None:
            timings["first_token"] = self._first_token_s
        if self._fixed is not None:
            return Answer(raw, refused=raw == I_DONT_KNOW, hits=self.hits, timings=timings)
        if guard.repeats_marker(raw, self._markers):
            # the resources stay listed: the notice asks an admin to check them
            citations = inferred_citations(self.hits)
            return Answer(guard.WITHHELD, True, citations, self.hits, timings, withheld=True)
        text, citations = resolve_citations(raw, self.hits)
        if not text or (is_refusal(text) and not citations):
            return Answer(text or I_DONT_KNOW, True, [], self.hits, timings)
        return Answer(text, False, citations or inferred_citations(self.hits), self.hits, timings)


class QAService:
    def __init__(
        self,
        retriever: Retriever,
        llm: LLM,
        *,
        top_k: int = 5,
        prompt: str = "icl",
        condense_with_model: bool = False,
    ) -> None:
        self.retriever, self.llm, self.top_k = retriever, llm, top_k
        self.prompt = prompt  # a name in llm.prompt.PROMPTS
        self.condense_with_model = condense_with_model

    def standalone(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """The question as a search query that needs no conversation (see app.condense)."""
        if not history:
            return question
        return condense(question, history, self.llm if self.condense_with_model else None)

    def ask_stream(self, question: str, history: Sequence[tuple[str, str]] = ()) -> AnswerStream:
        """Start answering. ``history`` is the earlier (question, answer) turns."""
        started = time.perf_counter()
        question = question.strip()
        if not question:
            return AnswerStream(question, [], None, EMPTY_QUESTION, started, 0.0)
        question = self.standalone(question, history)
        hits = self.retriever.search(question, self.top_k)
        retrieval_s = time.perf_counter() - started
        if not hits:  # nothing cleared the relevance floor: don't let the model guess
            return AnswerStream(question, [], None, I_DONT_KNOW, started, retrieval_s)
        tokens = self.llm.stream(build_prompt(question, hits, self.prompt))
        return AnswerStream(question, hits, tokens, None, started, retrieval_s)

    def ask(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Answer:
        return self.ask_stream(question, history).result()
