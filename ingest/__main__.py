"""``python -m ingest``: the command's body is ``app.cli.ingest``, where settings are read and
mapped onto ingest's plain values (the one import of ``app`` below it, declared in the
architecture contract in pyproject.toml)."""

import sys

from app.cli.ingest import main

if __name__ == "__main__":
    sys.exit(main())
