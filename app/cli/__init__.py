"""The bodies of the lower packages' commands (``python -m ingest``, ``python -m
retrieval.search``): they read settings, which only ``app`` may do."""
