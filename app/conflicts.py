"""Which resources of an answer disagree, and which one wins: the newer document.

A small model cannot be trusted to notice that a memo of September changes a handbook page
of January, nor to tell which one is newer. The code decides and shows it:

- **A point in conflict** is a pair of sentences from two different documents with
  different effective dates that say nearly the same thing (cosine similarity of their
  embeddings at least ``SAME_POINT``) but with different numbers or dates (each states a
  value the other lacks; an old value the newer one mentions, "instead of the previous 2
  days", does not count), or where the newer one withdraws the rule ("no longer"). One of
  the two must be about the question (``ABOUT_QUESTION``). Sentences are compared, not whole
  chunks: a chunk holds several rules, and only some of them change.
- **The newer document goes first**: in the resources given to the model, each newer
  passage is moved in front of the older passage it conflicts with; a newer passage just
  below the first ``top_k`` is brought in (``POOL``), so an older text that ranks first
  cannot hide it.
- **A document that says it replaces another** ("supersedes section 6 of the Employee
  Handbook", recorded at ingest by ``ingest.dates.supersedes``): the older passage's
  conflicting sentences are removed from what the model reads, so the model cannot cite it
  for that point, and ``cite_newer`` makes sure an answer that still cites it cites the
  newer document too, in front. A passage of a replaced section with no sentence in
  conflict goes behind the newer one when the newer one is about the question as much.

Pure: the embedding function is passed in (``QAService`` gives the retriever's embedder).
"""

from __future__ import annotations

import calendar
import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import PurePosixPath
from typing import TypeVar

import numpy as np

from ingest.dates import Supersedes
from retrieval.types import Hit

Embed = Callable[[list[str]], list[list[float]]]
R = TypeVar("R")  # a resource as the prompt shows it: a Hit or an app.context.Excerpt

# Calibrated on the sample documents with all-MiniLM-L6-v2: the pairs that restate one rule
# with a new number score 0.70-0.93 (see tests/test_conflicts.py); unrelated sentences that
# share a topic ("hotel" and "travel desk") stay below 0.6.
SAME_POINT = 0.70
# a point is shown with an answer only when one of its sentences is about the question
ABOUT_QUESTION = 0.5
# ... or when it is what both passages say on the question (each sentence the closest to the
# question of its passage's sentences that can disagree), and at least this close: a
# question in other words than the documents' ("I bought something with my own money. How
# long do I have to get reimbursed?") is at 0.43 from the deadline both state, while the
# closest point of an unrelated rule ("remote days from 1 October" for "the date we move
# into the new office") can reach 0.47 but is not what its passages say best on the
# question; see tests/test_conflicts.py
ABOUT_ANSWER = 0.4
MAX_POINTS = 3  # per conflict shown
AS_RELEVANT = 0.05  # cosine similarity with the question; see _as_relevant
POOL = 3  # QAService searches POOL * top_k passages; arrange keeps top_k (see arrange)
MAX_SENTENCES = 80  # per answer: enough for top_k chunks of 800 characters

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(*]*[A-Z0-9])|\s+-\s+(?=\**[A-Z])|\s+•\s+")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,:]\d+)*)(?![\w])")
_REFERENCE = re.compile(r"\b(?:section|page|chapter|§|no\.)\s*$", re.I)
_NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "fifteen": "15",
    "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60",
}  # fmt: skip
_MONTHS = {m.lower() for m in calendar.month_name if m}


def _day_next_to(text: str, start: int, end: int) -> bool:
    """Whether the word at ``start:end`` of ``text`` has a day number beside it."""
    return bool(
        re.search(r"\d{1,2}\s*$", text[max(0, start - 4) : start])
        or re.match(r"\s*\d{1,2}\b", text[end : end + 4])
    )


# a sentence that says a rule stays as it was replaces nothing ("The rules for requesting
# leave in PeopleDesk are unchanged.")
_UNCHANGED = re.compile(
    r"\b(?:unchanged|remains?\s+(?:the\s+same|in\s+force|valid)|stays?\s+the\s+same|"
    r"still\s+appl(?:y|ies)|nothing\s+else\s+changes)\b",
    re.I,
)
_WITHDRAWN = re.compile(
    r"\b(?:no\s+longer|is\s+withdrawn|are\s+withdrawn|withdraws|discontinued|abolished|"
    r"ends\s+(?:on|with)|is\s+cancelled|does\s+not\s+apply\s+any\s+more)\b",
    re.I,
)


@dataclass(frozen=True)
class Point:
    """One rule both documents state, as each states it."""

    newer: str
    older: str
    similarity: float


@dataclass(frozen=True)
class Conflict:
    """A newer passage that replaces an older one on one or more points."""

    newer_source: str
    newer_page: int | None
    newer_effective: str
    older_source: str
    older_page: int | None
    older_effective: str
    points: tuple[Point, ...]
    declared: bool  # the newer document says it replaces the older (section)
    newer_ids: frozenset[str] = frozenset()  # the chunks on each side
    older_ids: frozenset[str] = frozenset()

    def message(self) -> str:
        """ "The memo of 8 September 2026 replaces the Employee Handbook, page 7, on this
        point." """
        newer = f"The {document_name(self.newer_source)} of {spoken_date(self.newer_effective)}"
        older = f"the {document_name(self.older_source)}"
        if self.older_page is not None:
            older += f", page {self.older_page},"
        else:
            older += f" of {spoken_date(self.older_effective)}"
        these = "this point" if len(self.points) <= 1 else "these points"
        return f"{newer} replaces {older} on {these}."

    def to_json(self) -> dict:
        return {
            "message": self.message(),
            "newer": {
                "source": self.newer_source,
                "page": self.newer_page,
                "effective": self.newer_effective,
            },
            "older": {
                "source": self.older_source,
                "page": self.older_page,
                "effective": self.older_effective,
            },
            "points": [{"newer": _plain(p.newer), "older": _plain(p.older)} for p in self.points],
            "declared": self.declared,
        }


def _plain(sentence: str) -> str:
    """A sentence without Markdown emphasis (memos bold their new values)."""
    return re.sub(r"\*\*|__", "", sentence)


def document_name(source: str) -> str:
    """What a person calls a document: ``memo_2026-09_remote_work.md`` is "memo",
    ``hr/employee_handbook.pdf`` is "Employee Handbook"."""
    stem = PurePosixPath(source.replace("\\", "/")).stem
    words = [w for w in re.split(r"[\s_\-.]+", stem) if w and not w.isdigit()]
    if words and words[0].lower() == "memo":
        return "memo"
    return " ".join(w if w.isupper() else w.capitalize() for w in words) or source


def spoken_date(iso: str) -> str:
    """``2026-09-08`` as ``8 September 2026``."""
    try:
        d = date.fromisoformat(iso)
    except ValueError:
        return iso
    return f"{d.day} {calendar.month_name[d.month]} {d.year}"


def sentences(text: str) -> list[str]:
    """A passage cut into sentences (and list items, which memos use for rules)."""
    parts = (p.strip(" *-•") for p in _SENTENCE_END.split(text))
    return [p for p in parts if len(p) >= 12]


def quantities(sentence: str) -> set[str]:
    """The numbers, dates and months a sentence states ("up to 3 days", "EUR 0.38",
    "by 30 April"), number words as digits; section and page numbers are references, not
    quantities."""
    found = set()
    for m in _NUMBER.finditer(sentence):
        if not _REFERENCE.search(sentence[: m.start()]):
            found.add(m[1].replace(",", "."))
    lower = sentence.lower()
    for m in re.finditer(r"[a-z]+", lower):
        word = m[0]
        if word in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[word])
        elif word in _MONTHS and (word != "may" or _day_next_to(lower, *m.span())):
            found.add(word)  # "may" is a month only next to a day: "1 May", "May 1"
    return found


# "instead of the previous 2 days", "raised from EUR 400 to EUR 600", "previously 30 days",
# "(was 31 March)": the old value a newer sentence mentions is not what it says now
_OLD_VALUE = re.compile(
    r"\b(?:instead\s+of|rather\s+than|previously|formerly|was|were|from(?=\s+(?:EUR|€)?\s*"
    r"\d[\d.,:]*\s+(?:\w+\s+){0,2}to\s))\s+(?:the\s+)?(?:previous|old|former|current)?\s*"
    r"(?:EUR|€)?\s*(\d+(?:[.,:]\d+)*(?:\s+(?:january|february|march|april|may|june|july|"
    r"august|september|october|november|december))?)",
    re.I,
)


def current_quantities(sentence: str) -> set[str]:
    """``quantities`` of what a sentence says now, without the old values it mentions."""
    return quantities(_OLD_VALUE.sub(" ", sentence))


def differs(newer: str, older: str) -> bool:
    """Whether two sentences about the same point disagree: the newer withdraws the rule,
    or one number or date replaces another (each states a value the other lacks: a newer
    sentence that only adds values, "still every 3 years", restates the rule)."""
    if _WITHDRAWN.search(newer) and not _WITHDRAWN.search(older):
        return True
    q_new, q_old = current_quantities(newer), quantities(older)
    return bool(q_old - q_new) and bool(q_new - q_old)


def _source_words(source: str) -> set[str]:
    stem = PurePosixPath(source.replace("\\", "/")).stem.lower()
    return {w for w in re.split(r"[^a-z0-9]+", stem) if w and not w.isdigit()}


def declares(newer: Hit, older: Hit) -> bool:
    """Whether ``newer``'s document says it replaces the document (and section) of
    ``older``: every word of the older file's name is in the reference, and the section
    named is the older passage's page or its title is in the passage."""
    words = _source_words(older.source)
    for line in newer.supersedes:
        ref = Supersedes.from_text(line)
        if not words or not words <= set(re.split(r"[^a-z0-9]+", ref.document.lower())):
            continue
        if ref.section is None:
            return True
        major = ref.section.split(".")[0]
        if older.page is not None and str(older.page) == major:
            return True
        text = older.text.lower()
        if ref.title and ref.title.lower() in text:
            return True
        if re.search(rf"(?:^|\s){re.escape(ref.section)}\s+[A-Z]", older.text):
            return True
    return False


def find_conflicts(
    hits: Sequence[Hit],
    embed: Embed,
    question: str | None = None,
    *,
    max_points: int = MAX_POINTS,
) -> list[Conflict]:
    """The conflicts among ``hits``, newest first, one per pair of places (document and
    page), each with at most ``max_points`` points. Hits without a date take no part. With
    ``question``, a point counts only when it is about the question (``_about_question``)."""
    dated = [(i, h) for i, h in enumerate(hits) if h.effective]
    if len({h.effective for _, h in dated}) < 2:
        return []
    # only sentences that can disagree: with a number or date, or withdrawing a rule
    cut = [
        (i, s) for i, h in dated for s in sentences(h.text) if quantities(s) or _WITHDRAWN.search(s)
    ][:MAX_SENTENCES]
    if not cut:
        return []
    texts = [s for _, s in cut] + ([question] if question else [])
    vectors = np.asarray(embed(texts), dtype=np.float32)  # the caller caches (CachedEmbedder)
    sims = vectors[: len(cut)] @ vectors[: len(cut)].T  # unit vectors: cosine similarity
    about = vectors[: len(cut)] @ vectors[-1] if question else np.ones(len(cut))
    best: dict[int, int] = {}  # hit -> its sentence closest to the question
    for a, (i, _) in enumerate(cut):
        if i not in best or about[a] > about[best[i]]:
            best[i] = a
    found: dict[tuple, list[tuple[Point, str, str]]] = {}
    for a, (i, s_a) in enumerate(cut):
        for b, (j, s_b) in enumerate(cut):
            newer, older = hits[i], hits[j]
            if newer.source == older.source or (newer.effective or "") <= (older.effective or ""):
                continue
            if sims[a, b] < SAME_POINT or _UNCHANGED.search(s_a):
                continue
            if not _about_question(float(max(about[a], about[b])), best[i] == a and best[j] == b):
                continue
            if differs(s_a, s_b):
                place = (newer.source, newer.page, older.source, older.page)
                found.setdefault(place, []).append(
                    (Point(s_a, s_b, float(sims[a, b])), newer.id, older.id)
                )
    conflicts = []
    for (new_source, new_page, old_source, old_page), found_points in found.items():
        newer = next(hits[i] for i, _ in dated if hits[i].id == found_points[0][1])
        older = next(hits[j] for j, _ in dated if hits[j].id == found_points[0][2])
        conflicts.append(
            Conflict(
                new_source,
                new_page,
                newer.effective or "",
                old_source,
                old_page,
                older.effective or "",
                tuple(_distinct([p for p, _, _ in found_points], max_points)),
                declares(newer, older),
                newer_ids=frozenset(n for _, n, _ in found_points),
                older_ids=frozenset(o for _, _, o in found_points),
            )
        )
    conflicts.sort(
        key=lambda c: (c.newer_effective, max(p.similarity for p in c.points)), reverse=True
    )
    return conflicts


def _about_question(about: float, answers_it: bool) -> bool:
    """Whether a point is about the question: one of its sentences is close to it
    (``ABOUT_QUESTION``), or a little less close (``ABOUT_ANSWER``) when the point is what
    both passages say best on the question (each sentence the closest of its passage).
    Retrieval found both passages for the question; a question put in other words than the
    documents' stays further from every sentence."""
    return about >= ABOUT_QUESTION or (answers_it and about >= ABOUT_ANSWER)


def _distinct(points: list[Point], max_points: int = MAX_POINTS) -> list[Point]:
    """The closest pairs first, at most ``max_points``; a pair that repeats a closer one
    (chunks share their edges, so a sentence can come twice, once cut) is left out."""
    out: list[Point] = []
    for p in sorted(points, key=lambda p: -p.similarity):
        if not any(_overlap(p.newer, q.newer) and _overlap(p.older, q.older) for q in out):
            out.append(p)
    return out[:max_points]


def _overlap(a: str, b: str) -> bool:
    return a in b or b in a or a[-40:] == b[-40:]


WIDEN_PER_DOCUMENT = 2  # passages ``widen`` asks for, per replacing document


def widen(
    hits: Sequence[Hit], k: int, search_in: Callable[[list[str], int], list[Hit]]
) -> list[Hit]:
    """``hits`` and, after them, the passages of the documents that say they replace one of
    the first ``k`` that ``search_in(sources, n)`` finds closest to the question (``n`` =
    ``WIDEN_PER_DOCUMENT`` per document). Retrieval may
    find a memo's closing lines ("What stays the same ...") and not its new rule, which
    ``arrange`` needs to see the conflict and put the new rule first."""
    top = list(hits[:k])
    sources = sorted({h.source for h in hits if h.supersedes and any(declares(h, o) for o in top)})
    if not sources:
        return list(hits)
    have = {h.id for h in hits}
    found = search_in(sources, WIDEN_PER_DOCUMENT * len(sources))
    return [*hits, *(h for h in found if h.id not in have)]


def arrange(
    hits: Sequence[Hit], embed: Embed | None, question: str | None = None, k: int | None = None
) -> tuple[list[Hit], list[Conflict]]:
    """The resources to give the model (at most ``k``), and the conflicts to show (none
    without ``embed``).

    ``hits`` may be a wider pool than ``k``: a passage below the first ``k`` that comes
    from a newer document and replaces one of them (in conflict with it, or its document
    says so) is brought in, in place of the lowest-ranked passage that takes part in no
    conflict: an older text that ranks first must not hide the newer one. Newer passages
    move in front of the older passages they conflict with; the sentences of an older
    passage that a document explicitly replaces are removed from it, so the model reads
    only the newer rule."""
    k = len(hits) if k is None else k
    top, rest = list(hits[:k]), list(hits[k:])
    if embed is None:
        return top, []
    pool = top + _newer_candidates(top, rest)
    conflicts = find_conflicts(pool, embed, question)
    ahead: dict[str, set[str]] = {}  # hit id -> ids of newer hits that must come before it
    for c in conflicts:
        for older_id in c.older_ids:
            ahead.setdefault(older_id, set()).update(c.newer_ids)
    # what a document says it replaces is set aside whatever the question: a replaced rule
    # the model reads beside the question's own is still one it may repeat. Only the
    # documents that say what they replace, and what they replace: in the whole pool, a memo
    # ranked 12th could fall past MAX_SENTENCES
    declaring = [
        h for h in pool if any(declares(h, o) or declares(o, h) for o in pool if o is not h)
    ]
    declared = [c for c in find_conflicts(declaring, embed, max_points=MAX_SENTENCES) if c.declared]
    replaced_ids = {i for c in declared for i in c.older_ids}
    closest = _closest([h for h in pool if h.id in replaced_ids], embed, question)
    drop: dict[tuple, set[str]] = {}  # (source, page) -> its sentences a document replaces
    for c in declared:
        replaced = {p.older for p in c.points}
        drop.setdefault((c.older_source, c.older_page), set()).update(replaced)
        for older_id in c.older_ids:
            # the question is about the very rule that is cut: its replacement goes first
            if older_id in closest and _one_of(closest[older_id][1], replaced):
                ahead.setdefault(older_id, set()).update(c.newer_ids)
    for newer in pool:  # declared, no sentence found in conflict: still ahead, if as relevant
        for older in top:
            later = (newer.effective or "") > (older.effective or "")
            if later and newer.source != older.source and declares(newer, older):
                if _as_relevant(newer, older):
                    ahead.setdefault(older.id, set()).add(newer.id)
    top_ids = {h.id for h in top}
    wanted = {n for o, newer in ahead.items() if o in top_ids for n in newer}
    promoted = [h for h in pool[len(top) :] if h.id in wanted]
    involved = set(ahead) | {n for newer in ahead.values() for n in newer}
    chosen = list(top)
    for h in promoted:  # replaces the lowest-ranked passage that no conflict involves,
        # ranked below the older passage it is brought in for (never one the question ranks
        # above everything the newer document replaces)
        olders = [k for k, x in enumerate(chosen) if h.id in ahead.get(x.id, ())]
        below = chosen[min(olders) + 1 :] if olders else []
        spare = next((x for x in reversed(below) if x.id not in involved), None)
        if spare is None:
            continue
        chosen.remove(spare)
        chosen.append(h)
    ids = {h.id for h in chosen}
    conflicts = [c for c in conflicts if c.newer_ids & ids and c.older_ids & ids]
    ordered = _newer_first(chosen, {o: n & ids for o, n in ahead.items()})
    return [_without(h, drop.get((h.source, h.page), set())) for h in ordered], conflicts


def _closest(
    hits: Sequence[Hit], embed: Embed, question: str | None
) -> dict[str, tuple[float, str]]:
    """Each hit's sentence closest to the question, with its cosine: what the passage says
    most about the question, in its own words (its vector was indexed with the document's
    title and section heading in front)."""
    if not question:
        return {}
    texts = [(h.id, s) for h in hits for s in sentences(h.text) or [h.text]]
    vectors = np.asarray(embed([question] + [s for _, s in texts]), dtype=np.float32)
    out: dict[str, tuple[float, str]] = {}
    for (hit_id, sentence), v in zip(texts, vectors[1:], strict=True):
        score = float(v @ vectors[0])
        if hit_id not in out or score > out[hit_id][0]:
            out[hit_id] = (score, sentence)
    return out


def _as_relevant(newer: Hit, older: Hit) -> bool:
    """A memo that replaces one rule of a section must not push the whole section aside:
    without a point in conflict, the newer passage goes first only when it is about the
    question nearly as much as the older one (``AS_RELEVANT``)."""
    if newer.similarity is None or older.similarity is None:
        return True
    return newer.similarity >= older.similarity - AS_RELEVANT


def _newer_candidates(top: list[Hit], rest: list[Hit], per_document: int = 2) -> list[Hit]:
    """The passages below the first ``k`` that could replace one of them: from another,
    newer document; the best ``per_document`` of each."""
    oldest = min((h.effective for h in top if h.effective), default=None)
    if oldest is None:
        return []
    shown = {h.source for h in top}
    taken: dict[str, int] = {}
    out = []
    for h in rest:
        if not h.effective or h.effective <= oldest:
            continue
        if taken.get(h.source, 0) >= per_document + (h.source in shown):
            continue
        taken[h.source] = taken.get(h.source, 0) + 1
        out.append(h)
    return out


def _newer_first(hits: list[Hit], ahead: dict[str, set[str]]) -> list[Hit]:
    """The hits in their order, except that each hit comes after every hit in
    ``ahead[its id]`` (moved to just in front of it)."""
    out: list[Hit] = []
    placed: set[str] = set()
    by_id = {h.id: h for h in hits}

    def place(h: Hit, visiting: frozenset[str]) -> None:
        if h.id in placed or h.id in visiting:
            return
        for newer_id in [x for x in by_id if x in ahead.get(h.id, set())]:
            place(by_id[newer_id], visiting | {h.id})
        placed.add(h.id)
        out.append(h)

    for h in hits:
        place(h, frozenset())
    return out


def _pieces(text: str) -> list[tuple[int, int]]:
    """Where the sentences of ``text`` are (``sentences`` cuts at the same places)."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        out.append((start, m.start()))
        start = m.end()
    return [*out, (start, len(text))]


def _one_of(piece: str, said: Iterable[str]) -> bool:
    """Whether ``piece`` of a passage is one of the sentences ``said``, whole or cut (chunks
    share their edges, so a sentence can come twice, once cut)."""
    piece = piece.strip(" *-•")
    return len(piece) >= 12 and any(_overlap(piece, s) for s in said)


def _without(hit: Hit, drop: set[str]) -> Hit:
    if not drop:
        return hit
    kept = [hit.text[a:b] for a, b in _pieces(hit.text) if not _one_of(hit.text[a:b], drop)]
    return dataclasses.replace(hit, text=" ".join(kept).strip() or hit.text)


def mark_replaced(
    resources: Sequence[R], hits: Sequence[Hit], conflicts: Sequence[Conflict]
) -> list[R]:
    """The resources as the prompt shows them (``resources[i]`` is ``hits[i]``, maybe cut to
    an excerpt): each sentence of an older passage that a newer one changes without saying
    so (a declared replacement is already set aside by ``arrange``) is followed by
    "(replaced by [1], dated 2026-10-06)", so the model reads which rule is current where
    it reads the old one."""
    number = {h.id: n for n, h in enumerate(hits, start=1)}
    out = []
    for res, hit in zip(resources, hits, strict=True):
        marks: list[tuple[str, int, str]] = []
        for c in conflicts:
            newer = [number[i] for i in c.newer_ids if i in number]
            if (
                not c.declared
                and newer
                and (hit.source, hit.page) == (c.older_source, c.older_page)
            ):
                marks += [(p.older, min(newer), c.newer_effective) for p in c.points]
        text = res.text
        for start, end in reversed(_pieces(text) if marks else []):
            label = next(
                (f" (replaced by [{n}], dated {d})" for o, n, d in marks
                 if _one_of(text[start:end], [o])),
                None,
            )  # fmt: skip
            if label:
                text = text[:end] + label + text[end:]
        out.append(dataclasses.replace(res, text=text) if text != res.text else res)
    return out


def _draws_on(citation, conflict: Conflict, side: str) -> bool:
    """Whether ``citation`` (``n``, ``source``, ``page``, maybe ``quote``/``quotes``) cites
    ``side`` ("newer" or "older") of ``conflict`` for one of its points: the place, and a
    quote that is one of the points' sentences on that side (without a quote, the place)."""
    place = (getattr(conflict, f"{side}_source"), getattr(conflict, f"{side}_page"))
    if (citation.source, citation.page) != place:
        return False
    quotes = [q for q in (getattr(citation, "quotes", ()) or ()) if q]
    quotes += [q for q in [getattr(citation, "quote", None)] if q]
    said = [getattr(p, side) for p in conflict.points]
    return not quotes or any(_overlap(q, s) for q in quotes for s in said)


NEWER = "newer"  # ``checked`` of a citation ``cite_newer`` put in front of an older one


def cite_newer(citations: list, hits: Sequence[Hit], conflicts: Sequence[Conflict]) -> list:
    """An answer that cites an older passage for a point its newer document replaces (the
    quote is the replaced sentence; without a quote, the place) cites the newer one too, in
    front, marked ``checked=NEWER``: the older passage is never the only source for that
    point. A citation of the same page for another rule is left alone.
    ``citations`` are dataclasses with ``n``, ``source`` and ``page`` (and a text field,
    ``snippet`` or ``quote``, set here to the newer sentence); ``hits`` are the resources
    in the order the model saw them."""
    out = list(citations)
    cited = {(c.source, c.page) for c in out}
    for c in conflicts:
        if not c.declared or (c.newer_source, c.newer_page) in cited:
            continue
        at = next((k for k, x in enumerate(out) if _draws_on(x, c, "older")), None)
        n = next(
            (
                k
                for k, h in enumerate(hits, start=1)
                if (h.source, h.page) == (c.newer_source, c.newer_page)
            ),
            None,
        )
        if at is None or n is None:
            continue
        template = out[at]
        names = {f.name for f in dataclasses.fields(template)}
        change = {"n": n, "source": c.newer_source, "page": c.newer_page}
        if "checked" in names:  # not found by the answer check: put in for the older one
            change["checked"] = NEWER
        for text_field in ("snippet", "quote"):
            if text_field in names:
                change[text_field] = c.points[0].newer if c.points else ""
        if "quotes" in names:
            change["quotes"] = (change["quote"],) if change.get("quote") else ()
        out.insert(at, dataclasses.replace(template, **change))
        cited.add((c.newer_source, c.newer_page))
    return out


def with_conflicts(answer, hits: Sequence[Hit], conflicts: Sequence[Conflict]):
    """``answer`` (an ``app.qa.Answer``) with the conflicts to show, and with the newer
    document cited wherever it cites a passage that document replaces (``cite_newer``).
    A refusal shows none: there is no answer for them to qualify; nor does an answer that
    draws on neither side of a conflict (a rule it did not use, ``_draws_on``)."""
    conflicts = [
        c
        for c in conflicts
        if any(_draws_on(x, c, side) for x in answer.citations for side in ("newer", "older"))
    ]
    if not conflicts or answer.refused:
        return answer
    return dataclasses.replace(
        answer,
        conflicts=list(conflicts),
        citations=cite_newer(list(answer.citations), hits, conflicts),
    )
