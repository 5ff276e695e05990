"""What goes into the prompt: the sentences of each resource that matter for the question.

On a CPU the model reads the prompt at about 45 tokens/s, so the first token waits for every
token of the resources. Each resource keeps its best-matching sentences (scored against the
question as the answer check scores claims, ``app.attribution.score_sentences``) and their
neighbours, within a budget of tokens shared by all resources; a short resource stays whole.
The excerpts keep their resource's file and page, so citations still point at the page, and
their sentences are verbatim runs of the chunk's text joined by " … " where a run was cut.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.attribution import Embedder, Passage, Resource, ScoredSentence, best_passage
from app.attribution import score_sentences as _score_sentences

CHARS_PER_TOKEN = 4.0  # English prose in Qwen's tokenizer: 4.0-4.5 characters a token
GAP = " … "
# A resource's best sentence is always kept, with this many neighbours on each side when the
# budget allows: the sentence before often names the subject ("Travel expenses."), the one
# after its conditions.
WINDOW = 1
MIN_CHARS = 60  # every resource keeps at least this much: its number stays meaningful


@dataclass(frozen=True)
class Excerpt:
    """A resource as the prompt shows it (fits ``llm.prompt.Resource``)."""

    text: str
    source: str
    page: int | None
    effective: str | None = None  # the document's date, shown by the prompt
    context: str = ""  # title > heading (``Hit.context``): what the answer check reads as topic


@dataclass(frozen=True)
class Excerpts:
    resources: list[Resource]  # what the prompt numbers 1..n, in the hits' order
    preview: Passage | None  # the best sentence of all, for the "found" status
    scored: list[list[ScoredSentence]]


def tokens(text: str) -> int:
    """Estimated tokens of ``text`` (no tokenizer: this runs before any model is loaded)."""
    return int(len(text) / CHARS_PER_TOKEN + 0.5)


def _excerpt(res: Resource, sents: list[ScoredSentence], budget_chars: int) -> str:
    """The best sentences of one resource within ``budget_chars``, in document order; when
    not even the best sentence fits, its beginning, cut at a word."""
    if len(res.text) <= budget_chars or not sents:
        return res.text
    chosen: set[int] = set()
    used = 0
    for best in sorted(sents, key=lambda s: -s.score):
        window = range(max(0, best.index - WINDOW), min(len(sents), best.index + WINDOW + 1))
        for added in ([i for i in window if i not in chosen], [best.index]):
            cost = sum(sents[i].span.end - sents[i].span.start + len(GAP) for i in added)
            if added and used + cost <= budget_chars:
                chosen.update(added)
                used += cost
                break
    if not chosen:
        best = max(sents, key=lambda s: s.score).span
        cut = res.text[best.start : best.start + budget_chars].rsplit(" ", 1)[0]
        return cut + " …"
    groups: list[list[int]] = []
    for i in sorted(chosen):
        if groups and i == groups[-1][-1] + 1:
            groups[-1].append(i)
        else:
            groups.append([i])
    return GAP.join(res.text[sents[g[0]].span.start : sents[g[-1]].span.end] for g in groups)


def select_excerpts(
    question: str,
    hits: Sequence[Resource],
    embedder: Embedder | Callable[[list[str]], list[list[float]]],
    *,
    budget: int | None,
) -> Excerpts:
    """The hits as the prompt should show them, within ``budget`` tokens in all (None: whole
    chunks). The budget is shared in proportion to rank: the first resource gets the most."""
    scored = _score_sentences(question, hits, embedder)
    preview = best_passage(hits[:1], scored[:1]) if hits else None
    if budget is None or sum(tokens(h.text) for h in hits) <= budget:
        return Excerpts(list(hits), preview, scored)
    # rank weights 1, 1/2, 1/3, ... : with 5 resources the first gets 44 % of the budget;
    # what a resource leaves unused goes to the ones after it
    weights = [1 / r for r in range(1, len(hits) + 1)]
    left = budget * CHARS_PER_TOKEN
    out: list[Resource] = []
    for i, (hit, sents) in enumerate(zip(hits, scored, strict=True)):
        chars = max(MIN_CHARS, int(left * weights[i] / sum(weights[i:])))
        text = _excerpt(hit, sents, chars)
        left -= len(text)
        out.append(
            Excerpt(
                text,
                hit.source,
                hit.page,
                getattr(hit, "effective", None),
                getattr(hit, "context", ""),
            )
        )
    return Excerpts(out, preview, scored)


class CachedEmbedder:
    """An embedder that remembers the vectors of the last ``size`` texts it embedded.

    The prompt's excerpts and the answer check embed the same resource sentences for one
    question, and popular chunks come back question after question; each is embedded once.
    Thread-safe: chat sessions share one."""

    def __init__(self, embedder: Embedder, size: int = 8192) -> None:
        self._embedder = embedder
        self._size = size
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
            for t in known:
                self._cache.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        fresh = dict(zip(missing, self._embedder.embed(missing), strict=True)) if missing else {}
        with self._lock:
            self._cache.update(fresh)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return [known[t] if t in known else fresh[t] for t in texts]
