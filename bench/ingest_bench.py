"""Ingest throughput: how much the pipeline costs on top of the embedding model.

    python -m bench.ingest_bench [--pages 1000] [--per-file 50] [--chars 1500]
                                 [--backend torch|onnx-fp32|onnx-bf16|onnx-int8]
                                 [--rounds 1] [--embed-batch 512] [--replay] [--no-write]

Generates a corpus of multi-page PDFs with fpdf2 in a temporary folder (sentences from a
made-up handbook vocabulary, about --chars characters a page), ingests it into a fresh data
dir with ``ingest_paths`` as the CLI does (loader worker process, chunking, embedding,
Chroma, BM25), and embeds the very same chunk texts with the bare embedder, by the same
call (with the chunks' token vectors where the pipeline keeps them for late interaction;
half before the pipeline runs, half after, so that a change in the load of shared cores
weighs on both sides alike). The pipeline embeds and writes files together, about
``--embed-batch`` chunks at a time (``IngestConfig.embed_batch``; 1 = each file alone, as
before stop 31; ``--per-file 1`` makes a folder of one-page files).
The overhead is the pipeline's wall time over the bare embedding's (and, beside it, the
same in CPU seconds, this process's and the loader worker's: how much work the pipeline
adds, where wall time also counts how well it overlaps);
``--rounds N`` measures N times in one process and reports the median round. A
breakdown shows where the time goes (embedding inside the pipeline, Chroma writes, the BM25
rebuild, and everything else: PDF extraction in the worker, chunking, hashing, IPC).

``--replay`` embeds the chunks once, then ingests with a stand-in that gives those outputs
back (``Replay``): each round then times the pipeline's own work alone, seconds that the
host's drift and the embedder's speed do not move, so a change to the pipeline can be read
on any CPU in a few rounds of seconds each.

Peak memory is ``getrusage`` max RSS of this process (model included) and the largest
RSS sampled from the loader worker. Writes its section of BENCHMARKS.md unless --no-write.
"""

from __future__ import annotations

import argparse
import itertools
import random
import resource
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.settings import load_settings
from bench.common import machine, write_section
from bench.embed_bench import load_backend, timed
from ingest.config import IngestConfig

TOPICS = (
    "annual leave", "sick leave", "remote work", "travel expenses", "overtime", "parental leave",
    "security training", "laptop replacement", "expense claims", "office access", "pensions",
    "onboarding", "probation", "notice periods", "bonus payments", "health insurance",
)  # fmt: skip
VERBS = ("must be approved by", "is reported to", "is reviewed each quarter by", "is handled by")
ROLES = ("your manager", "the People team", "the finance desk", "the works council", "IT support")


def sentence(rng: random.Random) -> str:
    topic, verb, role = rng.choice(TOPICS), rng.choice(VERBS), rng.choice(ROLES)
    n = rng.randint(2, 60)
    return (
        f"Any request about {topic} {verb} {role} within {n} working days, "
        f"and section {rng.randint(1, 40)}.{rng.randint(1, 9)} applies."
    )


def make_corpus(folder: Path, pages: int, per_file: int, chars: int, seed: int = 1) -> int:
    from fpdf import FPDF

    rng = random.Random(seed)
    files = 0
    for start in range(0, pages, per_file):
        pdf = FPDF()
        pdf.set_font("Helvetica", size=10)
        for p in range(start, min(pages, start + per_file)):
            pdf.add_page()
            pdf.multi_cell(
                0,
                5,
                f"Employee handbook, part {files + 1}, page {p - start + 1}",
                new_x="LMARGIN",
                new_y="NEXT",
            )
            text = ""
            while len(text) < chars:
                paragraph = " ".join(sentence(rng) for _ in range(rng.randint(2, 4)))
                text += paragraph + "\n\n"
            pdf.multi_cell(0, 5, text.strip(), new_x="LMARGIN", new_y="NEXT")
        pdf.output(str(folder / f"handbook_part_{files + 1:03d}.pdf"))
        files += 1
    return files


def expected_chunks(corpus: Path, settings: Any) -> list[Any]:
    """The chunks ingest will make of the corpus (same loader, same splitter)."""
    from ingest.chunking import chunk_pages
    from ingest.loaders import load

    out = []
    for path in sorted(corpus.iterdir()):
        out += chunk_pages(
            load(path),
            source=path.name,
            doc_id="",
            size=settings.chunk_size,
            overlap=settings.chunk_overlap,
        )
    return out


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (the loader worker is
    counted once ``ingest_paths`` has closed it)."""
    own, ended = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime


class Timed:
    """Wraps a callable and adds up the seconds spent in it."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.seconds, self.calls = fn, 0.0, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


class ChildMemory:
    """The largest RSS any child process (the loader worker) reaches, read every 50 ms.
    (getrusage's figure for children would count the parent's pages shared at fork.)

    Listing the children scans every process on the machine (about 1.2 ms with the GIL
    held; at every reading that was 2 % of a core, charged to the ingest being measured):
    it is done twice a second, and each child found is read every 50 ms (16 us). Where
    Linux keeps a process's own peak (``VmHWM``) that is read, so a peak between two
    readings, or before the child was found, still counts."""

    def __init__(self) -> None:
        import psutil

        self.peak = 0
        self._me = psutil.Process()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        import psutil

        known: dict[int, Any] = {}
        for tick in itertools.count():
            if self._done.wait(0.05):
                return
            if tick % 10 == 0:
                known.update((c.pid, c) for c in self._me.children(recursive=True))
            for pid, child in list(known.items()):
                try:
                    self.peak = max(self.peak, _peak_rss(child))
                except psutil.Error:
                    del known[pid]

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def _peak_rss(process: Any) -> int:
    """A process's peak RSS where /proc tells it (``VmHWM``), else its RSS now."""
    rss = process.memory_info().rss  # raises psutil.Error once the process is gone
    try:
        with open(f"/proc/{process.pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):  # the kernel's max of its peak and RSS now
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return rss


class TimedEmbedder:
    """The embedder with its calls timed: ``embed``, and ``embed_with_tokens`` (the chunks'
    token vectors from the same pass, for late interaction) where it has them."""

    def __init__(self, embedder: Any) -> None:
        from retrieval.late_interaction import gives_tokens

        self.name = embedder.name
        self.signature = getattr(embedder, "signature", embedder.name)
        self.embed = Timed(embedder.embed)
        self.gives_tokens = gives_tokens(embedder)
        if self.gives_tokens:
            self.embed_with_tokens = Timed(embedder.embed_with_tokens)
            self.tokens = embedder.tokens

    @property
    def seconds(self) -> float:
        return self.embed.seconds + (self.embed_with_tokens.seconds if self.gives_tokens else 0.0)

    @property
    def calls(self) -> int:
        return self.embed.calls + (self.embed_with_tokens.calls if self.gives_tokens else 0)


class Replay:
    """A stand-in for ``real`` that gives back what it gave for the same texts, recorded
    once (``bare_s``, ``bare_cpu``: what that one call took), at almost no cost: with it,
    the pipeline's wall time is its own work, whatever the embedder's speed or the host's
    drift does to the embedding (``--replay``)."""

    def __init__(self, real: Any, texts: list[str], depth: int) -> None:
        from retrieval.late_interaction import embed_for_store

        self.name = real.name
        self.signature = getattr(real, "signature", real.name)
        (vectors, tokens), self.bare_s, self.bare_cpu = timed(
            lambda: embed_for_store(real, texts, depth=depth), cpu_seconds
        )
        self.gives_tokens = tokens is not None
        self._out = {
            text: (vector, None if tokens is None else tokens[n])
            for n, (text, vector) in enumerate(zip(texts, vectors, strict=True))
        }

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self._out[t][0] for t in texts]

    def embed_with_tokens(self, texts: list[str]) -> tuple[list[list[float]], list[Any]]:
        return self.embed(texts), [self._out[t][1] for t in texts]

    def tokens(self, texts: list[str]) -> list[Any]:
        return self.embed_with_tokens(texts)[1]


@dataclass
class Round:
    """One measurement: the bare embedder's two halves around one ingest into a fresh store."""

    bare_s: float
    pipeline_s: float
    embed_s: float
    embed_calls: int
    put_s: float
    puts: int
    bm25_s: float
    pages: int
    peak_worker: float
    bare_cpu: float = 0.0
    pipeline_cpu: float = 0.0

    @property
    def ratio(self) -> float:
        return self.pipeline_s / self.bare_s

    @property
    def cpu_ratio(self) -> float:
        """The same in CPU seconds (this process and the loader worker)."""
        return self.pipeline_cpu / self.bare_cpu

    @property
    def embedding_ratio(self) -> float:
        """The embedding inside the pipeline over the bare embedder, the same texts: above
        1, the embedding itself ran slower (the host, or work beside it)."""
        return self.embed_s / self.bare_s


def one_round(
    real: Any,
    corpus: Path,
    files: int,
    texts: list[str],
    data_dir: Path,
    embed_batch: int,
    replay: Replay | None = None,
) -> Round:
    """Bare embedding of half the chunks, the ingest, then the other half (so a change in the
    load of shared cores weighs on both sides alike). With ``replay``, the ingest embeds
    with it, and the bare embedder's figures are those of its recording."""
    from app.wiring import ingest_config, open_index
    from ingest import ingest_paths, list_documents
    from retrieval.late_interaction import embed_for_store

    settings = load_settings(data_dir=data_dir, ingest_batch_chunks=embed_batch)

    # the call the pipeline makes: with the chunks' token vectors where it keeps them
    def bare(part: list[str]) -> object:
        return embed_for_store(real, part, depth=settings.rerank_depth)

    if replay is None:
        _, raw_s, bare_cpu = timed(lambda: bare(texts[0::2]), cpu_seconds)
    else:
        raw_s, bare_cpu = replay.bare_s, replay.bare_cpu
    embedder = TimedEmbedder(real if replay is None else replay)
    index = open_index(settings, embedder=embedder)
    put = index.store.put_documents = Timed(index.store.put_documents)
    bm25 = index.sync_bm25 = Timed(index.sync_bm25)
    watcher = ChildMemory()
    report, pipeline_s, pipeline_cpu = timed(
        lambda: ingest_paths(index, [corpus], config=ingest_config(settings)), cpu_seconds
    )
    watcher.stop()
    assert report.ok and report.count("added") == files, report.summary()
    assert index.store.count() == len(texts), (index.store.count(), len(texts))
    pages = sum(d.pages for d in list_documents(index))
    if replay is None:
        _, wall, cpu = timed(lambda: bare(texts[1::2]), cpu_seconds)
        raw_s, bare_cpu = raw_s + wall, bare_cpu + cpu
    return Round(
        raw_s,
        pipeline_s,
        embedder.seconds,
        embedder.calls,
        put.seconds,
        put.calls,
        bm25.seconds,
        pages,
        watcher.peak / 2**20,
        bare_cpu,
        pipeline_cpu,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_bench", description=__doc__)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--per-file", type=int, default=50, help="pages per PDF")
    parser.add_argument("--chars", type=int, default=1500, help="characters of text a page")
    parser.add_argument(
        "--backend",
        choices=("torch", "onnx-fp32", "onnx-bf16", "onnx-int8"),
        default="torch",
        help="embedding backend (bench.embed_bench compares them bare)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure this many times in one process, each ingest into a fresh store, and "
        "show the round with the median ratio (the host's drift between runs is larger "
        "than the figure's own spread)",
    )
    parser.add_argument(
        "--embed-batch",
        type=int,
        default=IngestConfig().embed_batch,
        help="files are embedded and written together once they hold this many chunks "
        "(1: each file alone)",
    )
    parser.add_argument(
        "--replay",
        action="store_true",
        help="embed once, then ingest with an embedder that gives those outputs back at no "
        "cost: each round times the pipeline's own work alone, which the host's drift and "
        "the embedder's speed do not move (prints only; BENCHMARKS.md is not touched)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        started = time.perf_counter()
        files = make_corpus(corpus, args.pages, args.per_file, args.chars)
        print(f"corpus: {args.pages} pages in {files} PDFs ({time.perf_counter() - started:.1f} s)")

        real = load_backend(args.backend)
        real.embed(["warm-up: the first call allocates"] * 32)
        settings = load_settings(data_dir=Path(tmp) / "store")
        texts = [c.index_text for c in expected_chunks(corpus, settings)]
        replay = Replay(real, texts, settings.rerank_depth) if args.replay else None
        rounds = []
        for n in range(max(1, args.rounds)):
            store = Path(tmp) / f"store-{n}"
            rounds.append(one_round(real, corpus, files, texts, store, args.embed_batch, replay))
            if args.rounds > 1 and replay is not None:
                own = rounds[-1].pipeline_s - rounds[-1].embed_s
                print(f"round {n + 1}: the pipeline's own work {own:.2f} s")
            elif args.rounds > 1:
                print(f"round {n + 1}: pipeline / bare embedder {rounds[-1].ratio:.3f}")
    if replay is not None:
        return _print_own_work(rounds, replay, len(texts), args.backend)

    r = sorted(rounds, key=lambda x: x.ratio)[(len(rounds) - 1) // 2]  # the median round
    chunks = len(texts)
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    other_s = r.pipeline_s - r.embed_s - r.put_s - r.bm25_s
    added = (r.pipeline_s - r.embed_s) / r.embed_s
    spread = ", ".join(f"{x.ratio:.3f}" for x in rounds)
    cpu_spread = ", ".join(f"{x.cpu_ratio:.3f}" for x in rounds)
    drift = ", ".join(f"{x.embedding_ratio:.3f}" for x in rounds)
    rows = [
        ("embedder", args.backend, getattr(real, "signature", real.name)),
        ("pages", f"{r.pages}", f"{files} PDFs, ~{args.chars} characters a page"),
        ("chunks", f"{chunks}", f"chunk_size {settings.chunk_size}, overlap {settings.chunk_overlap}"),
        ("pipeline wall time", f"{r.pipeline_s:.1f} s", "ingest_paths, fresh store"),
        ("pages/s", f"{r.pages / r.pipeline_s:.1f}", ""),
        ("chunks/s", f"{chunks / r.pipeline_s:.1f}", ""),
        ("bare embedder", f"{r.bare_s:.1f} s", f"{chunks / r.bare_s:.1f} chunks/s, same texts, 2 calls"),
        ("pipeline / bare embedder", f"{r.ratio:.3f}", f"overhead {r.ratio - 1:+.1%} (target < +20%)"),
        ("  every round", spread, f"{len(rounds)} in this process; the median's row is shown"),
        ("  in CPU seconds", f"{r.cpu_ratio:.3f}", f"{r.pipeline_cpu:.1f} s (with the loader's) against {r.bare_cpu:.1f} s; every round: {cpu_spread}"),
        ("  embedding inside / bare", f"{r.embedding_ratio:.3f}", f"the same texts: above 1, the embedding itself ran slower in the pipeline (the host, or work beside it); every round: {drift}"),
        ("non-embedding work / embedding", f"{added:.3f}", "(pipeline wall - embedding) / embedding, within the pipeline run: immune to load drift; work done while a batch embeds is not counted"),
        ("  embedding in the pipeline", f"{r.embed_s:.1f} s", f"{r.embed_calls} calls (files together, --embed-batch {args.embed_batch})"),
        ("  Chroma writes", f"{r.put_s:.1f} s", f"{r.puts} writes of {files} documents, with their token vectors"),
        ("  BM25 rebuild + save", f"{r.bm25_s:.1f} s", ""),
        ("  the rest", f"{other_s:.1f} s", "PDF extraction (worker), chunking, hashing, IPC, less the writes done while a batch embeds (so it can read below 0)"),
        ("peak RSS, this process", f"{peak_self:.0f} MiB", "model, Chroma, BM25"),
        ("peak RSS, loader worker", f"{r.peak_worker:.0f} MiB", "PDF text in the child process"),
    ]  # fmt: skip
    table = "| measure | value | note |\n|---|---:|---|\n" + "\n".join(
        f"| {a} | {b} | {c} |" for a, b, c in rows
    )
    print(table)
    if not args.no_write:
        try:
            load = open("/proc/loadavg").read().split()[:3]
        except OSError:
            load = ["?"]
        body = (
            "## Ingest throughput (`python -m bench.ingest_bench`)\n\n"
            f"Machine: {machine()}; load average at the end {' '.join(load)} "
            "(the cores are shared, so absolute rates vary between runs; the ratio is the "
            "figure to watch).\n\n"
            f"{table}\n"
        )
        write_section("ingest_bench", body)
        print("wrote its section of BENCHMARKS.md")
    return 0


def _print_own_work(rounds: list[Round], replay: Replay, chunks: int, backend: str) -> int:
    """``--replay``'s table: the pipeline's own work in each round (its wall time less the
    replayed embedding's), and what the overhead would read with an embedding inside the
    pipeline as fast as the bare one: 1 + own work / bare embedder."""
    own = [r.pipeline_s - r.embed_s for r in rounds]
    r = sorted(rounds, key=lambda x: x.pipeline_s - x.embed_s)[(len(rounds) - 1) // 2]
    median = r.pipeline_s - r.embed_s
    other = median - r.put_s - r.bm25_s
    rows = [
        ("embedder recorded", backend, f"{chunks} chunks embedded once in {replay.bare_s:.1f} s"),
        ("pipeline's own work", f"{median:.2f} s", f"the median of {len(rounds)} rounds, the embedding replayed"),
        ("  every round, in order", ", ".join(f"{x:.2f}" for x in own), "seconds"),
        ("  Chroma writes", f"{r.put_s:.2f} s", "with their token vectors"),
        ("  BM25 rebuild + save", f"{r.bm25_s:.2f} s", ""),
        ("  the rest", f"{other:.2f} s", "waiting for the loader, chunking, hashing, IPC"),
        ("1 + own work / bare embedder", f"{1 + median / replay.bare_s:.3f}", "pipeline / bare where the embedding inside runs as fast as bare"),
    ]  # fmt: skip
    print("| measure | value | note |\n|---|---:|---|")
    print("\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
