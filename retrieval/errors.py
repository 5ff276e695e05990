"""The errors retrieval raises. Each message says what to do next."""


class RetrievalError(Exception):
    """Base for expected retrieval failures: the message is for a person."""


class StoreError(RetrievalError):
    """The stores on disk are missing, locked or damaged."""


class EmbedderError(RetrievalError):
    """The embedding model is missing, cannot be loaded, or does not match the store."""
