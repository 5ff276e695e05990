"""Second tries: when the model says "I don't know" although the resources hold the answer
(``Pressed``), and when the answer check found that its answer gave one subject's value to
another (``Revised``).

On the dev set the embedded 1.5B model said "I don't know." to 7 of 64 answerable questions
whose answer stood in its first resource ("Spaces are rented monthly for EUR 35" for "How
much does a parking space in the new office garage cost per month?"). Asked again with the
refusal's first word ("I") not allowed as the answer's first token, it wrote the answer to 4
of them. The answer check (``app.attribution``) then decides, as for every answer, what the
resources support, and ``QAService`` keeps a pressed answer only when it is supported and
about the question; otherwise the model's own "I don't know." stands.

``press`` is backend-neutral: a backend that can forbid a first token (llama.cpp through a
logits processor) offers ``presses = True`` and ``stream(..., press=True)``, built on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from llm.prompt import REFUSAL_PATTERN

_REFUSAL_OPENINGS = ("i don't know", "i do not know")
_REFUSAL = re.compile(REFUSAL_PATTERN, re.I)


def _may_be_refusal(text: str) -> bool:
    """Whether ``text`` so far is, or may still become, an answer that opens with "I don't
    know" (held back until it is clear: a pressed answer replaces it)."""
    t = re.sub(r"\s+", " ", text.replace("\u2019", "'")).strip().lower()
    return any(o.startswith(t) or t.startswith(o) for o in _REFUSAL_OPENINGS)


class Pressed(Iterator[str]):
    """The tokens of the first try, or, when it was a refusal, of the second (``pressed``
    says which, once iterated). The first try's tokens are held back while they may still
    be "I don't know", so a person never sees a refusal that is then replaced."""

    def __init__(
        self, first: Callable[[], Iterator[str]], again: Callable[[], Iterator[str]]
    ) -> None:
        self.pressed = False
        self._gen = self._run(first, again)

    def __next__(self) -> str:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()

    def _run(
        self, first: Callable[[], Iterator[str]], again: Callable[[], Iterator[str]]
    ) -> Iterator[str]:
        held: str | None = ""
        tokens = first()
        try:
            for token in tokens:
                if held is None:
                    yield token
                    continue
                held += token
                if not _may_be_refusal(held):
                    yield held
                    held = None
        finally:
            _close(tokens)
        if held is None:
            return
        if not _REFUSAL.search(held.replace("\u2019", "'")):
            if held:
                yield held  # a short answer that looked like a refusal's start ("I")
            return
        self.pressed = True
        tokens = again()
        try:
            yield from tokens
        finally:
            _close(tokens)


def _close(tokens: Iterator[str]) -> None:
    close = getattr(tokens, "close", None)
    if close is not None:
        close()


@dataclass(frozen=True)
class Retry:
    """A second try after the check: its prompt, and whether "[" may not be written in it
    (``ban_markers``, for a backend that ``bans_markers``: the model put "[1]" where the
    value belongs, "The email address ... is [1].")."""

    prompt: str
    ban_markers: bool = False

    def options(self) -> dict[str, bool]:
        """What ``stream`` is given besides the prompt."""
        return {"ban_markers": True} if self.ban_markers else {}


class Revised(Iterator[str]):
    """The first try's tokens, as they come; then, when ``revise`` (given the first try's
    whole text) returns a way to ask again, the second try's tokens, with ``revised`` set
    before the first of them (the caller shows them only once checked). ``first_text`` is
    the first try's text. A first try that was itself pressed is not revised.

    On the dev set the embedded model answered "EUR 170" for the London hotel cap: 170 is
    the cap for Germany, and the next sentence gives London's (EUR 220). Told so by the
    answer check ("the passage gives 220 for 'london', not 170"), it answered "EUR 220".
    """

    def __init__(
        self,
        first: Callable[[], Iterator[str]],
        revise: Callable[[str], Callable[[], Iterator[str]] | None],
    ) -> None:
        self.revised = False
        self.first_text = ""
        self._tokens: Iterator[str] | None = None
        self._gen = self._run(first, revise)

    @property
    def pressed(self) -> bool:
        return bool(getattr(self._tokens, "pressed", False)) and not self.revised

    def __next__(self) -> str:
        return next(self._gen)

    def close(self) -> None:
        self._gen.close()

    def _run(
        self,
        first: Callable[[], Iterator[str]],
        revise: Callable[[str], Callable[[], Iterator[str]] | None],
    ) -> Iterator[str]:
        text = ""
        tokens = self._tokens = first()
        try:
            for token in tokens:
                text += token
                yield token
        finally:
            _close(tokens)
        if getattr(tokens, "pressed", False):
            return
        again = revise(text)
        if again is None:
            return
        self.first_text, self.revised = text, True
        tokens = self._tokens = again()
        try:
            yield from tokens
        finally:
            _close(tokens)


def revising(
    stream: Callable[..., Iterator[str]],
    prompt: str,
    revise: Callable[[str], Retry | None],
    **options: bool,
) -> Revised:
    """``stream(prompt, **options)``, then, when ``revise`` (given its text) returns a
    ``Retry``, ``stream`` again with the retry's prompt and options (``Revised``)."""

    def again(text: str) -> Callable[[], Iterator[str]] | None:
        retry = revise(text)
        if retry is None:
            return None
        return lambda: stream(retry.prompt, **retry.options())

    return Revised(lambda: stream(prompt, **options), again)
