"""The QA file: one JSON object per line, each a question with what a right answer says.

Each line of QA.jsonl is ``{"id", "question", "answers": [...], "source": file or null,
"page": int or null}``. ``answers: []`` with ``source: null`` is a question the documents do
not answer: the right reply is "I don't know." Optional keys: ``"tokens": [...]``, words a
right answer must contain (reported as token presence), and ``"match": "reference"`` when
``answers`` holds a long reference answer rather than short accepted ones (then accuracy is
not graded; token F1, token presence and the judge still are). A conflict question names
the document whose rule wins and the one it replaces: ``"newer": file``, ``"older": file``,
``"older_page": int or null``; its answer is right only with the newer rule and the newer
document among the citations, and retrieval is graded on ranking the newer one first.
``"also": [{"source": file, "page": int or null}, ...]`` names other places that state the
same answer (a memo that changes one rule of a handbook page and restates another: "laptops
are still replaced every 3 years"); a hit, or a citation, of any of them counts as right.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app import metrics
from app.errors import RagError

Match = Literal["contains", "reference"]
# "170" is in "The cap was EUR 150, now 170 in Munich"; "EUR 170" is the rule's own words
_BARE_NUMBER = re.compile(r"[\d.,:]+")


# ---- the QA file --------------------------------------------------------------------------
@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answers: tuple[str, ...]
    source: str | None
    page: int | None
    tokens: tuple[str, ...] = ()
    match: Match = "contains"
    newer: str | None = None  # a conflict question: the document whose rule wins...
    older: str | None = None  # ... over this one (at this page)
    older_page: int | None = None
    also: tuple[tuple[str, int | None], ...] = ()  # other (source, page) that state the answer

    @property
    def expected(self) -> tuple[tuple[str, int | None], ...]:
        """Every (source, page) a right hit or citation may name: ``source`` first."""
        return () if self.source is None else ((self.source, self.page), *self.also)

    def rank_in(
        self, found: Sequence[tuple[str, int | None]], *, any_page: bool = False
    ) -> int | None:
        """1-based rank of the first of ``found`` that is expected (on any page of an expected
        file with ``any_page``); None when none is, or the question names no source."""
        ranks = [metrics.first_rank(found, s, None if any_page else p) for s, p in self.expected]
        return min((r for r in ranks if r is not None), default=None)

    def names(self, source: str, page: int | None = None, *, any_page: bool = False) -> bool:
        """Whether a hit or citation of ``source`` at ``page`` is one of the expected places."""
        return self.rank_in([(source, page)], any_page=any_page) == 1

    @property
    def conflict(self) -> bool:
        return self.newer is not None and self.older is not None

    @property
    def answerable(self) -> bool:
        return self.source is not None or bool(self.answers)


def load_qa(path: Path) -> list[QAItem]:
    """Read a QA jsonl file; a malformed line stops with its line number."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RagError(f"{path}: cannot read the QA file ({exc.strerror or exc})") from None
    items: list[QAItem] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            answers = row.get("answers") or []
            if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
                raise ValueError('"answers" must be a list of strings')
            match = row.get("match", "contains")
            if match not in ("contains", "reference"):
                raise ValueError('"match" must be "contains" or "reference"')
            page = row.get("page")
            also = row.get("also") or []
            if not isinstance(also, list) or not all(
                isinstance(a, dict) and isinstance(a.get("source"), str) for a in also
            ):
                raise ValueError('"also" must be a list of {"source": file, "page": int or null}')
            if also and row.get("source") is None:
                raise ValueError('"also" needs a "source"')
            item = QAItem(
                id=str(row["id"]),
                question=str(row["question"]),
                answers=tuple(answers),
                source=row.get("source"),
                page=None if page is None else int(page),
                tokens=tuple(str(t) for t in row.get("tokens") or ()),
                match=match,
                newer=row.get("newer"),
                older=row.get("older"),
                older_page=None if row.get("older_page") is None else int(row["older_page"]),
                also=tuple(
                    (a["source"], None if a.get("page") is None else int(a["page"])) for a in also
                ),
            )
            if (item.newer is None) != (item.older is None):
                raise ValueError('a conflict question needs both "newer" and "older"')
            bare = [a for a in item.answers if _BARE_NUMBER.fullmatch(a.strip())]
            if item.conflict and bare:
                raise ValueError(
                    f"a conflict question's answers must give the newer rule in words, not a "
                    f'bare number ({", ".join(map(repr, bare))}): write "EUR 170" or "3 days"'
                )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise RagError(f"{path}, line {n}: not a QA item ({exc})") from None
        items.append(item)
    if not items:
        raise RagError(f"{path}: no questions in the file")
    return items


def spread(items: Sequence[QAItem], limit: int | None) -> list[QAItem]:
    """``limit`` items spread evenly over the file, so a short run still mixes the kinds of
    question a file groups together (answerable first, unanswerable last in dev.jsonl)."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit <= 0:
        return []
    return [items[math.floor(i * len(items) / limit)] for i in range(limit)]
