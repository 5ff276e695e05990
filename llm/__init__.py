"""LLM's front door: ``make_llm(settings)`` returns the configured backend.

A closed set of backends, chosen by ``settings.llm_backend``, each imported only when chosen.
"""

from __future__ import annotations

from app.settings import Settings
from llm.base import LLM
from llm.prompt import build_prompt

__all__ = ["LLM", "build_prompt", "make_llm"]


def make_llm(settings: Settings) -> LLM:
    match settings.llm_backend:
        case "embedded":
            from llm.embedded import EmbeddedLLM

            return EmbeddedLLM(
                settings.models_dir,
                context_tokens=settings.context_tokens,
                max_new_tokens=settings.max_new_tokens,
                temperature=settings.temperature,
                threads=settings.threads,
            )
        case "local":
            from llm.local import LocalLLM

            return LocalLLM.from_settings(settings)
        case "openai":
            from llm.openai_backend import OpenAILLM

            return OpenAILLM.from_settings(settings)
