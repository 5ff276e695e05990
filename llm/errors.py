"""The errors the answering backends raise. Each message says which setting to change."""


class LLMError(Exception):
    """The model could not be loaded or did not answer."""


class LLMConfigError(LLMError):
    """A backend was given a value it cannot use (a malformed URL, say)."""
