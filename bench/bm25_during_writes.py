"""A search process while another process ingests file after file: how often does either
rebuild the BM25 index from every chunk instead of loading or extending it?

    python -m bench.bm25_during_writes [--size 10000] [--writes 20] [--no-write]

A writer extends the BM25 version the last writer left in line with Chroma by one segment
(``BM25Index.extend``), which needs that version to be still the saved one. A search process
loads each new version it sees and checks that it holds Chroma's chunks; with back-to-back
writers the next writer may already have written Chroma by then. Before stop 39 the search
process took that for a damaged index, rebuilt it from every chunk and saved its own
version, which in turn made the writer rebuild too; since, it serves the saved version while
a writer holds the lock (``LiveBM25.sync``). Here a copy of ``bench.ingest_into``'s store of
``--size`` synthetic chunks takes ``--writes`` ingests of one small new file each in a
second process, while this process searches it with BM25 in a loop; both count the
index's builds (a rebuild from every chunk) and the writer its extensions. Writes its
section of BENCHMARKS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from app.settings import load_settings
from app.wiring import open_index
from bench.common import machine, write_section
from bench.ingest_into import base_store
from retrieval.bm25_index import BM25Index

QUESTION = "parking permit front desk"


def counting(counts: Counter[str]) -> None:
    """Count this process's BM25 builds and extensions (``BM25Index`` methods wrapped)."""
    build, extend = BM25Index.build, BM25Index.extend

    def counted_build(self, *args, **kwargs):
        counts["built"] += 1
        return build(self, *args, **kwargs)

    def counted_extend(self, *args, **kwargs):
        name = extend(self, *args, **kwargs)
        counts["extended" if name else "extension refused"] += 1
        return name

    BM25Index.build, BM25Index.extend = counted_build, counted_extend


def write(data_dir: Path, times: int) -> None:
    """The other process: ``times`` ingests of one new file each, one after the other."""
    from ingest import ingest_paths

    counts: Counter[str] = Counter()
    counting(counts)
    index = open_index(load_settings(data_dir=data_dir))
    folder = data_dir.parent / "files"
    folder.mkdir()
    for n in range(times):
        path = folder / f"notice-{n:03d}.txt"
        path.write_text(
            "\n".join(f"Notice {n}, line {i}: parking permit {n * 100 + i}." for i in range(40))
        )
        assert ingest_paths(index, [path]).ok
    print(json.dumps(counts))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bm25_during_writes", description=__doc__)
    parser.add_argument("--size", type=int, default=10_000, help="chunks in the store")
    parser.add_argument("--writes", type=int, default=20, help="ingests in the other process")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # the writing process
    args = parser.parse_args(argv)
    if args.child:
        write(args.child, args.writes)
        return 0

    base = base_store(args.size)
    with tempfile.TemporaryDirectory(prefix="bm25-during-writes-") as name:
        data_dir = Path(name) / "store"
        shutil.copytree(base, data_dir)
        reader: Counter[str] = Counter()
        counting(reader)
        index = open_index(load_settings(data_dir=data_dir))
        live = index.live_bm25
        live.ensure(index.store)  # loaded before the writes start
        reader.clear()
        other = ["--child", str(data_dir), "--writes", str(args.writes)]
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.bm25_during_writes", *other], stdout=subprocess.PIPE
        )
        seen = None
        while child.poll() is None:
            bm25 = live.ensure(index.store)
            if bm25 is not seen:
                reader["versions served"] += 1
                seen = bm25
            bm25.search(QUESTION, 5)
            reader["searches"] += 1
        out, _ = child.communicate()
        if child.returncode != 0:
            print(f"the writing process failed (exit {child.returncode})", file=sys.stderr)
            return 1
        writer: Counter[str] = Counter(json.loads(out.decode().strip().splitlines()[-1]))

    table = (
        f"Machine: {machine()}. {args.size:,} synthetic chunks; {args.writes} ingests of one "
        "new 40-line file each in a second process, one after the other; this process "
        "searching with BM25 meanwhile.\n\n"
        "| writer: extended | writer: rebuilt | search process: rebuilt | search process: "
        "versions served | searches |\n"
        "|---:|---:|---:|---:|---:|\n"
        f"| {writer['extended']} | {writer['built']} | {reader['built']} | "
        f"{reader['versions served']} | {reader['searches']} |\n"
    )
    print(table)
    if not args.no_write:
        write_section(
            "bm25_during_writes",
            "## A search process during back-to-back ingests "
            f"(`python -m bench.bm25_during_writes`)\n\n{table}",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
