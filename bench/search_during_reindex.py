"""Searches in the app's process while ``python -m ingest --rebuild`` (here: its call, in a
second process) re-indexes the same store again and again: does any search come back
without the untouched document, or fail?

    python -m bench.search_during_reindex [--reindexes 40] [--threads 4] [--no-write]

A re-index fills a new collection, switches the pointer to it and drops the old one. A search
that took the old collection just before the switch may still be running on it while the
other process drops it. Chroma 1.x then raises "does not exist" or "Missing metadata
segment", or the query gives the vector index's ids with their records gone; the store runs
such a search again on the new collection (``ChromaStore._read``). This script counts what
the searches saw. The searches call ``ChromaStore.query`` with a query vector embedded once,
so each thread is inside Chroma almost all the time (a search that embeds its question first
rarely overlaps a drop). Writes its section of BENCHMARKS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from app import uploads
from app.settings import load_settings
from app.wiring import open_index
from bench.common import machine, write_section
from ingest import ingest_paths

UNTOUCHED = "canteen.txt"
QUESTION = "which day does the canteen serve vegetarian lunch"


def write_docs(folder: Path) -> None:
    """The untouched memo and six others (about 170 chunks in all)."""
    folder.mkdir(parents=True)
    line = "the canteen serves vegetarian lunch on Thursdays"
    (folder / UNTOUCHED).write_text("\n".join(f"line {i}: {line}." for i in range(24)))
    for j in range(6):
        (folder / f"parking{j}.txt").write_text(
            "\n".join(
                f"line {i}: parking permit {j * 100 + i} at the front desk." for i in range(60)
            )
        )


def reindex(data_dir: Path, times: int) -> None:
    """The other process: re-index the store ``times`` times, as ``--rebuild`` does."""
    index = open_index(load_settings(data_dir=data_dir))
    for _ in range(times):
        uploads.rebuild(index)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.search_during_reindex", description=__doc__
    )
    parser.add_argument("--reindexes", type=int, default=40, help="re-indexes in the other process")
    parser.add_argument("--threads", type=int, default=4, help="searching threads")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # the re-indexing process
    args = parser.parse_args(argv)
    if args.child:
        reindex(args.child, args.reindexes)
        return 0

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        write_docs(tmp / "docs")
        settings = load_settings(data_dir=tmp / "store")
        index = open_index(settings)
        assert ingest_paths(index, [tmp / "docs"]).ok
        vector = index.store.embedder.embed([QUESTION])[0]
        other = ["--child", str(settings.data_dir), "--reindexes", str(args.reindexes)]
        child = subprocess.Popen([sys.executable, "-m", "bench.search_during_reindex", *other])
        seen: Counter[str] = Counter()

        def search() -> None:
            while child.poll() is None:
                try:
                    hits = index.store.query(vector, 8)
                except Exception as exc:
                    seen[f"failed: {type(exc).__name__}: {str(exc)[:60]}"] += 1
                    continue
                if any(h.source == UNTOUCHED for h in hits):
                    seen["found the untouched document"] += 1
                else:
                    seen[f"missed it ({len(hits)} hits)"] += 1

        threads = [threading.Thread(target=search) for _ in range(args.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if child.returncode != 0:
            print(f"the re-indexing process failed (exit {child.returncode})", file=sys.stderr)
            return 1

    lines = [
        f"Machine: {machine()}. {args.reindexes} re-indexes in a second process "
        f"(`uploads.rebuild`, what `--rebuild` calls), {args.threads} threads searching "
        "this process's store meanwhile (`ChromaStore.query`, the vector embedded once). "
        "Every search should find the untouched document.",
        "",
        "| what a search saw | searches |",
        "|---|---:|",
        *(f"| {what} | {n} |" for what, n in seen.most_common()),
    ]
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        write_section(
            "search_during_reindex",
            "## Searches during a re-index in another process "
            "(`python -m bench.search_during_reindex`)\n\n" + table,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
