"""Show text from documents and from the model as plain text inside Markdown: nothing in it
becomes a live link, an image fetched from an address, or HTML."""

from __future__ import annotations

import re

# Markdown's special characters; escaping them keeps the text literal
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|<>~])")


def inert_markdown(text: str) -> str:
    """Escape Markdown so ``![x](http://...)``, ``[x](javascript:...)`` and raw HTML render as
    the characters they are. Line breaks are kept."""
    escaped = _MD_SPECIAL.sub(r"\\\1", text)
    # Streamlit autolinks bare URLs; a zero-width joiner after the scheme stops that
    escaped = re.sub(r"(?i)\b(https?|ftp|javascript|data|file)(:)", "\\1\u200d\\2", escaped)
    return escaped.replace("\n", "  \n")


def source_label(citation: dict) -> str:
    page = citation.get("page")
    return citation["source"] + (f", page {page}" if page else "")
