"""The text a chunk is indexed under: its document's title and section heading, then its text.

Only the embedding and the BM25 index see this; a hit's ``text`` (what is shown, quoted and
given to the model) stays the chunk's own words. See ``ingest.context`` for where the title
and heading come from.
"""

from __future__ import annotations


def context_line(text: str, title: str = "", heading: str = "") -> str:
    """``"title > heading"``, leaving out what is empty, and a heading that is the title or
    that the text already starts with (it would only be counted twice)."""
    title, heading = title.strip(), heading.strip()
    heading = heading.removeprefix(title + " > ") if title else heading  # a Markdown H1
    if heading == title or text.lstrip().lstrip("#* ").startswith(heading):
        heading = ""
    return " > ".join(p for p in (title, heading) if p)


def index_text(text: str, title: str = "", heading: str = "") -> str:
    """``"title > heading\\n\\ntext"``: what is embedded (see ``context_line``).

    Prepending a short context to the chunk before embedding and BM25 indexing is
    "contextual retrieval" (Anthropic, 2024); here the context is the document's own title
    and heading rather than a generated summary.
    """
    context = context_line(text, title, heading)
    return f"{context}\n\n{text}" if context else text


def context_of(text: str, meta: dict | None) -> str:
    """The context line of a stored chunk, from its Chroma metadata."""
    meta = meta or {}
    return context_line(text, str(meta.get("title") or ""), str(meta.get("heading") or ""))


def stored_index_text(text: str, meta: dict | None) -> str:
    """What a stored chunk is embedded as, from its text and Chroma metadata."""
    context = context_of(text, meta)
    return f"{context}\n\n{text}" if context else text
