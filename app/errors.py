"""The few errors a person can act on. Each message says what to do next.

The CLI prints them and exits non-zero; the UI shows them with ``st.error``.
Anything else is a bug and keeps its traceback.
"""


class RagError(Exception):
    """Base for expected failures: the message is for a person."""


class ConfigError(RagError):
    """A setting is missing or invalid."""


class IngestError(RagError):
    """A file could not be loaded; the message names the file and the reason."""


class StoreError(RagError):
    """The stores on disk are missing, locked or damaged."""


class LLMError(RagError):
    """The model could not be loaded or did not answer."""
