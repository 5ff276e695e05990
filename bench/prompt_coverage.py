"""Does the prompt still hold the answer? The resource budget against whole chunks, offline.

    python -m bench.prompt_coverage [--qa data/eval/dev.jsonl] [--data-dir DIR] [--ids q35,q36]
                                    [--budget 400] [--show]

For every answerable question of the QA file, retrieval runs as the app runs it
(``QAService.ask_stream``: search, ``app.conflicts.arrange``, ``app.context.select_excerpts``)
with a model that only records its prompt and is never run. Reported: whether an accepted
answer (``app.metrics.answer_correct``) is in the resources the prompt got (the excerpts) and
in the whole chunks they were cut from, and the prompt's estimated tokens (characters / 4,
``app.context.tokens``: no tokenizer is loaded). A question whose answer is in the chunks
but not in the excerpts lost it to the budget. No model runs: seconds on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from app.context import tokens
from app.errors import USER_ERRORS
from app.eval import load_qa, prepare_index
from app.metrics import answer_correct, percentile
from app.settings import REPO_ROOT, load_settings


class RecordingLLM:
    """Records the prompt; generates nothing (the stream is never iterated)."""

    name = "recording (no model)"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def stream(self, prompt: str, *, max_tokens: int | None = None) -> Iterator[str]:
        self.prompts.append(prompt)
        return iter(())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.prompt_coverage", description=__doc__)
    parser.add_argument("--qa", type=Path, default=REPO_ROOT / "data" / "eval" / "dev.jsonl")
    parser.add_argument("--data-dir", type=Path, help="stores to retrieve from (default: settings)")
    parser.add_argument("--budget", type=int, help="resource tokens (default: settings)")
    parser.add_argument("--ids", help="only these question ids, comma-separated")
    parser.add_argument("--show", action="store_true", help="print the lost questions' excerpts")
    args = parser.parse_args(argv)
    from app.qa import QAService

    try:
        settings = load_settings(data_dir=args.data_dir)
        items = [i for i in load_qa(args.qa) if i.answerable and i.answers]
        if args.ids:
            wanted = set(args.ids.split(","))
            items = [i for i in items if i.id in wanted]
        index = prepare_index(settings)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    budget = settings.context_tokens if args.budget is None else args.budget
    llm = RecordingLLM()
    qa = QAService(
        index.retriever(settings.retrieval_mode),
        llm,
        top_k=settings.top_k,
        context_tokens=budget or None,
    )
    in_chunks = in_excerpts = 0
    prompt_tokens: list[float] = []
    lost: list[str] = []
    for item in items:
        stream = qa.ask_stream(item.question)
        if not stream.generating:  # the relevance floor refused: nothing reaches a prompt
            print(f"{item.id}: refused by the floor", file=sys.stderr)
            continue
        assert stream.excerpts is not None
        chunks = "\n".join(h.text for h in stream.hits)
        excerpts = "\n".join(r.text for r in stream.excerpts.resources)
        whole, cut = answer_correct(chunks, item.answers), answer_correct(excerpts, item.answers)
        in_chunks += whole
        in_excerpts += cut
        prompt_tokens.append(float(tokens(llm.prompts[-1])))
        if whole and not cut:
            lost.append(item.id)
            if args.show:
                print(f"--- {item.id} {item.question} {item.answers}", file=sys.stderr)
                for n, r in enumerate(stream.excerpts.resources, start=1):
                    print(f"[{n}] {r.source} p.{r.page}: {r.text}", file=sys.stderr)
    n = len(prompt_tokens)
    print(
        f"{args.qa.name}: {n} answerable questions given to the model, budget {budget} tokens\n"
        f"accepted answer in the whole chunks:      {in_chunks}/{n}\n"
        f"accepted answer in the prompt's excerpts: {in_excerpts}/{n}\n"
        f"prompt tokens (estimated) p50 / p95:      "
        f"{percentile(prompt_tokens, 50):.0f} / {percentile(prompt_tokens, 95):.0f}\n"
        f"lost to the budget: {', '.join(lost) or 'none'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
