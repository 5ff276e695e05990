"""Where a chunk sits in its document: the document's title and the section heading above it.

Both are added to what is embedded and BM25-indexed (``retrieval.context.index_text``), never
to what is shown or quoted. A question often names the topic ("the probation period") while
the paragraph that answers it only says "it may be extended"; the heading carries the topic.
This is Anthropic's "contextual retrieval" (2024) with the context read from the document's
own structure instead of written by a model, the same idea as the section-title fields of
structured BM25 (BM25F, Robertson, Zaragoza and Taylor, CIKM 2004).

Pure functions over the loader's pages; the heuristics were chosen on the sample handbook and
the seven policy PDFs of ``../shared/data/policies`` (PDF text has no markup: a heading is a
short line that does not read like the middle of a sentence).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import PurePosixPath

from ingest.loaders import Page

MAX_HEADING_CHARS = 80
MAX_HEADING_WORDS = 10
MAX_TITLE_CHARS = 120

_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")
_NUMBERED = re.compile(r"^(section\s+)?\d{1,3}(\.\d{1,3})*\.?\)?\s+[^\W\d_]", re.IGNORECASE)
_FIELD = re.compile(r"^[^\W\d_][\w ]{0,20}:\s+\S")  # "To: All employees", "Date: 1 May"
_SUBJECT = re.compile(r"^\W*subject\W*:\s*(.+)$", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
_WORD = re.compile(r"[^\W\d_]{2,}")
_MONTHS = frozenset("jan feb mar apr may jun jul aug sep oct nov dec".split())
_SENTENCE_END = (".", ",", ";", "!", "?")
_LOWER_JOINERS = frozenset(
    "a an and as at by for from in into of on or the to with".split()
)  # words a wrapped line of running text may start with


def humanize_name(source: str) -> str:
    """A file's name as words: ``"hr/HR_Policy_Procedures.pdf"`` -> ``"HR Policy Procedures"``."""
    stem = PurePosixPath(source).stem
    return " ".join(re.sub(r"[_\-.]+", " ", stem).split())


def _norm(line: str) -> str:
    """A line with its numbers blanked, to spot running headers and footers ("Page 3")."""
    return _DIGITS.sub("#", " ".join(line.split()).lower())


def furniture(norms: Sequence[Sequence[str]]) -> frozenset[str]:
    """Normalised lines repeated on many pages (running headers and footers): they are no
    section's heading. A line counts when it is on at least 3 pages and 30 % of them.
    ``norms``: each page's lines as ``_norm`` makes them ("" for a blank line), which
    ``page_headings`` makes once for this and for its own pass."""
    if len(norms) < 3:
        return frozenset()
    seen: Counter[str] = Counter()
    for page in norms:
        seen.update({line for line in page if line})
    need = max(3, int(0.3 * len(norms)))
    return frozenset(line for line, n in seen.items() if n >= need)


def heading_of(line: str, previous: str = "") -> str | None:
    """The heading ``line`` is, or None when it reads like running text.

    A Markdown ``#`` line always is. Otherwise a heading is short (at most 80 characters and
    10 words), has letters, starts with a capital (after its section number, if any), is no
    "Field: value" line, is in Title Case when longer than five words, does not stop at a
    joining word or an open parenthesis, does not end like a
    sentence or a clause, and does not continue a sentence cut on the previous line (which
    would end without a full stop, or with a joining word).
    """
    text = " ".join(line.split())
    md = _MD_HEADING.match(line)
    if md:
        return md.group(2).strip("*_ ") or None
    if not text or len(text) > MAX_HEADING_CHARS or len(text.split()) > MAX_HEADING_WORDS:
        return None
    if len(_WORD.findall(text)) == 0 or text.endswith(_SENTENCE_END):
        return None
    numbered = _NUMBERED.match(text)
    words = text.split()
    first = words[1] if numbered and len(words) > 1 else words[0]
    after = words[2] if numbered and len(words) > 2 else ""
    if numbered and first[:3].lower() in _MONTHS and (not after or after[:1].isdigit()):
        return None  # a date ("1 April 2010"), not section 1
    if not first[:1].isupper() or (not numbered and _FIELD.match(text)):
        return None
    if words[-1].lower() in _LOWER_JOINERS or text.count("(") != text.count(")"):
        return None  # a line cut in mid-sentence
    long_words = [w for w in words if len(w) > 3 and w[:1].isalpha()]
    if len(words) > 5 and sum(w[:1].isupper() for w in long_words) < 0.6 * len(long_words):
        return None  # a long line in sentence case is running text; headings are Title Case
    prev = " ".join(previous.split())
    if prev and not numbered:
        last_word = prev.rsplit(" ", 1)[-1].lower()
        if not prev.endswith((".", ":", "?", "!")) and len(prev) > MAX_HEADING_CHARS:
            return None  # the previous line was wrapped running text: this continues it
        if last_word in _LOWER_JOINERS:
            return None
    return text.rstrip(":").strip()


def document_title(pages: Sequence[Page], source: str) -> str:
    """The document's title: a Markdown file's first ``#`` heading or a memo's "Subject:"
    line near the top, else its file name as
    words (file names of policies are mostly their titles; a PDF's first lines are often a
    company address or a date)."""
    for page in pages[:1]:
        for line in page.text.splitlines()[:20]:
            md = _MD_HEADING.match(line)
            if md and len(md.group(1)) == 1:
                return md.group(2).strip("*_ ")[:MAX_TITLE_CHARS]
            subject = _SUBJECT.match(line)
            if subject:
                return subject.group(1).strip("*_ ")[:MAX_TITLE_CHARS]
    return humanize_name(source)[:MAX_TITLE_CHARS]


def heading_level(heading: str, line: str) -> int:
    """How deep a heading sits: a Markdown heading's number of ``#``, a numbered heading's
    count of numbers ("3" -> 1, "3.2" -> 2), 9 for an unnumbered one (under everything)."""
    md = _MD_HEADING.match(line)
    if md:
        return len(md.group(1))
    numbered = _NUMBERED.match(heading)
    if numbered:
        return heading.split()[0 if not heading.lower().startswith("section") else 1].count(".") + 1
    return 9


def page_headings(pages: Sequence[Page], depth: int = 2) -> list[list[tuple[int, str]]]:
    """For each page, where its headings start and the heading path in effect from there, as
    (character offset in the page text, "Section > Subsection"), in order. The path keeps the
    last ``depth`` levels and goes on over page breaks; running headers and footers are
    skipped."""
    lines = [page.text.splitlines(keepends=True) for page in pages]
    norms = [[_norm(line) for line in on_page] for on_page in lines]
    skip = furniture(norms)
    out: list[list[tuple[int, str]]] = []
    stack: list[tuple[int, str]] = []  # (level, heading), outermost first
    for on_page, normed in zip(lines, norms, strict=True):
        found: list[tuple[int, str]] = []
        offset, previous = 0, ""
        for line, norm in zip(on_page, normed, strict=True):
            stripped = line.strip()
            if stripped and norm not in skip:
                heading = heading_of(line.rstrip("\r\n"), previous)
                if heading:
                    level = heading_level(heading, line)
                    while stack and stack[-1][0] >= level:
                        stack.pop()
                    stack.append((level, heading))
                    found.append((offset, " > ".join(h for _, h in stack[-depth:])))
                previous = stripped
            offset += len(line)
        out.append(found)
    return out


def heading_at(headings: Sequence[tuple[int, str]], offset: int, carried: str) -> str:
    """The heading path in effect at ``offset`` of a page: the last one that starts at or
    before it, else ``carried`` (where the pages before left off)."""
    current = carried
    for start, heading in headings:
        if start > offset:
            break
        current = heading
    return current
