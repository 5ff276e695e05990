"""python -m ingest PATH... [--effective DATE] | --remove PATH_OR_SOURCE... | --list | --rebuild
| --set-effective SOURCE DATE  [--data-dir DIR]

The command lives in ``ingest`` (where users look for it); its wiring from settings is
``app``'s, like every other entry point's.

Exit status: 0 when everything went through, 1 when a file failed or the store could not
be written, 2 for a usage error (nothing touched)."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from app.errors import USER_ERRORS
from app.settings import load_settings
from app.wiring import ingest_config, open_index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Add PDF, DOCX, HTML, .txt and .md files (or folders of them) to the "
        "index; unchanged files are skipped, changed ones replaced.",
    )
    parser.add_argument("paths", nargs="*", type=Path, help="files or folders to add")
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--remove", nargs="+", metavar="PATH_OR_SOURCE", help="delete documents from the index"
    )
    action.add_argument("--list", action="store_true", help="list what is indexed")
    action.add_argument(
        "--rebuild",
        action="store_true",
        help="re-create both indexes from the stored documents (re-embeds every chunk)",
    )
    action.add_argument(
        "--set-effective",
        nargs=2,
        metavar=("SOURCE", "DATE"),
        help="correct an indexed document's effective date (nothing is re-embedded)",
    )
    parser.add_argument(
        "--effective",
        metavar="DATE",
        help="the date the files given take effect, e.g. 2026-09-01 (default: the date the "
        'document states in a "Date:" line or front matter, in its file name or its PDF '
        "metadata, else the day it is added)",
    )
    parser.add_argument("--data-dir", type=Path, help="where the stores live (env RAG_DATA_DIR)")
    parser.add_argument("--added-by", help="who added the files (kept with each document)")
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for another writer to finish (default 30)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    acting = args.remove or args.list or args.rebuild or args.set_effective
    if acting and args.paths:
        parser.error(
            "give PATHs to add, or one of --remove/--list/--rebuild/--set-effective, not both"
        )
    if not acting and not args.paths:
        parser.error("give files or folders to add, or --remove/--list/--rebuild/--set-effective")
    if args.effective and not args.paths:
        parser.error(
            "--effective goes with the PATHs it dates; to correct an indexed "
            "document's date use --set-effective SOURCE DATE"
        )
    effective = None
    date_text = args.effective or (args.set_effective[1] if args.set_effective else None)
    if date_text is not None:
        from ingest.dates import parse_date

        try:
            effective = parse_date(date_text)
        except ValueError as exc:
            parser.error(f"the effective date: {exc}")

    try:
        missing = [str(p) for p in args.paths if not p.exists()]
        if missing:
            # before loading any model or opening the store: nothing is touched
            print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
            return 2
        settings = load_settings(data_dir=args.data_dir)
        index = open_index(settings, check_embedder=not args.rebuild)
        if args.list:
            return _list(index)
        if args.remove:
            return _remove(index, args.remove, args.lock_timeout)
        if args.set_effective:
            return _set_effective(index, args.set_effective[0], effective, args.lock_timeout)
        if args.rebuild:
            from ingest.manage import rebuild

            n = rebuild(index, lock_timeout=args.lock_timeout)
            print(f"Rebuilt both indexes in {settings.data_dir}: {n} chunks re-embedded.")
            return 0
        from ingest.pipeline import ingest_paths

        report = ingest_paths(
            index,
            args.paths,
            config=ingest_config(settings),
            progress=not args.quiet,
            lock_timeout=args.lock_timeout,
            added_by=args.added_by or f"command line ({_user()})",
            effective=effective,
            on_result=_print_result,
        )
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    for line in report.repaired:
        print(f"repaired: removed half-written {line}", file=sys.stderr)
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    print(f"Ingested into {settings.data_dir}: {report.summary()}")
    _print_holdings(index)
    return 0 if report.ok else 1


def _print_result(r) -> None:  # noqa: ANN001 - ingest's FileResult
    """A file's line as soon as it is settled, above the progress bar (so a long run, or
    one stopped midway, shows what is done)."""
    from tqdm import tqdm

    if r.status in ("failed", "skipped"):
        tqdm.write(f"{r.status}: {r.source}: {r.reason}", file=sys.stderr)
    elif r.effective and r.status != "unchanged":
        tqdm.write(f"{r.status}: {r.source} ({r.chunks} chunks, {r.dated()})", file=sys.stdout)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return "unknown user"


def _print_holdings(index) -> None:
    print(
        f"Index holds {index.store.count()} chunks from {len(index.store.documents())} documents."
    )


def _list(index) -> int:
    from ingest.manage import list_documents

    docs = list_documents(index)
    if not docs:
        print(f"The index in {index.config.data_dir} is empty.")
        return 0
    width = max(len("FILE"), *(len(d.source) for d in docs))
    print(
        f"{'FILE':<{width}}  {'EFFECTIVE':<10}  {'DATE FROM':<12}  {'PAGES':>5}  {'CHUNKS':>6}  "
        f"{'ADDED (UTC)':<19}  BY"
    )
    for d in docs:
        added = (d.added_at or "-")[:19].replace("T", " ")
        pages = str(d.pages) if d.pages else "-"
        print(
            f"{d.source:<{width}}  {d.effective or '-':<10}  {d.effective_origin or '-':<12}  "
            f"{pages:>5}  {d.chunks:>6}  {added:<19}  {d.added_by or '-'}"
        )
    print(f"{len(docs)} documents, {sum(d.chunks for d in docs)} chunks.")
    return 0


def _set_effective(index, name: str, effective, lock_timeout: float) -> int:
    from ingest.manage import set_effective

    source = set_effective(index, name, effective, lock_timeout=lock_timeout)
    if source is None:
        print(f"error: not in the index: {name}", file=sys.stderr)
        return 1
    print(f"{source}: effective {effective.isoformat()} (given); nothing re-embedded")
    return 0


def _remove(index, names: list[str], lock_timeout: float) -> int:
    from ingest.manage import remove_sources, resolve_sources

    resolved = resolve_sources(index, names)
    unknown = [n for n, s in resolved.items() if s is None]
    removed = remove_sources(index, [s for s in resolved.values() if s], lock_timeout=lock_timeout)
    for source in removed:
        print(f"removed: {source}")
    for name in unknown:
        print(f"error: not in the index: {name}", file=sys.stderr)
    _print_holdings(index)
    return 1 if unknown else 0
