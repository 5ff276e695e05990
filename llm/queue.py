"""A first-come-first-served queue in front of a backend that answers one question at a time.

The embedded model (one llama.cpp context) and a local transformers model generate one
answer at a time. A bare ``threading.Lock`` held for a whole answer leaves the others
waiting in no particular order and with no word of why. Here each answer takes a numbered
ticket when it is asked (``AnswerQueue.join``), so:

- answers start in the order they were asked;
- ``Ticket.position`` says how many questions are ahead (the chat shows it while waiting);
- a stream that is closed (a stop, a closed tab, an answer nobody reads any more) leaves
  the queue at once, whether it was waiting or generating: the next one starts;
- ``answer_timeout_s`` bounds one answer, from its turn to its last token (checked as
  tokens arrive: a model still reading a long prompt is stopped at its first token).

Backends that serve many at once (an OpenAI-compatible server: vLLM batches them) get no
queue, only the time bound: ``QueuedLLM(llm, queue=None, ...)``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import threading
import time
from collections.abc import Callable, Iterator

from llm.base import LLM
from llm.errors import LLMError
from llm.press import Retry, revising

TIMEOUT_HINT = "RAG_ANSWER_TIMEOUT_S"


class AnswerQueue:
    """Tickets in the order they were taken; the first ``slots`` of them are served."""

    def __init__(self, slots: int = 1) -> None:
        self.slots = slots
        self._cond = threading.Condition()
        self._line: list[Ticket] = []
        self._numbers = itertools.count(1)

    def join(self) -> Ticket:
        with self._cond:
            ticket = Ticket(self, next(self._numbers))
            self._line.append(ticket)
            return ticket

    def __len__(self) -> int:
        """Tickets in the queue, served or waiting."""
        with self._cond:
            return len(self._line)

    def _ahead(self, ticket: Ticket) -> int | None:
        with self._cond:
            if ticket not in self._line:
                return None
            return max(0, self._line.index(ticket) - self.slots + 1)

    def _leave(self, ticket: Ticket) -> None:
        with self._cond:
            if ticket in self._line:
                self._line.remove(ticket)
                self._cond.notify_all()

    def _wait(self, ticket: Ticket, timeout: float | None) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: ticket not in self._line or self._line.index(ticket) < self.slots,
                timeout,
            ) and (ticket in self._line)


class Ticket:
    """One answer's place in an ``AnswerQueue``."""

    def __init__(self, queue: AnswerQueue, number: int) -> None:
        self.queue, self.number = queue, number

    @property
    def ahead(self) -> int | None:
        """Questions ahead of this one (0: its turn); None once it has left the queue."""
        return self.queue._ahead(self)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until it is this ticket's turn (True) or ``timeout`` seconds pass (False)."""
        return self.queue._wait(self, timeout)

    def release(self) -> None:
        """Leave the queue (waiting or served); the next ticket's turn comes. Idempotent."""
        self.queue._leave(self)


class QueuedAnswer(Iterator[str]):
    """The tokens of one answer, behind its ticket. Iterating waits for the turn first;
    ``close()`` gives the turn up at once, whether waiting or generating."""

    def __init__(
        self,
        open_tokens: Callable[[], Iterator[str]],
        ticket: Ticket | None,
        timeout_s: float | None,
    ) -> None:
        self.ticket = ticket
        self._open, self._timeout_s = open_tokens, timeout_s
        self._gen: Iterator[str] | None = None
        self._inner: Iterator[str] | None = None  # the backend's tokens, once its turn came
        self._closed = False

    @property
    def pressed(self) -> bool:
        """The backend's answer is a second try after "I don't know" (``llm.press``)."""
        return bool(getattr(self._inner, "pressed", False))

    @property
    def revised(self) -> bool:
        """The tokens now coming are a second try after the check (``llm.press.Revised``)."""
        return bool(getattr(self._inner, "revised", False))

    @property
    def first_text(self) -> str:
        """The first try's text, once ``revised``."""
        return str(getattr(self._inner, "first_text", ""))

    def __iter__(self) -> QueuedAnswer:
        return self

    def __next__(self) -> str:
        if self._closed:
            raise StopIteration
        if self._gen is None:
            self._gen = self._run()
        return next(self._gen)

    def _run(self) -> Iterator[str]:
        try:
            if self.ticket is not None:
                self.ticket.wait()
            if self._closed:  # stopped from another thread while waiting
                return
            started = time.monotonic()
            tokens = self._inner = self._open()
            try:
                for token in tokens:
                    if self._closed:
                        return
                    if self._timeout_s is not None and time.monotonic() - started > self._timeout_s:
                        raise LLMError(
                            f"The answer took longer than {self._timeout_s:g} s and was stopped "
                            f"({TIMEOUT_HINT}). Try a shorter question, or ask an admin to raise "
                            "the limit or move the model to a faster server."
                        )
                    yield token
            finally:
                close = getattr(tokens, "close", None)
                if close is not None:
                    close()  # the backend stops generating and frees its lock
        finally:
            if self.ticket is not None:
                self.ticket.release()

    def close(self) -> None:
        """Stop: leave the queue or stop generating, now."""
        self._closed = True
        if self.ticket is not None:
            self.ticket.release()  # also wakes this answer if it waits in another thread
        if self._gen is not None:
            # runs _run's finally blocks; from another thread while it runs, it stops at
            # its next token instead
            with contextlib.suppress(ValueError):
                self._gen.close()  # type: ignore[attr-defined]

    def __del__(self) -> None:  # an abandoned answer must not hold the model
        if self.ticket is not None:
            self.ticket.release()


class QueuedLLM:
    """An ``LLM`` whose answers go through ``queue`` (None: no queue, for backends that
    serve many at once) and are bounded by ``answer_timeout_s``. Everything else (``load``,
    the backend's own attributes) is the wrapped backend's."""

    def __init__(
        self, inner: LLM, *, queue: AnswerQueue | None, answer_timeout_s: float | None = None
    ) -> None:
        self.inner, self.queue, self.answer_timeout_s = inner, queue, answer_timeout_s
        self.name = inner.name

    revises = True  # stream(..., revise=): see llm.press.Revised

    def stream(
        self,
        prompt: str,
        *,
        max_tokens: int | None = None,
        press: bool = False,
        revise: Callable[[str], Retry | None] | None = None,
    ) -> QueuedAnswer:
        """``press`` (only for a backend that ``presses``, see ``llm.press``) and ``revise``
        (given the first try's text, a second try or None; ``llm.press.Revised``): all
        tries are one turn in the queue."""
        ticket = self.queue.join() if self.queue is not None else None
        options = {"press": True} if press else {}
        stream = functools.partial(self.inner.stream, max_tokens=max_tokens)
        if revise is None:
            return QueuedAnswer(lambda: stream(prompt, **options), ticket, self.answer_timeout_s)
        return QueuedAnswer(
            lambda: revising(stream, prompt, revise, **options), ticket, self.answer_timeout_s
        )

    def __getattr__(self, name: str):  # noqa: ANN204 - the backend's own attributes
        return getattr(self.inner, name)
