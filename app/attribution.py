"""Which resource sentence supports each answer sentence: the answer check.

A small model cannot be trusted with its own citations, so after it finishes the code
decides. The answer is split into sentences; each is matched against every sentence of the
resources the model was given, by the score RAGFlow's ``insert_citations`` uses
(``0.9 * cosine of MiniLM embeddings + 0.1 * token overlap``, rag/nlp/search.py), and a match
counts only if it also passes rules code can check exactly:

- **Numbers**: every amount, percentage, date, time and count in the answer sentence appears
  in the supporting sentence or its neighbour in the same chunk ("120 days" is not
  supported by a passage that says 90).
- **Subject**: the words that carry the claim (content words other than units, hedges and
  light verbs) are found in that same window, or the wording is a close paraphrase. A
  number in a passage about something else (a 20% coinsurance offered as a mileage rate)
  does not support the claim.
- **Names**: a capitalised word inside the answer sentence (a city, a person, a team) is
  in one of the resources or their file names: "the hotel cap in New York is EUR 170" is
  not supported by caps for Germany, London and Paris.
- **Bound values**: a subject word the sentence holding the number lacks is not taken from
  a neighbouring sentence that states another number ("in London ... EUR 170" from "EUR
  170 in Germany. In Munich, Zurich, London and Paris, the cap is EUR 220.").
- **Complete**: a sentence that stops where its value belongs ("The address to write to is
  [1].", "It will be published on.") states nothing, and nothing supports it.

Unlike RAGFlow, the support is a sentence-level quote, verbatim from the chunk's text so a
reader can find it on the page, and the model's own ``[n]`` markers are checked the same way:
kept when resource n supports the sentence, moved when another one does, dropped when none
does. Everything happens in one embedding call per answer.

Pure functions and frozen dataclasses: no settings, no UI. ``check_answer`` is the one call
``app.qa`` needs; ``attribute``, ``not_found`` and ``may_help`` are its parts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Literal, Protocol

from app.citations import _CITE, _numbers, is_refusal
from retrieval.bm25_index import tokenize

# --- thresholds -------------------------------------------------------------------------
# Chosen with all-MiniLM-L6-v2 on the hand-written claims of tests/test_attribution.py (true
# paraphrases, and numbers borrowed from passages about other things), then checked on
# answers built from the sample documents (bench/attribution_bench.py). Scores are computed
# with numerals masked on both sides: numbers are checked exactly by the number rule, so
# the similarity only has to say whether two sentences are about the same thing.
VECTOR_WEIGHT = 0.9  # RAGFlow's split: 0.9 vector + 0.1 token similarity
# Below this a sentence is not about the resource sentence at all. RAGFlow uses about 0.6
# for whole chunks; true sentence-level paraphrases scored 0.50-0.57 ("Full-timers are
# entitled to twenty-five days of paid vacation" / "...receive 25 days of paid annual leave").
MIN_SCORE = 0.45
# ... unless the exact rules hold in full: every number of the claim and every one of its
# subject words are in the window. Then similarity only has to say it is not unrelated: a
# bullet list flattened into one long "sentence" (PDF and Markdown chunks lose their line
# breaks) dilutes the cosine of a right match to 0.40 ("you can work from home up to 3 days
# per week" against the memo's list of changes).
MIN_SCORE_EXACT = 0.30
# "Every one of its subject words" counts a word the answer adds from the question or the
# topic ("the mandatory security awareness course": "course" is the memo's "training"); three
# quarters of them, with every number, still pins the claim to the window (dev q59; the dev
# and policies replays changed no other answer).
EXACT_SHARE = 0.75
# Subject rule: more than this share of the claim's subject words must be in the support
# window ("paid leave" in "paid annual leave": 2 of 2). Exactly half is not enough: "mileage
# allowance" against "meal allowance" shares one word of two.
SUBJECT_SHARE = 0.5
# ... or, when at least one subject word is there, the wording must be this close. Measured:
# claims borrowing a number from another subject that share one word scored 0.51-0.65
# ("The mileage allowance is EUR 44 per day" vs the meal allowance: 0.644); paraphrases
# sharing one word scored 0.71-0.73 ("You can spend EUR 44 a day on meals when travelling
# for work": 0.710). The margin is thin on both sides; the number rule does most of the work.
PARAPHRASE_SCORE = 0.68
# When the model says "I don't know" although retrieval was confident, the best passage is
# shown only if it is at least this close to the question (combined score, unmasked).
HINT_MIN_SCORE = 0.35
CLOSEST_PASSAGES = 3

NOT_FOUND = "I couldn't find this in the documents."
CLOSEST_LEAD = "The closest passages:"
MAY_HELP_LEAD = "This passage may help:"

Checked = Literal["kept", "moved", "added", "dropped", "unsupported", "skipped"]
"""What the check did with a sentence's citation:

- ``kept``: the model cited resource n and n supports the sentence;
- ``moved``: the model cited other resources; n (which supports it) replaces them;
- ``added``: the model cited nothing; n supports the sentence;
- ``dropped``: the model cited resources, none supports the sentence; markers removed;
- ``unsupported``: no citation, no support;
- ``skipped``: no claim to check (no content word, no number: "Yes.", "In short:").
"""


class Resource(Protocol):
    """What the model was given, in prompt order (``n`` = position + 1). ``Hit`` fits."""

    text: str
    source: str
    page: int | None


class ScoredResource(Resource, Protocol):
    similarity: float | None  # cosine between question and chunk (Hit.similarity)


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> list[list[float]]:
        """One unit-length vector per text."""
        ...


# --- sentences ---------------------------------------------------------------------------

# Words whose trailing period does not end a sentence (lower case, without the last period).
_ABBREVIATIONS = frozenset(
    "e.g i.e cf vs etc approx incl excl sec secs art no nos nr fig dr mr mrs ms prof st jr sr "
    "inc ltd co corp dept min max p pp a.m p.m ca resp viz vol ed est tel".split()
)
# a period, ?, or ! (with closing quotes/brackets and the model's [n] right after)
_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?:[ \t]*" + _CITE.pattern + r")*(?=\s|$)", re.I)
_BULLET = re.compile(r"(?:[-*+\u2022\u00b7\u25aa\u2023\u2013]|\d{1,2}[.)]|#{1,6})[ \t]+")
_OPENERS = "0123456789\"'(*_[$\u20ac\u201c"  # what may start a sentence besides a capital
_SHORT_LINE = 50  # a line this short without end punctuation is a heading, not a wrap


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def _ends_sentence(text: str, end: int) -> bool:
    """Whether the text before ``end`` closes a sentence: it ends with "!", "?" or a period
    that is not an abbreviation's ("e.g.", "Sec.", "Dr.", an initial), after any closing
    quotes, brackets and [n] markers."""
    stripped = _CITE.sub("", text[:end]).rstrip().rstrip("\"'\u201d\u2019)]")
    if not stripped or stripped[-1] not in ".!?":
        return False
    if stripped[-1] != ".":
        return True
    word = re.search(r"([A-Za-z][A-Za-z.]*)\.$", stripped)
    if word is None:  # "$1,200.50." or "(see above)."
        return True
    w = word.group(1).lower()
    if w in _ABBREVIATIONS or (len(w) == 1 and w.isalpha()):
        return False
    return not re.fullmatch(r"(?:[a-z]\.)+[a-z]", w)  # "u.s", "a.m"


def split_sentences(text: str) -> list[Span]:
    """Sentence spans of ``text``: ``text[s.start:s.end]`` is each sentence, verbatim.

    Newlines: a blank line, a bullet or heading marker, a line after end punctuation, and a
    short line (a heading) start a new sentence; any other newline is a wrapped line (PDF
    text) and joins. Bullet and heading markers are left out of the span. Within a line,
    ``.``/``!``/``?`` followed by space ends a sentence unless it closes an abbreviation
    ("e.g.", "Sec. 4", "Dr."); decimals ("3.5%", "$1,200.50") never contain a space.
    """
    blocks: list[list[int]] = []
    prev: tuple[int, int] | None = None  # the previous non-empty line, stripped
    pos = 0
    for line in text.split("\n"):
        start, end = pos, pos + len(line)
        pos = end + 1
        s = start + len(line) - len(line.lstrip())
        e = start + len(line.rstrip())
        if s >= e:
            prev = None  # blank line: a paragraph ends
            continue
        bullet = _BULLET.match(text, s, e)
        content = bullet.end() if bullet else s
        new = (
            prev is None
            or bullet is not None
            or _ends_sentence(text, prev[1])
            or text[prev[1] - 1] == ":"
            or (prev[1] - prev[0] < _SHORT_LINE and (text[s].isupper() or text[s] in _OPENERS))
        )
        if new or not blocks:
            blocks.append([content, e])
        else:
            blocks[-1][1] = e
        prev = (s, e)
    spans: list[Span] = []
    for b_start, b_end in blocks:
        start = b_start
        for m in _END.finditer(text, b_start, b_end):
            if not _ends_sentence(text, m.end()):
                continue
            rest = text[m.end() : b_end].lstrip()
            if rest and not (rest[0].isupper() or rest[0] in _OPENERS):
                continue  # "... per cent. of" or a lower-case continuation
            spans.append(Span(start, m.end()))
            start = m.end()
            while start < b_end and text[start].isspace():
                start += 1
        if start < b_end:
            spans.append(Span(start, b_end))
    return [sp for sp in spans if re.search(r"\w", _CITE.sub("", text[sp.start : sp.end]))]


# --- numbers -----------------------------------------------------------------------------

_WORD_NUMBERS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80}
_WORD_NUMBERS |= {"ninety": 90, "hundred": 100, "dozen": 12, "a dozen": 12}
_ORDINAL_WORDS = {
    w: i
    for i, w in enumerate(
        "_ first _ third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
        "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth "
        "twentieth".split()
    )
    if w != "_"
}
_TENS = r"(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)"
_UNITS = r"(?:one|two|three|four|five|six|seven|eight|nine)"
_WORD_NUMBER = re.compile(
    rf"\b(?:{_TENS}[\s-]{_UNITS}|"
    + "|".join(sorted(list(_WORD_NUMBERS) + list(_ORDINAL_WORDS), key=len, reverse=True))
    + r")\b",
    re.I,
)
# "one" and ordinal words are numbers in an answer only before a unit ("one hour", "the
# fourth day"), not in "one of the contacts" or "first, request it"
_UNIT_WORDS = (
    r"(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|quarters?|times?|percent|"
    r"per\s*cent|euros?|dollars?|working|calendar|consecutive|full|paid|business|half)"
)
_AFTER_UNIT = re.compile(rf"(?:\s+\w+){{0,2}}?\s+{_UNIT_WORDS}\b", re.I)

_MONTHS = {
    m: i
    for i, ms in enumerate(
        [
            "jan january",
            "feb february",
            "mar march",
            "apr april",
            "may",
            "jun june",
            "jul july",
            "aug august",
            "sep sept september",
            "oct october",
            "nov november",
            "dec december",
        ],
        start=1,
    )
    for m in ms.split()
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s+(?P<year>(?:19|20)\d\d))?"
_DATES = [
    re.compile(r"\b(?P<year>(?:19|20)\d\d)-(?P<mon>[01]?\d)-(?P<day>[0-3]?\d)\b"),
    re.compile(rf"\b{_DAY}(?:\s+of)?\s+{_MONTH}(?![a-z]){_YEAR}\b", re.I),
    re.compile(rf"\b{_MONTH}(?![a-z])\s+{_DAY}\b{_YEAR}", re.I),
]
_TIME = re.compile(
    r"\b(?P<h>[0-2]?\d)(?::(?P<m>[0-5]\d))?\s*(?P<ampm>[ap]\.?m\.?)(?![a-z])"
    r"|\b(?P<h2>[0-2]?\d):(?P<m2>[0-5]\d)\b",
    re.I,
)
_NUMBER = re.compile(
    r"(?<![\w.])(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?:st|nd|rd|th)?(?![\w])"
    r"(?P<pct>\s*(?:%|percent\b|per\s*cent\b))?",
    re.I,
)
_WORD_PERCENT = re.compile(r"\s*(?:%|percent\b|per\s*cent\b)", re.I)


def _value(number: str) -> str:
    """Canonical form of a numeral: "1,500" -> "1500", "0.30" -> "0.3", "04317" -> "4317"."""
    try:
        d = Decimal(number.replace(",", ""))
    except InvalidOperation:
        return number
    return format(d.normalize(), "f") if d != d.to_integral() else str(int(d))


def _word_value(word: str) -> int:
    w = re.sub(r"[\s-]+", " ", word.lower())
    if w in _WORD_NUMBERS:
        return _WORD_NUMBERS[w]
    if w in _ORDINAL_WORDS:
        return _ORDINAL_WORDS[w]
    tens, unit = w.split(" ")
    return _WORD_NUMBERS[tens] + _WORD_NUMBERS[unit]


def numbers(text: str, *, claim: bool = True) -> frozenset[tuple[str, ...]]:
    """The numbers a text states, canonical: ``("n", "90")``, ``("%", "3.5")``,
    ``("date", "9", "1")`` (month, day), ``("time", "13", "0")``.

    "ten" and "10" are the same number; "$1,200.50", "EUR 1200.5" and "1200.50" too
    (currencies and duration units are not compared: the subject rule covers what was
    counted). A year in a date is its own number. With ``claim=False`` (a passage) every
    numeral also counts as a plain number, so "35 percent" supports "35", and "one" counts
    everywhere; in a claim "one" and ordinal words count only before a unit ("one hour").
    """
    text = _CITE.sub(" ", text)
    found: set[tuple[str, ...]] = set()
    taken = [False] * len(text)

    def take(m: re.Match[str]) -> bool:
        if any(taken[m.start() : m.end()]):
            return False
        for i in range(m.start(), m.end()):
            taken[i] = True
        return True

    for pattern in _DATES:
        for m in pattern.finditer(text):
            month = m.groupdict().get("month")
            mon = _MONTHS[month.lower().rstrip(".")] if month else int(m.group("mon"))
            day = int(m.group("day"))
            if not (1 <= mon <= 12 and 1 <= day <= 31) or not take(m):
                continue
            found.add(("date", str(mon), str(day)))
            if m.group("year"):
                found.add(("n", m.group("year")))
            if not claim:
                found.add(("n", str(day)))
    for m in _TIME.finditer(text):
        h = int(m.group("h") or m.group("h2"))
        minute = int(m.group("m") or m.group("m2") or 0)
        ampm = (m.group("ampm") or "").lower().replace(".", "")
        if ampm == "pm" and h < 12:
            h += 12
        elif ampm == "am" and h == 12:
            h = 0
        if h > 24 or not take(m):
            continue
        found.add(("time", str(h), str(minute)))
        if not claim:
            found.add(("n", str(h)))
    for m in _NUMBER.finditer(text):
        if any(taken[m.start() : m.end()]):
            continue
        value = _value(m.group("num"))
        found.add(("%" if m.group("pct") else "n", value))
        if not claim:
            found.add(("n", value))
    for m in _WORD_NUMBER.finditer(text):
        word = m.group(0).lower()
        if claim and (word == "one" or word in _ORDINAL_WORDS):
            if not _AFTER_UNIT.match(text, m.end()):
                continue
        value = str(_word_value(word))
        pct = _WORD_PERCENT.match(text, m.end())
        found.add(("%" if pct else "n", value))
        if not claim:
            found.add(("n", value))
    return frozenset(found)


def describe(number: tuple[str, ...]) -> str:
    kind, *parts = number
    if kind == "%":
        return f"{parts[0]}%"
    if kind == "date":
        return f"{parts[1]}/{parts[0]} (day/month)"
    if kind == "time":
        return f"{int(parts[0]):02d}:{int(parts[1]):02d}"
    return parts[0]


# --- subject words -------------------------------------------------------------------------

# Words that do not say what a claim is about: units and currencies (the number rule covers
# them), hedges, and the light verbs and nouns of every handbook sentence. Stemmed on use.
_GENERIC_WORDS = """
second seconds minute minutes hour hours day days week weeks month months year years
quarter quarters calendar consecutive daily weekly monthly yearly annually
percent percentage cent eur euro euros usd dollar dollars amount number total
around about approximately roughly nearly almost up least most maximum minimum max min
only just exactly over under less more than within after before until from per each every
advance prior ahead beforehand latest earliest
according accordingly based resource resources provided information document documents text passage
passages handbook memo policy state states stated mention mentions mentioned say says said
get gets got getting receive receives received give gives given have has had is are be
can may must need needs will would should shall also however yes no please note
entitled entitle eligible when where what which who whom how why own anything something
everything nothing thing things way
employee employees staff company you your
"""


@lru_cache(maxsize=1)
def _generic() -> frozenset[str]:
    return frozenset(tokenize(_GENERIC_WORDS))


def subject_terms(text: str) -> frozenset[str]:
    """The stemmed words that carry a claim: content words that are neither numbers nor
    generic ("The mileage rate is 20%" -> {"mileag", "rate"})."""
    generic = _generic() | _number_stems()
    return frozenset(
        t for t in tokenize(_CITE.sub(" ", text)) if t not in generic and not t[0].isdigit()
    )


# A capitalised word of four letters or more inside a sentence (not its first word): a
# place, a person, a product, a team. "York", "Vienna", "Hamburg" in an answer are claims
# about them ("Ops", "Sub-Com": too short to tell from an abbreviation).
_NAME = re.compile(r"(?<=[^\s(\[\"'\u201c:;])\s+([A-Z][a-z]{3,}(?:-[A-Z][a-z]{3,})*)\b")


_ACRONYM = re.compile(r"\b([A-Z]{3,})\b")
_CURRENCIES = frozenset({"EUR", "USD", "GBP", "CHF"})


def name_terms(text: str) -> frozenset[str]:
    """The stemmed capitalised words of a claim that are not its first word, not generic
    and not a number or month ("the cap in New York is" -> {"york"}), and its acronyms
    ("SAP")."""
    text = _CITE.sub(" ", text)
    words = " ".join(m.group(1) for m in _NAME.finditer(text))
    # and acronyms of three letters or more, anywhere ("SAP allows ..."), but currencies
    words += " " + " ".join(a for a in _ACRONYM.findall(text) if a not in _CURRENCIES)
    generic = _generic() | _number_stems() | _month_stems()
    return frozenset(t for t in tokenize(words) if t not in generic and not t[0].isdigit())


@lru_cache(maxsize=1)
def _month_stems() -> frozenset[str]:  # dates: the number rule checks them
    return frozenset(tokenize(" ".join(_MONTHS)))


@lru_cache(maxsize=1)
def _number_stems() -> frozenset[str]:
    return frozenset(tokenize(" ".join([*_WORD_NUMBERS, *_ORDINAL_WORDS])))


def _covered(terms: Set[str], window: Set[str]) -> int:
    """How many of ``terms`` the window has: the same stem, or one stem a prefix of the
    other when both have four letters or more ("timer"/"time", "insur"/"insurer"), or a
    compound ending in a window word of four letters or more ("telework"/"work")."""
    long = [w for w in window if len(w) >= 4]
    return sum(
        t in window
        or (len(t) >= 4 and any(w.startswith(t) or t.startswith(w) or t.endswith(w) for w in long))
        for t in terms
    )


def _mask_numbers(text: str) -> str:
    """The text with numerals removed, for the embedding: numbers are checked exactly, so
    the similarity should say what the sentence is about, not which numbers it shares."""
    text = _CITE.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    return re.sub(r"\s{2,}", " ", text).strip()


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Passage:
    """A verbatim quote from resource ``n`` (``quote`` is a substring of its text)."""

    n: int
    source: str
    page: int | None
    quote: str
    score: float

    def to_json(self) -> dict:
        return {
            "n": self.n,
            "source": self.source,
            "page": self.page,
            "quote": self.quote,
            "score": round(self.score, 4),
        }


@dataclass(frozen=True)
class SentenceSupport:
    """One answer sentence and what supports it.

    ``text`` is the sentence as the model wrote it, markers stripped; ``start``/``end``
    locate it in ``Attribution.text`` as shown, with its checked [n], so a UI can mark it. ``n`` is the
    supporting resource (None: unsupported), ``quote`` the supporting sentence(s), verbatim
    from that resource's text, ``score`` the match score (the best candidate's when
    unsupported), ``cited`` the valid numbers the model wrote, ``reason`` why it failed,
    ``correction`` (unsupported only) what the passage gives for the subject the sentence
    put another value on ("the passage gives 220 for 'london', not 170"), from any
    window of the resources, not only the best one.
    """

    text: str
    n: int | None
    quote: str | None
    score: float
    cited: tuple[int, ...]
    checked: Checked
    start: int = 0
    end: int = 0
    reason: str | None = None
    correction: str | None = None

    @property
    def supported(self) -> bool:
        return self.n is not None

    def to_json(self) -> dict:
        out = {
            "text": self.text,
            "n": self.n,
            "quote": self.quote,
            "score": round(self.score, 4),
            "cited": list(self.cited),
            "checked": self.checked,
            "start": self.start,
            "end": self.end,
        }
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class CheckedCitation:
    """A resource that supports at least one sentence. ``quotes`` are its supporting
    sentences in answer order (verbatim); ``checked`` is "kept" when the model cited it for
    a sentence it supports, else "moved" when it replaced a wrong marker, else "added"."""

    n: int
    source: str
    page: int | None
    quotes: tuple[str, ...]
    checked: Literal["kept", "moved", "added"]

    @property
    def quote(self) -> str:
        return self.quotes[0]

    def to_json(self) -> dict:
        return {
            "n": self.n,
            "source": self.source,
            "page": self.page,
            "quote": self.quote,
            "quotes": list(self.quotes),
            "checked": self.checked,
        }


@dataclass(frozen=True)
class Attribution:
    """The checked answer: ``text`` with one verified ``[n]`` per supported sentence,
    citations in order of first use, and the sentences nothing supports."""

    text: str
    sentences: tuple[SentenceSupport, ...]
    citations: tuple[CheckedCitation, ...]
    unsupported: tuple[str, ...]
    closest: tuple[Passage, ...]  # best resource sentences, whatever the rules said

    @property
    def supported(self) -> bool:
        return any(s.supported for s in self.sentences)

    def to_json(self) -> dict:
        return {
            "answer": self.text,
            "refused": False,
            "citations": [c.to_json() for c in self.citations],
            "unsupported": list(self.unsupported),
            "sentences": [s.to_json() for s in self.sentences],
        }


@dataclass(frozen=True)
class Refusal:
    """An answer not shown as one. ``reason``: "not_found" (no sentence of the model's
    answer is supported; ``withheld`` keeps them for the record) or "dont_know" (the model
    said so although retrieval was confident). ``lead`` introduces ``passages``."""

    text: str
    lead: str
    passages: tuple[Passage, ...]
    reason: Literal["not_found", "dont_know"]
    withheld: tuple[str, ...] = ()
    # what the passages give for the subjects the withheld sentences put other values on
    # (``SentenceSupport.correction``): what a second try is told (app.qa, llm.press.Revised)
    corrections: tuple[str, ...] = ()
    # a withheld sentence stops where its value should be ("... is [1].": the model put the
    # marker where the answer belongs); a second try may be asked without markers (app.qa)
    incomplete: bool = False

    @property
    def citations(self) -> tuple[CheckedCitation, ...]:
        return ()  # a refusal cites nothing; its passages are shown as "closest", not sources

    def render(self) -> str:
        """Plain text for a terminal: the refusal, then the quoted passages."""
        lines = [self.text]
        if self.passages:
            lines.append(self.lead)
            for p in self.passages:
                where = p.source if p.page is None else f"{p.source}, page {p.page}"
                lines.append(f'- "{p.quote}" ({where})')
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "answer": self.text,
            "refused": True,
            "citations": [],
            "reason": self.reason,
            "lead": self.lead,
            "passages": [p.to_json() for p in self.passages],
            "unsupported": list(self.withheld),
        }


# --- matching ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ResSentence:
    n: int  # resource number
    index: int  # position within the resource
    span: Span
    numbers: frozenset[tuple[str, ...]]
    subject: frozenset[str]
    tokens: frozenset[str]
    heading: bool  # "Meal allowance and mileage": names topics, supports no claim's subject
    # a bare number the sentence starts with: a table row's or a list item's ("21 All records
    # relating to ..."), not a value of what the sentence says
    enumerator: frozenset[tuple[str, ...]] = frozenset()
    # it opens with a pronoun ("It takes about 55 minutes"): its subject is the sentence before
    continues: bool = False
    # the words of its document's file name ("security_training") and of the title and
    # section heading it sits under (``Hit.context``: "Mandatory security awareness training
    # 2026 > Deadline"), which name the topic of every sentence in it, as a heading does
    # (one set shared by the resource's sentences)
    topic: frozenset[str] = frozenset()
    units: frozenset[str] = frozenset()  # what its numbers count (``units``)


@dataclass(frozen=True)
class _Window:
    n: int
    first: int
    last: int
    score: float


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


def _vectors(embedder: Embedder | Callable[[list[str]], list[list[float]]], texts: list[str]):
    embed = embedder.embed if hasattr(embedder, "embed") else embedder
    if not texts:
        return []
    try:
        import numpy as np

        return np.asarray(embed(texts), dtype=np.float32)
    except ImportError:  # pragma: no cover - numpy ships with sentence-transformers
        return embed(texts)


def _candidates(
    per_resource: list[list[_ResSentence]],
    terms: frozenset[str],
    nums: frozenset[tuple[str, ...]],
    neighbours: int = 1,
) -> set[tuple[int, int]]:
    """The resource sentences, as (n, index), that share a subject word or a number with
    ``terms``/``nums``, with ``neighbours`` sentences either side."""
    out: set[tuple[int, int]] = set()
    for sents in per_resource:
        for s in sents:
            if (s.numbers & nums) or _covered(terms, set(s.subject | s.tokens)):
                out.update((s.n, s.index + d) for d in range(-neighbours, neighbours + 1))
    return out


def _possible(claims: list[_Claim], per_resource: list[list[_ResSentence]]) -> set[tuple[int, int]]:
    """The resource sentences, as (n, index), of every window that passes the exact rules
    for some claim (its numbers, and at least one subject word): the only ones that can
    support anything, so the only ones the embedding model needs to see (it is nearly all of
    the check's cost). Skipping the others changes no decision."""
    out: set[tuple[int, int]] = set()
    for claim in claims:
        if not claim.is_claim:
            continue
        for sents in per_resource:
            for i in range(len(sents)):
                for first, last in ((i, i), (i - 1, i), (i, i + 1)):
                    if first < 0 or last >= len(sents):
                        continue
                    # score 1.0: a window with any subject word may still pass on similarity
                    if _check_window(claim, sents, first, last, 1.0) is None:
                        out.update((sents[0].n, j) for j in range(first, last + 1))
    return out


def _cosines(
    embedder: Embedder | Callable[[list[str]], list[list[float]]],
    queries: list[str],
    targets: list[str],
    wanted: list[bool],
) -> list[list[float]]:
    """Cosine of every query with every wanted target, in one embedding call; 0.0 for the
    targets left out."""
    keep = [j for j, w in enumerate(wanted) if w]
    vectors = _vectors(embedder, queries + [targets[j] for j in keep]) if queries else []
    sims = _similarities(
        vectors, range(len(queries)), range(len(queries), len(queries) + len(keep))
    )
    rows = []
    for row in sims:
        full = [0.0] * len(targets)
        for j, value in zip(keep, row, strict=True):
            full[j] = value
        rows.append(full)
    return rows


def _similarities(vectors, rows: range, cols: range) -> list[list[float]]:
    try:
        import numpy as np

        if isinstance(vectors, np.ndarray):
            a, b = vectors[rows.start : rows.stop], vectors[cols.start : cols.stop]
            return (a @ b.T).tolist() if len(a) and len(b) else [[] for _ in rows]
    except ImportError:  # pragma: no cover
        pass
    return [[_dot(vectors[i], vectors[j]) for j in cols] for i in rows]


def _token_similarity(claim: frozenset[str], other: frozenset[str]) -> float:
    """Share of the claim's tokens found in the other text (RAGFlow's token side)."""
    return len(claim & other) / len(claim) if claim else 0.0


def _is_heading(text: str) -> bool:
    return len(text) < _SHORT_LINE and not re.search(r"[.!?;)\"'\u201d]\s*$", text)


_ENUMERATOR = re.compile(r"\(?(\d{1,3})[.)]?\s+(?=[A-Z])")


# what a number counts: money when a currency stands by it, else the word after it ("40
# parking spaces" -> "park"); a value of one kind is not borrowed from a value of another
_UNIT = re.compile(
    r"(?P<cur>EUR|USD|GBP|CHF|[€$£])?\s?\d[\d.,:]*\s?(?:(?P<cur2>EUR|USD|GBP|CHF|[€$£%])|"
    r"(?:[a-z]+\s)??(?P<word>[A-Za-z]{2,}))?"
)


def units(text: str) -> frozenset[str]:
    """The kinds of the values ``text`` states: "money", "%" or the stem of the word after
    the number ("40 parking spaces" -> "park", "55 minutes" -> "minut")."""
    out = set()
    for m in _UNIT.finditer(text):
        if m["cur"] or (m["cur2"] and m["cur2"] != "%"):
            out.add("money")
        elif m["cur2"]:
            out.add("%")
        elif m["word"]:
            out.update(tokenize(m["word"])[:1])
    return frozenset(out)


# a sentence that opens with a pronoun takes its subject from the sentence before it
_CONTINUES = re.compile(r"(?:It|This|That|They|These|Those|He|She)\b")


def _enumerator(text: str) -> frozenset[tuple[str, ...]]:
    m = _ENUMERATOR.match(text)
    return numbers(m.group(1), claim=False) if m else frozenset()


def _resource_sentences(resources: Sequence[Resource]) -> list[list[_ResSentence]]:
    out: list[list[_ResSentence]] = []
    for n, res in enumerate(resources, start=1):
        sents = []
        topic = subject_terms(_about(res))
        for i, span in enumerate(split_sentences(res.text)):
            text = res.text[span.start : span.end]
            sents.append(
                _ResSentence(
                    n,
                    i,
                    span,
                    numbers(text, claim=False),
                    subject_terms(text),
                    frozenset(tokenize(text)),
                    _is_heading(text),
                    _enumerator(text),
                    bool(_CONTINUES.match(text)),
                    topic,
                    units(text),
                )
            )
        out.append(sents)
    return out


@dataclass(frozen=True)
class _Claim:
    span: Span  # in the raw answer
    text: str  # markers stripped
    cited: tuple[int, ...]
    numbers: frozenset[tuple[str, ...]]
    subject: frozenset[str]
    tokens: frozenset[str]
    names: frozenset[str] = frozenset()  # capitalised words (in attribute: none names them)
    core: str = ""  # ``text`` without its lead-in ("According to the resources, "): compared
    units: frozenset[str] = frozenset()  # what its numbers count (``units``)

    @property
    def is_claim(self) -> bool:
        """Something to check: not filler ("Yes.") and not the model's "I don't know"."""
        return bool(self.numbers or self.subject) and not is_refusal(self.text)

    @property
    def incomplete(self) -> bool:
        """The sentence stops where its value should be: "The address to write to is [1]."
        (the model put the marker where the answer belongs). Nothing supports it."""
        return bool(_DANGLING.search(self.text))


# A sentence that ends on one of these words has lost its object: a copula, an article, a
# possessive, or a preposition that introduces a value (a date "on", a time "at", a deadline
# "by"). Lower case only ("Plan A." is a name); prepositions that end sentences ("entitled
# to", "aware of", "log on", "and so on") are not in the list or are excepted.
_DANGLING = re.compile(
    r"(?<![\w-])(?:is|are|was|were|be|the|a|an|your|their|its|our|than|per|at|by|"
    r"(?<!\bso )(?<!\blog )(?<!\bgo )(?<!\blater )(?<!\bcarry )(?<!\bthen )on)\s*[.!]?$"
)


# "According to the information in the resources, ...", "Based on the information provided in
# the resources, ...", "According to the employee handbook [1], ...": where the model says it
# read the claim, not the claim; left out of what is compared with the resources (it pulled
# a right answer's similarity under the floor) and of the claim's words
_LEAD_IN = re.compile(
    r"^(?:according\s+to|based\s+on|as\s+(?:stated|mentioned|described|set\s+out)\s+in)\s+"
    r"(?:the\s+)?(?:information\s+(?:provided\s+|given\s+)?(?:in\s+)?(?:the\s+)?)?"
    r"[\w'’ -]{0,40}?\b(?:resources?|documents?|handbook|memo|policy|passages?|text|"
    r"information)(?:\s+(?:provided|given))?\s*,\s*",
    re.I,
)


def strip_markers(text: str) -> str:
    """``text`` without the model's citation marks ("[1]", "[1, 2]", "[Resource 3]"), spaces
    before punctuation and runs of whitespace: what a sentence says."""
    text = _CITE.sub("", text)
    text = re.sub(r"[ \t]+([.,;:!?])(?=\s|$)", r"\1", text)  # "fact [1]." -> "fact."
    return re.sub(r"\s+", " ", text).strip()


def _claims(answer: str, n_resources: int) -> list[_Claim]:
    claims: list[_Claim] = []
    for span in split_sentences(answer):
        raw = answer[span.start : span.end]
        cited = tuple(
            dict.fromkeys(
                n
                for m in _CITE.finditer(raw)
                for n in _numbers(m.group(1))
                if 1 <= n <= n_resources
            )
        )
        text = strip_markers(raw)
        core = _LEAD_IN.sub("", text, count=1) or text
        claims.append(
            _Claim(
                span,
                text,
                cited,
                numbers(text),
                subject_terms(core),
                frozenset(tokenize(core)),
                name_terms(core),
                core,
                units(text),
            )
        )
    return claims


STOPS_BEFORE_VALUE = "the sentence stops before its value"


def _check_window(
    claim: _Claim, sents: list[_ResSentence], first: int, last: int, score: float
) -> str | None:
    """Why the window does not support the claim, or None when it does."""
    if claim.incomplete:
        return STOPS_BEFORE_VALUE
    have, subject = _window_facts(sents, first, last)
    missing = sorted(describe(x) for x in claim.numbers - have)
    if missing:
        return "numbers not in the passage: " + ", ".join(missing)
    if claim.names:  # what no resource names (``_unnamed``): nothing supports the claim
        return "names what no resource does: " + ", ".join(sorted(claim.names))
    if claim.subject:
        coverage = _covered(claim.subject, subject) / len(claim.subject)
        if not (coverage > SUBJECT_SHARE or (coverage > 0 and score >= PARAPHRASE_SCORE)):
            return "the passage is about something else"
    return _borrowed(claim, sents, first, last)


def _unnamed(claim: _Claim, known: set[str]) -> _Claim:
    """The claim with only the capitalised words that none of the resources names
    (``known``: their sentences' words, headings' too, and their file names): the hotel cap
    "in New York" when the resources give caps for Germany, London and Paris. A name one
    resource has is left to the other rules ("in London ... EUR 170" is ``_borrowed``); one
    that none has leaves the claim unsupported, whatever else it shares with them."""
    if not claim.names:
        return claim
    return replace(
        claim, names=frozenset(t for t in claim.names if not _covered(frozenset({t}), known))
    )


def _about(res: Resource) -> str:
    """What names a resource's topic besides its sentences: its file name as words and the
    title > heading it is indexed under (``Hit.context``; read with getattr, so a resource
    without it is still one)."""
    return re.sub(r"[\W_]+", " ", f"{res.source} {getattr(res, 'context', '') or ''}")


def _known_words(resources: Sequence[Resource], per_resource: list[list[_ResSentence]]) -> set[str]:
    words = {w for sents in per_resource for x in sents for w in x.subject | x.tokens}
    return words.union(*(tokenize(_about(r)) for r in resources))


_BORROWED = "the passage gives "  # how ``_borrowed`` states what it found


def _borrowed(claim: _Claim, sents: list[_ResSentence], first: int, last: int) -> str | None:
    """The claim put one sentence's value on another sentence's subject: a subject word
    that the sentences holding the claim's numbers lack is found only in a sentence next to
    them that states other numbers ("the cap in London is EUR 170" from "The cap is EUR 170 in
    Germany. In Munich, Zurich, London and Paris the cap is EUR 220."). A word the passage
    also uses elsewhere (a heading, a sentence without numbers) names its topic, not one
    value's subject: "hotel" under the heading "Hotels" goes with both caps. A table row's
    number ("21 All records relating to ...") is not a value: the row's description goes
    with the period in the next line ("Not less than 10 Years"). Nor is a value of another
    kind ("an underground garage with 40 parking spaces. Spaces are rented monthly for EUR
    35": a count beside a price), and a sentence that opens with a pronoun ("It takes about
    55 minutes") has its subject in the sentence before it."""
    if not claim.numbers:
        return None
    holding = [x for x in sents[first : last + 1] if x.numbers & claim.numbers]
    # "The training is mandatory ... by 18 September. It takes about 55 minutes.": the
    # sentence before one that opens with a pronoun states its subject, whatever its numbers
    antecedents = [sents[x.index - 1] for x in holding if x.continues and x.index > 0]
    here = set().union(*(x.subject | x.tokens | x.topic for x in holding + antecedents))
    near = {x.index + d for x in holding for d in (-1, 1)}
    for t in sorted(claim.subject):
        word = frozenset({t})
        if _covered(word, here):
            continue
        found = [x for x in sents if _covered(word, x.subject | x.tokens)]
        if found and all(
            x.index in near
            and not x.heading
            and x.numbers - x.enumerator
            and not x.numbers & claim.numbers
            and (not claim.units or not x.units or bool(x.units & claim.units))
            for x in found
        ):
            own = {v for x in found for v in x.numbers - x.enumerator}
            values = ", ".join(sorted(describe(v) for v in own))
            claimed = ", ".join(sorted(describe(v) for v in claim.numbers))
            return f"{_BORROWED}{values} for {t!r}, not {claimed}"
    return None


def _exact(claim: _Claim, sents: list[_ResSentence], first: int, last: int) -> bool:
    """The claim has numbers, all of them are in the window, and so are at least
    ``EXACT_SHARE`` of its subject words."""
    if not claim.numbers:
        return False
    have, words = _window_facts(sents, first, last)
    return claim.numbers <= have and _covered(claim.subject, words) >= EXACT_SHARE * len(
        claim.subject
    )


def _window_facts(
    sents: list[_ResSentence], first: int, last: int
) -> tuple[set[tuple[str, ...]], set[str]]:
    """The numbers of sentences ``first..last`` and their words (headings' words left out:
    a heading names a topic, it does not state the claim), with the words of the
    document's file name ("memo_2026-08_security_training.txt": what every sentence of it
    is about, "It takes about 55 minutes" included)."""
    numbers: set[tuple[str, ...]] = set()
    words: set[str] = set(sents[first].topic) if sents else set()
    for s in sents[first : last + 1]:
        numbers |= s.numbers
        if not s.heading:
            words |= s.subject | s.tokens
    return numbers, words


def _best_windows(
    claim: _Claim, scores: list[float], per_resource: list[list[_ResSentence]], offsets: list[int]
) -> tuple[dict[int, _Window], _Window | None, str | None, str | None]:
    """The best passing window per resource; the best window overall (passing or not) and
    why that one failed; and the first window's finding that the claim put a value on
    another subject (``_borrowed``), whichever window it came from.

    A window is a resource sentence alone or with its neighbour before or after; it scores
    as its better sentence, and on equal scores the single sentence comes first, so a
    neighbour is quoted only when the numbers or the subject need it.
    """
    passing: dict[int, _Window] = {}
    best_fail: tuple[_Window, str] | None = None
    correction: str | None = None
    for r, sents in enumerate(per_resource):
        base = offsets[r]
        candidates = []
        for i in range(len(sents)):
            for first, last in ((i, i), (i - 1, i), (i, i + 1)):
                if first >= 0 and last < len(sents):
                    score = max(scores[base + j] for j in range(first, last + 1))
                    candidates.append((-score, last - first, first, last))
        for neg, _, first, last in sorted(set(candidates)):
            window = _Window(r + 1, first, last, -neg)
            reason = _check_window(claim, sents, first, last, window.score)
            floor = MIN_SCORE_EXACT if _exact(claim, sents, first, last) else MIN_SCORE
            if reason is None and window.score < floor:
                reason = "not similar enough to any resource sentence"
            if reason is None:
                passing[r + 1] = window
                break
            if correction is None and reason.startswith(_BORROWED):
                correction = reason
            if best_fail is None or window.score > best_fail[0].score + 1e-9:
                best_fail = (window, reason)
    best = max(passing.values(), key=lambda w: w.score, default=None)
    if best is not None:
        return passing, best, None, None
    if best_fail is None:
        return passing, None, None, correction
    return passing, best_fail[0], best_fail[1], correction


def _quote(resource: Resource, sents: list[_ResSentence], window: _Window) -> str:
    return resource.text[sents[window.first].span.start : sents[window.last].span.end]


def _with_marker(sentence: str, n: int | None) -> str:
    if n is None:
        return sentence
    m = re.search(r"[.!?:;]+[\"'\u201d\u2019)]*$", sentence)
    cut = m.start() if m else len(sentence)
    return f"{sentence[:cut]} [{n}]{sentence[cut:]}"


def attribute(
    answer: str,
    resources: Sequence[Resource],
    embedder: Embedder | Callable[[list[str]], list[list[float]]],
    *,
    question: str | None = None,
) -> Attribution:
    """Check every sentence of ``answer`` against the ``resources`` the model was given.

    ``embedder`` is an ``Embedder`` (or its ``embed`` function) returning unit vectors; it is
    called once, for the answer's sentences, the resources' sentences and, when given, the
    ``question`` (used only to rank ``closest``).
    """
    per_resource = _resource_sentences(resources)
    known = _known_words(resources, per_resource)
    claims = [_unnamed(c, known) for c in _claims(answer, len(resources))]
    flat = [s for sents in per_resource for s in sents]
    offsets, total = [], 0
    for sents in per_resource:
        offsets.append(total)
        total += len(sents)
    wanted = _possible(claims, per_resource)
    if question:  # to rank the closest passages, should nothing support the answer
        wanted |= _candidates(per_resource, subject_terms(question), numbers(question), 0)
    res_texts = [_mask_numbers(resources[s.n - 1].text[s.span.start : s.span.end]) for s in flat]
    queries = [_mask_numbers(c.core or c.text) for c in claims] + ([question] if question else [])
    cos = _cosines(embedder, queries, res_texts, [(s.n, s.index) in wanted for s in flat])

    supports: list[SentenceSupport] = []
    used: dict[int, list[str]] = {}  # n -> quotes, in order of first use
    status: dict[int, set[str]] = {}
    pieces: list[str] = []
    cursor = out_len = 0
    for k, claim in enumerate(claims):
        gap = _CITE.sub("", answer[cursor : claim.span.start])  # spaces, bullets, stray [n]
        gap = gap.lstrip() if cursor == 0 else gap
        cursor = claim.span.end
        pieces.append(gap)
        out_len += len(gap)
        chosen, best, reason, checked, correction = None, None, None, "skipped", None
        if claim.is_claim:
            scores = [
                VECTOR_WEIGHT * cos[k][j]
                + (1 - VECTOR_WEIGHT) * _token_similarity(claim.tokens, s.tokens)
                for j, s in enumerate(flat)
            ]
            passing, best, reason, correction = _best_windows(claim, scores, per_resource, offsets)
            chosen = next((passing[n] for n in claim.cited if n in passing), None)
            if chosen is not None:
                checked = "kept"
            elif best is not None and reason is None:
                chosen = best
                checked = "moved" if claim.cited else "added"
            else:
                checked = "dropped" if claim.cited else "unsupported"
        rendered = _with_marker(claim.text, chosen.n if chosen else None)
        start, out_len = out_len, out_len + len(rendered)
        pieces.append(rendered)
        if chosen is not None:
            n = chosen.n
            quote = _quote(resources[n - 1], per_resource[n - 1], chosen)
            if quote not in used.setdefault(n, []):
                used[n].append(quote)
            status.setdefault(n, set()).add(checked)
            support = SentenceSupport(
                claim.text, n, quote, chosen.score, claim.cited, checked, start, out_len
            )
        else:
            why = None
            if checked != "skipped":
                why = reason or "no resource to compare with"
            score = best.score if best else 0.0
            support = SentenceSupport(
                claim.text,
                None,
                None,
                score,
                claim.cited,
                checked,
                start,
                out_len,
                why,
                correction,
            )
        supports.append(support)
    text = ("".join(pieces) + _CITE.sub("", answer[cursor:])).rstrip()

    citations = tuple(
        CheckedCitation(
            n,
            resources[n - 1].source,
            resources[n - 1].page,
            tuple(quotes),
            "kept" if "kept" in status[n] else "moved" if "moved" in status[n] else "added",
        )
        for n, quotes in used.items()
    )
    unsupported = tuple(s.text for s in supports if s.checked in ("dropped", "unsupported"))
    closest = _closest(cos, claims, flat, per_resource, resources, question is not None)
    return Attribution(text, tuple(supports), citations, unsupported, closest)


def _closest(
    cos: list[list[float]],
    claims: list[_Claim],
    flat: list[_ResSentence],
    per_resource: list[list[_ResSentence]],
    resources: Sequence[Resource],
    with_question: bool,
    limit: int = CLOSEST_PASSAGES,
) -> tuple[Passage, ...]:
    """The resource sentences closest to the question (when given) or to the answer, at
    most one per resource, and the same sentence of the same page once (overlapping chunks
    of a page share sentences)."""
    rows = [len(claims)] if with_question else range(len(claims))
    best: dict[int, tuple[float, _ResSentence]] = {}
    for j, s in enumerate(flat):
        score = max((cos[i][j] for i in rows), default=0.0)
        if s.n not in best or score > best[s.n][0]:
            best[s.n] = (score, s)
    ranked, seen = [], set()
    for score, s in sorted(best.values(), key=lambda x: -x[0]):
        res = resources[s.n - 1]
        key = (res.source, res.page, " ".join(res.text[s.span.start : s.span.end].split()))
        if key not in seen:
            seen.add(key)
            ranked.append((score, s))
    ranked = ranked[:limit]
    return tuple(
        Passage(
            s.n,
            resources[s.n - 1].source,
            resources[s.n - 1].page,
            resources[s.n - 1].text[s.span.start : s.span.end],
            score,
        )
        for score, s in ranked
    )


# --- refusals ------------------------------------------------------------------------------


def not_found(attribution: Attribution) -> Refusal:
    """The refusal that replaces an answer none of whose sentences is supported."""
    corrections = tuple(dict.fromkeys(s.correction for s in attribution.sentences if s.correction))
    return Refusal(
        NOT_FOUND,
        CLOSEST_LEAD,
        attribution.closest,
        "not_found",
        attribution.unsupported,
        corrections,
        any(s.reason == STOPS_BEFORE_VALUE for s in attribution.sentences),
    )


@dataclass(frozen=True)
class ScoredSentence:
    """A resource sentence scored against the question (``n``: the resource; ``index``: its
    position in the resource; ``heading``: a short line without end punctuation)."""

    n: int
    index: int
    span: Span
    score: float
    heading: bool


def score_sentences(
    question: str,
    resources: Sequence[Resource],
    embedder: Embedder | Callable[[list[str]], list[list[float]]],
) -> list[list[ScoredSentence]]:
    """Every sentence of every resource scored against the question, per resource, by the
    same 0.9 vector + 0.1 token score as the answer check. One embedding call."""
    per_resource = _resource_sentences(resources)
    flat = [s for sents in per_resource for s in sents]
    if not flat:
        return [[] for _ in resources]
    texts = [question] + [resources[s.n - 1].text[s.span.start : s.span.end] for s in flat]
    vectors = _vectors(embedder, texts)
    row = _similarities(vectors, range(1), range(1, len(texts)))[0]
    q_tokens = frozenset(tokenize(question))
    scored = iter(
        ScoredSentence(
            s.n,
            s.index,
            s.span,
            VECTOR_WEIGHT * c + (1 - VECTOR_WEIGHT) * _token_similarity(q_tokens, s.tokens),
            s.heading,
        )
        for c, s in zip(row, flat, strict=True)
    )
    return [[next(scored) for _ in sents] for sents in per_resource]


def best_passage(
    resources: Sequence[Resource], scored: Sequence[Sequence[ScoredSentence]]
) -> Passage | None:
    """The best-scoring sentence of all resources, as a verbatim ``Passage``."""
    flat = [s for sents in scored for s in sents if not s.heading] or [
        s for sents in scored for s in sents
    ]
    if not flat:
        return None
    s = max(flat, key=lambda x: x.score)
    res = resources[s.n - 1]
    return Passage(s.n, res.source, res.page, res.text[s.span.start : s.span.end], s.score)


def answers_question(
    attribution: Attribution,
    question: str,
    resources: Sequence[Resource],
    embedder: Embedder | Callable[[list[str]], list[list[float]]],
) -> bool:
    """Whether the answer's first claim is supported and about what the question asks: it
    has more than half of the question's subject words, or its quote holds, or stands next
    to, the resource sentence closest to the question ("Spaces are rented monthly for EUR
    35" after "The new building has an underground garage with 40 parking spaces"). Asked
    of an answer the model gave only when pressed (``llm.press``): it must answer the
    question, not restate a rule that stands further off ("The garage also has 8 charging
    points" for "How much does a parking space in the garage cost?")."""
    first = next((s for s in attribution.sentences if s.checked != "skipped"), None)
    if first is None or first.quote is None:
        return False
    asked = subject_terms(question)
    claim = subject_terms(_LEAD_IN.sub("", first.text, count=1))
    if asked and _covered(asked, claim) / len(asked) > SUBJECT_SHARE:
        return True
    scored = score_sentences(question, resources, embedder)
    flat = [x for sents in scored for x in sents if not x.heading]
    if not flat:
        return False
    best = max(flat, key=lambda x: x.score)
    if best.n != first.n:
        return False
    start = resources[best.n - 1].text.find(first.quote)
    if start < 0:
        return False
    end = start + len(first.quote)
    quoted = [x.index for x in scored[best.n - 1] if start <= x.span.start and x.span.end <= end]
    return bool(quoted) and min(quoted) - 1 <= best.index <= max(quoted) + 1


def may_help(
    question: str,
    resources: Sequence[ScoredResource],
    embedder: Embedder | Callable[[list[str]], list[list[float]]],
    *,
    min_similarity: float,
    refusal_text: str = "I don't know.",
) -> Refusal | None:
    """For a model "I don't know" although retrieval was confident (the best resource's
    ``similarity`` is at least ``min_similarity``): the refusal with the resource sentence
    closest to the question. None when retrieval was not confident or nothing is close."""
    sims = [r.similarity for r in resources if getattr(r, "similarity", None) is not None]
    if not sims or max(sims) < min_similarity:
        return None
    passage = best_passage(resources, score_sentences(question, resources, embedder))
    if passage is None or passage.score < HINT_MIN_SCORE:
        return None
    return Refusal(refusal_text, MAY_HELP_LEAD, (passage,), "dont_know")


def check_answer(
    answer: str,
    question: str,
    resources: Sequence[ScoredResource],
    embedder: Embedder | Callable[[list[str]], list[list[float]]],
    *,
    min_similarity: float,
) -> Attribution | Refusal:
    """The whole check, for every backend, after the model finished.

    - the model said "I don't know": a ``Refusal`` (with the passage that may help when the
      best resource's similarity is at least ``min_similarity``);
    - no sentence of the answer is supported: a ``Refusal`` with the closest passages;
    - otherwise the ``Attribution``: checked markers, citations, unsupported sentences.
    """
    if not answer.strip() or is_refusal(answer):
        hint = may_help(question, resources, embedder, min_similarity=min_similarity)
        return hint or Refusal("I don't know.", MAY_HELP_LEAD, (), "dont_know")
    attribution = attribute(answer, resources, embedder, question=question)
    claims = [s for s in attribution.sentences if s.checked != "skipped"]
    if claims and not attribution.supported:
        return not_found(attribution)
    return attribution
