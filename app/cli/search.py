"""python -m retrieval.search "QUESTION" [--k 5] [--mode hybrid|dense|bm25] [--json] [--batch FILE]"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.errors import USER_ERRORS, RagError
from app.settings import load_settings
from app.wiring import open_index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retrieval.search", description=__doc__)
    parser.add_argument("question", nargs="?", help="the question (or use --batch)")
    parser.add_argument("--k", type=int, default=5, help="number of hits (default 5)")
    parser.add_argument("--mode", choices=["hybrid", "dense", "bm25"], help="default: settings")
    parser.add_argument("--json", action="store_true", help="print hits as JSON")
    parser.add_argument(
        "--batch", type=Path, help="file with one question per line; one JSON line each"
    )
    parser.add_argument(
        "--floor",
        type=float,
        help="relevance floor (cosine); -1 shows every hit. Default: settings",
    )
    parser.add_argument("--data-dir", type=Path, help="where the stores live (env RAG_DATA_DIR)")
    args = parser.parse_args(argv)
    if not args.question and not args.batch:
        parser.error("give a QUESTION or --batch FILE")

    try:
        if args.batch and not args.batch.is_file():
            raise RagError(f"{args.batch}: no such file")
        settings = load_settings(data_dir=args.data_dir)
        retriever = open_index(settings).retriever(mode=args.mode, floor=args.floor)
        if args.batch:
            for line in args.batch.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    hits = retriever.search(line.strip(), args.k)
                    print(json.dumps([h.to_json() for h in hits], ensure_ascii=False), flush=True)
            return 0
        hits = retriever.search(args.question, args.k)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    if args.json:
        print(json.dumps([h.to_json() for h in hits], ensure_ascii=False, indent=2))
    elif not hits:
        print("No hits above the relevance floor.")
    else:
        for n, h in enumerate(hits, 1):
            where = h.source + (f", page {h.page}" if h.page else "")
            print(f"[{n}] {where}  score={h.score:.4f} cos={h.similarity:.3f}\n    {h.text[:200]}")
    return 0
