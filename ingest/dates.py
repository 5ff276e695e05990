"""A document's effective date, and where it came from. Pure functions: no files, no store.

Where the date comes from, first found wins:

1. ``given``: the admin or the command line said so (``python -m ingest PATH --effective
   2026-09-01``, the date field of the upload page, ``--set-effective`` later on);
2. ``front matter``: a ``date:`` / ``effective:`` key in a Markdown front matter block;
3. ``text``: a ``Date:`` / ``Effective:`` line near the top of the document (memos);
4. ``file name``: ``memo_2026-09-08_...`` or ``memo_2026-09_...`` (the first of the month);
5. ``pdf metadata``: the PDF's creation date (else its modification date);
6. ``added``: the day it was added to the index.

An impossible date where a date is clearly meant (``2026-02-30``, ``Date: 31 April 2026``)
is an error that names the file, never a silent fallback: the next origin would be wrong
without anyone noticing.

Also here: what a document says it replaces ("supersedes section 6 of the Employee
Handbook"), recorded at ingest so answers can set the superseded passage aside.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from ingest.errors import IngestError

Origin = Literal["given", "front matter", "text", "file name", "pdf metadata", "added"]
ORIGINS: tuple[Origin, ...] = (
    "given",
    "front matter",
    "text",
    "file name",
    "pdf metadata",
    "added",
)

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS["sept"] = 9
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))

# 2026-09-08, 2026/09/08, 2026.09.08; 8 September 2026, 8. Sept. 2026, 8th September 2026;
# September 8, 2026; 08.09.2026 (day first, as written in Germany and most of Europe)
_ISO = re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_DMY_WORDS = re.compile(
    rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th)?\.?\s+({_MONTH})\.?,?\s+(\d{{4}})(?!\d)", re.I
)
_MDY_WORDS = re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})(?!\d)", re.I)
_DMY_DOTS = re.compile(r"(?<!\d)(\d{1,2})\.(\d{1,2})\.(\d{4})(?!\d)")
_YM = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})(?![\d-])")

# a label line: "Date: 8 September 2026", "**Date:** ...", "Effective date: ...", "Effective: ..."
_LABEL = re.compile(
    r"^[\s*_>#-]*(effective(?:\s+date|\s+from|\s+as\s+of)?|date(?:d)?)[\s*_]*:[\s*_]*(.+)$",
    re.I | re.M,
)
_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_FRONT_KEY = re.compile(r"^(effective(?:_date)?|date)\s*:\s*['\"]?([^'\"\n]+)", re.I | re.M)
# in a file name: 2026-09-08, 2026_09_08, 20260908, or 2026-09 (year and month)
_NAME_YMD = re.compile(r"(?<!\d)((?:19|20)\d{2})[-_.]?(\d{2})[-_.]?(\d{2})(?!\d)")
_NAME_YM = re.compile(r"(?<!\d)((?:19|20)\d{2})[-_.](\d{2})(?!\d)")
_PDF_DATE = re.compile(r"^(?:D:)?(\d{4})(\d{2})?(\d{2})?")

TEXT_HEAD = 3000  # characters of the document read for a "Date:" line or front matter


@dataclass(frozen=True)
class EffectiveDate:
    date: date
    origin: Origin

    @property
    def iso(self) -> str:
        return self.date.isoformat()


class ImpossibleDate(ValueError):
    """Looks like a date but is none (``2026-02-30``); the message says why."""


def make_date(year: int, month: int, day: int) -> date:
    """``date(year, month, day)`` with a message a person understands when it is none."""
    if not 1 <= month <= 12:
        raise ImpossibleDate(f"{year:04d}-{month:02d}-{day:02d} is not a date (no month {month})")
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        raise ImpossibleDate(
            f"{year:04d}-{month:02d}-{day:02d} is not a date "
            f"({calendar.month_name[month]} {year} has {last} days)"
        )
    return date(year, month, day)


def _first_date(text: str) -> date | None:
    """The first date written in ``text`` in any of the accepted forms; ``ImpossibleDate``
    when that first one is none."""
    found: list[tuple[int, tuple[int, int, int]]] = []
    for m in _ISO.finditer(text):
        found.append((m.start(), (int(m[1]), int(m[2]), int(m[3]))))
    for m in _DMY_WORDS.finditer(text):
        found.append((m.start(), (int(m[3]), _MONTHS[m[2].lower()], int(m[1]))))
    for m in _MDY_WORDS.finditer(text):
        found.append((m.start(), (int(m[3]), _MONTHS[m[1].lower()], int(m[2]))))
    for m in _DMY_DOTS.finditer(text):
        found.append((m.start(), (int(m[3]), int(m[2]), int(m[1]))))
    if not found:
        return None
    _, (year, month, day) = min(found)
    return make_date(year, month, day)


def parse_date(text: str) -> date:
    """A date a person typed: ``2026-09-01``, ``2026-09`` (the first of the month),
    ``8 September 2026``, ``September 8, 2026`` or ``08.09.2026``. ``ValueError`` with the
    accepted forms, or ``ImpossibleDate`` saying why, when it is none."""
    text = text.strip()
    m = _YM.fullmatch(text)
    if m:
        return make_date(int(m[1]), int(m[2]), 1)
    found = _first_date(text)
    if found is None:
        raise ValueError(
            f"{text!r} is not a date; write it as 2026-09-01 (or 2026-09, 1 September 2026)"
        )
    return found


def date_in_front_matter(text: str) -> date | None:
    """``date:`` or ``effective:`` in a Markdown front matter block (``---`` lines);
    ``effective`` wins over ``date``."""
    block = _FRONT_MATTER.match(text)
    if not block:
        return None
    keys = {k.lower().removesuffix("_date"): v for k, v in _FRONT_KEY.findall(block[1])}
    value = keys.get("effective") or keys.get("date")
    return parse_date(value) if value else None


def date_in_text(text: str) -> date | None:
    """The date of an ``Effective:`` line, else of the first ``Date:`` line, in the head of
    the text (a memo's header). A label whose value holds no date is ignored."""
    head = text[:TEXT_HEAD]
    labelled = [(m[1].lower().startswith("effective"), m[2]) for m in _LABEL.finditer(head)]
    for wanted in (True, False):
        for is_effective, value in labelled:
            if is_effective == wanted:
                found = _first_date(value)
                if found is not None:
                    return found
    return None


def date_in_name(name: str) -> date | None:
    """A date in a file's name: ``memo_2026-09-08_x.md``, ``20260908.pdf``,
    ``memo_2026-09_x.md`` (the first of that month). Only the file's own name is read, not
    its folders."""
    base = re.split(r"[/\\]", name)[-1]
    m = _NAME_YMD.search(base)
    if m:
        return make_date(int(m[1]), int(m[2]), int(m[3]))
    m = _NAME_YM.search(base)
    if m and 1 <= int(m[2]) <= 12:  # "v2021-17" is a version, not a month
        return make_date(int(m[1]), int(m[2]), 1)
    return None


def pdf_date(value: str | None) -> date | None:
    """A PDF date string (``D:20260101120000+01'00'``, PDF 1.7 section 7.9.4) as a date;
    None when absent or unreadable (PDF metadata is often junk: no error for it)."""
    if not value:
        return None
    m = _PDF_DATE.match(value.strip())
    if not m:
        return None
    try:
        return make_date(int(m[1]), int(m[2] or 1), int(m[3] or 1))
    except ImpossibleDate:
        return None


def effective_date(
    *,
    source: str,
    text: str = "",
    given: date | None = None,
    pdf_created: str | None = None,
    added: datetime | date | None = None,
) -> EffectiveDate:
    """Where a document's date comes from, in the order of this module's docstring.
    ``source`` is the document's name (for its date and for messages), ``text`` its text
    (the first pages are enough), ``pdf_created`` the PDF's own date string. Raises
    ``IngestError`` naming the file when a date it states is impossible."""
    if given is not None:
        return EffectiveDate(given, "given")
    finders = (
        ("front matter", lambda: date_in_front_matter(text), "its front matter"),
        ("text", lambda: date_in_text(text), 'its "Date:" line'),
        ("file name", lambda: date_in_name(source), "its file name"),
    )
    for origin, find, where in finders:
        try:
            found = find()
        except ImpossibleDate as exc:
            raise IngestError(
                f"{source}: the date in {where} is impossible: {exc}; correct it, or give "
                "the date with --effective YYYY-MM-DD"
            ) from None
        if found is not None:
            return EffectiveDate(found, origin)  # type: ignore[arg-type]
    found = pdf_date(pdf_created)
    if found is not None:
        return EffectiveDate(found, "pdf metadata")
    added = added or datetime.now()
    return EffectiveDate(added.date() if isinstance(added, datetime) else added, "added")


# ---- what a document says it replaces ----------------------------------------------------
_SUPERSEDES = re.compile(
    r"\b(?:supersedes|replaces|overrides|withdraws|revokes|cancels)\s+(?:the\s+)?"
    r"(.{3,120}?)(?=\s+(?:wherever|where|until|as\s+of|from|with(?:\s+\w+)?\s+effect|effective)\b|[;:\n]|\.(?:\s|$)|\)|$)",
    re.I,
)
_SECTION = re.compile(r"\b(?:section|chapter|§)\s*(\d+(?:\.\d+)*)", re.I)
_DOC_WORDS = re.compile(
    r"\b(handbook|policy|policies|memo|guideline|guidelines|manual|rules?)\b", re.I
)


@dataclass(frozen=True)
class Supersedes:
    """One "supersedes section 6 of the Employee Handbook": the document's words
    (``employee handbook 2026``), and the section when one is named (``6``)."""

    document: str
    section: str | None = None
    title: str | None = None  # the section's title when quoted: ("Remote Work")

    def to_text(self) -> str:
        parts = [self.document]
        if self.section:
            parts.append(f"section {self.section}")
        if self.title:
            parts.append(f'"{self.title}"')
        return " | ".join(parts)

    @classmethod
    def from_text(cls, text: str) -> Supersedes:
        parts = text.split(" | ")
        section = next(
            (p.removeprefix("section ") for p in parts if p.startswith("section ")), None
        )
        title = next((p.strip('"') for p in parts if p.startswith('"')), None)
        return cls(parts[0], section, title)


def supersedes(text: str) -> list[Supersedes]:
    """What the head of ``text`` says it replaces: "supersedes Employee Handbook section 6",
    "This memo supersedes section 6 ("Remote Work") of the Employee Handbook 2026",
    "withdraws section 9.2 of the Travel Policy". Phrases that name no document kind
    (handbook, policy, memo, guideline, manual, rules) are ignored: "replaces all earlier
    versions" says nothing about another document."""
    found: dict[tuple[str, str | None], Supersedes] = {}
    head = text[:TEXT_HEAD].replace("*", "")
    head = re.sub(r"\(\s*[\"“]([^\"”()]+)[\"”]\s*\)", r'"\1"', head)  # ("Remote Work")
    for m in _SUPERSEDES.finditer(head):
        phrase = m[1]
        if not _DOC_WORDS.search(phrase):
            continue
        section = _SECTION.search(phrase)
        title = re.search(r"\"([^\"]{3,60})\"", phrase)
        words = _SECTION.sub(" ", phrase)
        if title:
            words = words.replace(title[0], " ")
        words = re.sub(r"\b(?:of|in|the|our|to|and)\b", " ", words, flags=re.I)
        document = " ".join(re.sub(r"[^\w\s-]", " ", words).split()).lower()
        if not document:
            continue
        ref = Supersedes(document, section[1] if section else None, title[1] if title else None)
        key = (ref.document, ref.section)
        if key not in found or (ref.title and not found[key].title):
            found[key] = ref
    # "Employee Handbook section 6" and "section 6 of the Employee Handbook 2026" are one
    refs = list(found.values())
    out: list[Supersedes] = []
    for ref in refs:
        twin = next(
            (
                o
                for o in out
                if o.section == ref.section
                and (o.document in ref.document or ref.document in o.document)
            ),
            None,
        )
        if twin is None:
            out.append(ref)
        elif ref.title and not twin.title:
            out[out.index(twin)] = Supersedes(twin.document, twin.section, ref.title)
    return out
