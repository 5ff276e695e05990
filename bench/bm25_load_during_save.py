"""A reader's BM25 loads while a writer in another process saves new versions: how many
loads are refused, each of which would make the reader rebuild the index from Chroma?

    python -m bench.bm25_load_during_save [--chunks 20000] [--seconds 60] [--every 1.0]
                                          [--no-write]

A writer's save swaps the pointer to its new version and removes the older ones; a reader
in another process that is still reading the old one (at 20,000 chunks a load takes about a
tenth of a second, at 100,000 chunks about two seconds) finds its files gone. Before stop 38
the reader took that for damage and rebuilt from Chroma (about 18 s at 100,000 chunks) and
saved a version of its own, which also made the next writer read every chunk back; now it
loads the version the pointer names (``BM25Index.load``). Here the writer alternates two
saved-once indexes of ``--chunks`` synthetic chunks, one save every ``--every`` seconds;
this process loads without pause. Writes its section of BENCHMARKS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

from bench.common import machine, write_section
from retrieval.bm25_index import BM25Index


def _rows(tag: str, n: int) -> list[tuple]:
    return [
        (f"{tag}{i}", f"chunk {i} on leave, travel and parking, rule {i % 97} ({tag})", "f.txt", i)
        for i in range(n)
    ]


def _writer(directory: Path, chunks: int, every: float, started, stop) -> None:
    one, other = BM25Index(directory), BM25Index(directory)
    one.build(_rows("a", chunks))
    other.build(_rows("b", chunks))
    started.set()
    saves = 0
    while not stop.is_set():
        (one if saves % 2 else other).save()
        saves += 1
        time.sleep(every)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bm25_load_during_save", description=__doc__
    )
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--every", type=float, default=1.0, help="seconds between saves")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bm25-load-") as tmp:
        directory = Path(tmp) / "bm25"
        first = BM25Index(directory)
        first.build(_rows("x", args.chunks))
        first.save()
        started, stop = mp.Event(), mp.Event()
        writer = mp.Process(
            target=_writer, args=(directory, args.chunks, args.every, started, stop)
        )
        writer.start()
        started.wait()
        loaded = refused = 0
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            if BM25Index(directory).load():
                loaded += 1
            else:
                refused += 1
        stop.set()
        writer.join()

    table = (
        f"{args.chunks:,} chunks, a save every {args.every:g} s in another process, "
        f"{args.seconds:g} s of loads:\n\n"
        "| loads | loaded | refused (the reader would rebuild from Chroma) |\n"
        "|---:|---:|---:|\n"
        f"| {loaded + refused} | {loaded} | {refused} |\n"
    )
    print(table)
    if not args.no_write:
        body = (
            "## BM25 loads while another process saves (`python -m bench.bm25_load_during_save`)"
            f"\n\nMachine: {machine()}.\n\n{table}"
        )
        write_section("bm25_load_during_save", body)
        print("wrote its section of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
