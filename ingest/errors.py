"""The errors ingest raises. Each message names the file and the reason."""


class IngestError(Exception):
    """A file could not be loaded; the message names the file and the reason."""
