"""The errors a person can act on. Each message says what to do next.

Each lower package owns its errors (``retrieval.errors``, ``ingest.errors``, ``llm.errors``);
``app`` adds its own (settings, sign-in, evaluation files) and knows them all:
``USER_ERRORS`` is what the CLIs print (exiting non-zero) and the UI shows with
``st.error``. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from ingest.errors import IngestError
from llm.errors import LLMConfigError, LLMError
from retrieval.errors import EmbedderError, RetrievalError, StoreError

__all__ = [
    "USER_ERRORS",
    "ConfigError",
    "EmbedderError",
    "IngestError",
    "LLMConfigError",
    "LLMError",
    "RagError",
    "RetrievalError",
    "StoreError",
]


class RagError(Exception):
    """Base for the app's own expected failures: the message is for a person."""


class ConfigError(RagError):
    """A setting is missing or invalid."""


USER_ERRORS: tuple[type[Exception], ...] = (RagError, RetrievalError, IngestError, LLMError)
