"""What the answer check (app.attribution) costs per answer, on the sample documents.

    python -m bench.attribution_bench [--answers 50] [--no-write]

The sample documents are ingested into a temporary store; each answerable question of
data/eval/dev.jsonl is searched (hybrid, top 5, no relevance floor) as the app does, and a
realistic three-sentence answer is built from its hits: the resource sentence holding the
expected answer, reworded a little and cited with a wrong ``[n]``; a sentence from another
hit, uncited; and a claim with an invented number. ``check_answer`` (one embedding call for
the answer's and all resources' sentences, then the rules) is timed per answer, after one
warm-up call. The table also says how often the copied sentence was supported and how
often the invented number was flagged, a sanity check of the thresholds on real text.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

from app.attribution import Attribution, check_answer, split_sentences
from app.eval import load_qa, markdown_table
from app.metrics import percentile
from app.settings import REPO_ROOT, SAMPLE_DOCS_DIR, load_settings
from bench.common import machine, write_section

DEV = REPO_ROOT / "data" / "eval" / "dev.jsonl"


def _sentences(text: str) -> list[str]:
    return [" ".join(text[s.start : s.end].split()) for s in split_sentences(text)]


def build_answer(hits, answers: tuple[str, ...]) -> str | None:
    """Three sentences: the supported one (cited wrongly), one more (uncited), one invented."""
    for n, hit in enumerate(hits, start=1):
        for sentence in _sentences(hit.text):
            if any(a.lower() in sentence.lower() for a in answers):
                wrong = n % len(hits) + 1
                first = re.sub(r"^(?:The|Every|All)\s", "According to the handbook, the ", sentence)
                first = first.rstrip(".") + f" [{wrong}]."
                other = next((s for h in hits if h is not hit for s in _sentences(h.text)[1:2]), "")
                invented = "The allowance for this is 137 euros per month [1]."
                return " ".join(x for x in (first, other, invented) if x)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=50)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)

    from app.wiring import ingest_config, open_index
    from ingest import ingest_paths

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp) / "store")
        index = open_index(settings)  # the configured embedder, as the app
        embedder = index.embedder
        ingest_paths(index, [SAMPLE_DOCS_DIR], config=ingest_config(settings))
        retriever = index.retriever(mode="hybrid", floor=-1)
        cases = []
        for item in load_qa(DEV):
            if not item.answerable:
                continue
            hits = retriever.search(item.question, 5)
            answer = build_answer(hits, item.answers)
            if answer:
                cases.append((item.question, hits, answer))
            if len(cases) >= args.answers:
                break

    embedded: list[int] = []

    def embed(texts: list[str]) -> list[list[float]]:
        embedded.append(len(texts))
        return embedder.embed(texts)

    check_answer(cases[0][2], cases[0][0], cases[0][1], embed, min_similarity=0.5)  # warm-up
    embedded.clear()
    times, cpu, sentences, copied_ok, invented_flagged = [], [], [], 0, 0
    for question, hits, answer in cases:
        started = time.perf_counter()
        result = check_answer(answer, question, hits, embed, min_similarity=0.5)
        times.append((time.perf_counter() - started) * 1000)
        sentences.append(sum(len(split_sentences(h.text)) for h in hits))
        if isinstance(result, Attribution):
            copied_ok += result.sentences[0].supported
            invented_flagged += not result.sentences[-1].supported
    # the same answers by process CPU time on one torch thread: what other work on shared
    # cores does not inflate (two threads that wait for a core burn CPU time spinning)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    for question, hits, answer in cases:
        started_cpu = time.process_time()
        check_answer(answer, question, hits, embed, min_similarity=0.5)
        cpu.append((time.process_time() - started_cpu) * 1000)
    torch.set_num_threads(threads)
    rows = [
        ["answers", "resource sentences", "texts embedded", "", "p50 ms", "p95 ms", "max ms"],
        [
            len(cases),
            f"{sum(sentences) / len(sentences):.0f}",
            f"{sum(embedded) / len(embedded):.0f}",
            "wall clock",
            f"{percentile(times, 50):.0f}",
            f"{percentile(times, 95):.0f}",
            f"{max(times):.0f}",
        ],
        [
            "",
            "",
            "",
            "CPU, 1 thread",
            *(f"{v:.0f}" for v in (percentile(cpu, 50), percentile(cpu, 95), max(cpu))),
        ],
    ]
    checks = [
        ["copied sentence supported", "invented number flagged"],
        [f"{copied_ok}/{len(cases)}", f"{invented_flagged}/{len(cases)}"],
    ]
    body = (
        "## Answer check (bench/attribution_bench.py)\n\n"
        f"{machine()}\n\n"
        "`check_answer` per answer (3 sentences, 5 resources of about 800 characters; one\n"
        "MiniLM call for the answer's sentences, the question and the resource sentences that\n"
        "share a word or number with them, then the number and subject rules; means per answer).\n"
        "Wall clock with torch's default threads; then process CPU time on one torch thread,\n"
        "which other work on the shared cores does not inflate.\n\n"
        f"{markdown_table(rows)}\n\n{markdown_table(checks)}\n"
    )
    print(body)
    if not args.no_write:
        write_section("attribution_bench", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
