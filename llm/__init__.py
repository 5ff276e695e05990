"""LLM's front door: the ``LLM`` protocol, the prompt and the errors.

The backends are a closed set, each in its own module and imported only when chosen:
``llm.embedded.EmbeddedLLM`` (llama.cpp, the default), ``llm.local.LocalLLM``
(transformers + Accelerate) and ``llm.openai_backend.OpenAILLM`` (any OpenAI-compatible
server). Each takes plain keyword arguments; ``app`` picks one from its settings.
"""

from __future__ import annotations

from llm.base import LLM
from llm.errors import LLMConfigError, LLMError

__all__ = ["LLM", "LLMConfigError", "LLMError"]
