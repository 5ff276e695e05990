"""``python -m retrieval.search``: the command's body is ``app.cli.search``, where settings
are read and mapped onto retrieval's plain values (the one import of ``app`` below it,
declared in the architecture contract in pyproject.toml)."""

import sys

from app.cli.search import main

if __name__ == "__main__":
    sys.exit(main())
