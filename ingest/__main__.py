"""python -m ingest PATH... [--data-dir DIR]: add files and folders to the index."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.errors import RagError
from app.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Load PDF, .txt and .md files (or folders of them) into the index.",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="files or folders")
    parser.add_argument("--data-dir", type=Path, help="where the stores live (env RAG_DATA_DIR)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    try:
        missing = [str(p) for p in args.paths if not p.exists()]
        if missing:
            # before loading any model or opening the store: nothing is touched
            print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
            return 2
        settings = load_settings(data_dir=args.data_dir)
        from ingest.pipeline import ingest_paths
        from retrieval import open_index

        index = open_index(settings)
        report = ingest_paths(index, args.paths, progress=not args.quiet)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    for r in report.results:
        if r.status in ("failed", "skipped"):
            print(f"{r.status}: {r.source}: {r.reason}", file=sys.stderr)
    print(f"Ingested into {settings.data_dir}: {report.summary()}")
    print(
        f"Index holds {index.store.count()} chunks from {len(index.store.documents())} documents."
    )
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
