"""Copy the latest app.eval summaries into BENCHMARKS.md (section "eval").

    python -m app.eval data/eval/dev.jsonl --retrieval-only --compare-modes
    python -m app.eval data/eval/dev.jsonl   # answers with the embedded model (about 12 min on 2 cores)
    python -m bench.policies_to_jsonl
    python -m app.eval data/eval/out/policies.jsonl --docs ../shared/data/policies --retrieval-only --compare-modes
    python -m bench.eval_report

Reads the ``*.json`` summaries app.eval wrote to data/eval/out/ and renders their tables; a
summary that is missing is left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from app.eval import DEFAULT_OUT, answer_table, markdown_table, retrieval_table
from bench.common import machine, write_section


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _scope(s: dict) -> str:
    return (
        f"{s['questions']} questions ({s['answerable']} answerable, "
        f"{s['questions'] - s['answerable']} unanswerable) from `{s['qa']}`"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.eval_report", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="app.eval's --out")
    parser.add_argument("--model-run", default="dev-hybrid-icl", help="answer run to show")
    args = parser.parse_args(argv)

    parts = [
        "## Evaluation (`python -m app.eval`, copied by `python -m bench.eval_report`)",
        "",
        f"Machine: {machine()}. Updated {datetime.now(UTC):%Y-%m-%d}.",
        "Ranks with the relevance floor off; hit@k/MRR of the expected file and page; "
        '"floor refuses" = the app\'s floor (cosine 0.25) would answer "I don\'t know" '
        "without calling the model. Commands:",
        "",
        "```",
        *(line.strip() for line in __doc__.splitlines() if line.startswith("    python")),
        "```",
    ]
    dev = _load(args.out / "dev-compare-retrieval.json")
    policies = _load(args.out / "policies-compare-retrieval.json") or _load(
        args.out / "policies-hybrid-retrieval.json"
    )
    for s, title in (
        (dev, "Dev set, retrieval only"),
        (policies, "Policies (h2o-evals, 7 real PDFs), retrieval only"),
    ):
        if s is not None:
            parts += ["", f"### {title}", "", _scope(s) + ".", ""]
            parts.append(markdown_table(retrieval_table(s["retrieval"])))
    model = _load(args.out / f"{args.model_run}.json")
    if model is not None and model.get("answers"):
        parts += ["", f"### Answers: {model['mode']} retrieval, prompt `{model['prompt']}`", ""]
        parts += [f"{_scope(model)}; {model['model']}.", ""]
        parts.append(markdown_table(answer_table(model["answers"])))
    if dev is None and policies is None and model is None:
        print(f"error: no app.eval summaries in {args.out}", file=sys.stderr)
        return 1
    body = "\n".join(parts)
    print(body)
    write_section("eval", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
