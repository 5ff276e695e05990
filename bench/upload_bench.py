"""An admin's upload of many small files on the documents page: one upload of N files against
N uploads of one file.

    python -m bench.upload_bench [--files 30] [--base FOLDER ...] [--rounds 2] [--no-write]

The files are one-page PDFs of ``bench.ingest_bench``'s generator (about three chunks each,
the size of a memo). Each measurement uploads them into a fresh store (empty, or holding
each ``--base`` folder, ingested first and not timed) through ``app.uploads.ingest_uploads``,
the documents page's own call: once with all files in one call (one ingest run: one lock,
the files embedded and written together, one BM25 update), once with one call a file (what
the page did before stop 32: a run, a write and a BM25 update each). The two alternate,
ABBA, in one process, and the embedder is the app's default (loaded once, warmed). Writes
its section of BENCHMARKS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from app import uploads
from app.settings import load_settings
from app.wiring import open_index
from bench.common import machine, write_section
from bench.ingest_bench import make_corpus
from ingest import ingest_paths

SHAPES = ("one upload of all files", "one upload a file")


def measure(files: list[uploads.Upload], base: Path | None, together: bool, tmp: Path, embedder):
    """Seconds to upload ``files`` into a fresh store holding ``base``, and the chunks the
    store holds after."""
    settings = load_settings(data_dir=Path(tempfile.mkdtemp(dir=tmp)))
    index = open_index(settings, embedder=embedder)
    if base is not None:
        ingest_paths(index, [base])
    start = time.perf_counter()
    calls = [files] if together else [[f] for f in files]
    for part in calls:
        report = uploads.ingest_uploads(index, settings, part)
        assert report.ok, report.summary()
    return time.perf_counter() - start, index.store.count()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upload_bench", description=__doc__)
    parser.add_argument("--files", type=int, default=30, help="one-page PDFs in the upload")
    parser.add_argument(
        "--base", type=Path, nargs="*", default=[], help="folders the store holds first"
    )
    parser.add_argument("--rounds", type=int, default=2, help="ABBA pairs per store")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        embedder = open_index(load_settings(data_dir=tmp / "warm")).embedder  # the app's own
        embedder.embed(["the question engine, loaded before the clock starts"])
        corpus = tmp / "corpus"
        corpus.mkdir()
        make_corpus(corpus, args.files, 1, 1500, seed=7)
        files = [uploads.Upload(p.name, p.read_bytes()) for p in sorted(corpus.glob("*.pdf"))]
        for base in [None, *args.base]:
            times: dict[str, list[float]] = {s: [] for s in SHAPES}
            chunks = 0
            for r in range(args.rounds):
                order = (True, False) if r % 2 == 0 else (False, True)
                for together in order + order[::-1]:
                    took, chunks = measure(files, base, together, tmp, embedder)
                    times[SHAPES[0 if together else 1]].append(took)
                    print(f"{base or 'empty'}, together={together}: {took:.2f} s", flush=True)
            one, each = (statistics.median(times[s]) for s in SHAPES)
            rows.append(
                f"| {base.name if base else 'empty'} ({chunks:,} chunks after) | "
                + " | ".join(", ".join(f"{t:.1f}" for t in times[s]) for s in SHAPES)
                + f" | {one:.1f} / {each:.1f} | {each / one:.1f}x |"
            )
    body = (
        "## Admin uploads (`python -m bench.upload_bench`)\n\n"
        f"Machine: {machine()}. {args.files} one-page PDFs uploaded on the documents page "
        f"(`app.uploads.ingest_uploads`), {args.rounds * 2} times each way, alternated.\n\n"
        "| store before the upload | one upload of all files (s) | one upload a file (s) "
        "| median, together / one a file (s) | speed-up |\n"
        "|---|---|---|---|---:|\n" + "\n".join(rows) + "\n"
    )
    print(body)
    if not args.no_write:
        write_section("upload_bench", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
