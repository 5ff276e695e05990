"""The seam every answering backend implements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class LLM(Protocol):
    """A chat model. ``stream`` sends one user message and yields text as it is generated."""

    name: str  # shown in the UI, e.g. "embedded: Qwen2.5-Coder-1.5B-Instruct Q4_K_M"

    def stream(self, prompt: str, *, max_tokens: int | None = None) -> Iterator[str]: ...
