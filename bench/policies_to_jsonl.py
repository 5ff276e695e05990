"""Turn the h2o-evals policy questions into a QA file for ``python -m app.eval``.

    python -m bench.policies_to_jsonl [--data ../shared/data/policies] [--out data/eval/out/policies.jsonl]
    python -m app.eval data/eval/out/policies.jsonl --docs ../shared/data/policies --retrieval-only

Each policy folder holds one PDF, ``question_type_*.csv`` (question, answer, question_type) and
most a ``token_presence_*.csv`` (question, answer, tokens_present). Questions from both files
are merged (one row per distinct question). The answers are long reference texts written by a
model, so the rows say ``"match": "reference"``: app.eval grades them by token F1, token
presence and the judge, never by "the answer appears verbatim". ``tokens`` are the CSV's
``tokens_present`` where the question has them, else the reference answer's key words (the
words of the answer that are not in the question and not stop words), marked
``"tokens_from": "answer"``. ``source`` is the PDF's file name.

The data set gives no page numbers, so each question gets the page its reference answer was
most likely written from, marked ``"page_from": "answer"``: the PDF's pages (as ``ingest``
reads them) ranked by BM25 over words (no word pairs, so the labels stay those of stops
19-26) with the reference answer as the query, kept only when the best
page scores at least ``PAGE_MARGIN`` times the second (else ``page`` stays null and the
question counts for the right document only). A silver label: the answer, not a person,
points at the page.

The data set has no unanswerable questions, so a few written here are added: off-topic ones
and workplace questions none of the seven documents answers (checked by searching the PDFs'
text for their key words).
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import sys
from pathlib import Path

from bm25s.stopwords import STOPWORDS_EN

from app.metrics import normalize_tokens
from app.settings import REPO_ROOT

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "policies"
DEFAULT_OUT = REPO_ROOT / "data" / "eval" / "out" / "policies.jsonl"
MAX_DERIVED_TOKENS = 8
PAGE_MARGIN = 1.25

UNANSWERABLE = [
    "What is the capital of Australia?",
    "Who won the 2014 FIFA World Cup?",
    "How do I bake sourdough bread?",
    "Can I bring my dog to the office?",
    "Does the company pay for a gym membership?",
    "Do employees receive stock options?",
    "What interest rate do staff pay on a home loan from the company?",
    "How much does lunch cost in the staff cafeteria?",
    "What is the company's stock ticker symbol?",
    "How long is the paid sabbatical after ten years of service?",
    "Does the company reimburse the purchase of a bicycle for commuting?",
    "What is the budget for a standing desk when working from home?",
]


def key_tokens(question: str, answer: str, limit: int = MAX_DERIVED_TOKENS) -> list[str]:
    """The answer's content words that the question does not already contain."""
    asked = set(normalize_tokens(question))
    out: list[str] = []
    for word in normalize_tokens(answer):
        if word in asked or word in STOPWORDS_EN or len(word) < 3 or word in out:
            continue
        out.append(word)
        if len(out) == limit:
            break
    return out


def answer_page(pages: list[str], answer: str) -> int | None:
    """The 1-based page whose text best matches ``answer`` (BM25 over the document's pages),
    or None when no page stands out by ``PAGE_MARGIN``."""
    import tempfile

    from retrieval.bm25_index import BM25Index

    with tempfile.TemporaryDirectory() as tmp:
        # words only, and stop 19's k1 and b: the labels stay those of stops 19-26, whatever
        # the product's BM25 adds or is tuned to later
        index = BM25Index(Path(tmp), k1=1.5, b=0.75, pair_weight=0)
        index.build([(str(n), text, "doc", n) for n, text in enumerate(pages, start=1)])
        hits = index.search(answer, 2, pairs=False)
    if not hits:
        return None
    if len(hits) > 1 and hits[0].score < PAGE_MARGIN * hits[1].score:
        return None
    return hits[0].page


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:  # one file starts with a BOM
        return list(csv.DictReader(f))


def convert_folder(folder: Path) -> list[dict]:
    pdfs = sorted(folder.glob("*.pdf"))
    if len(pdfs) != 1:
        raise ValueError(f"{folder}: expected one PDF, found {len(pdfs)}")
    source = pdfs[0].name
    from ingest.loaders import load_pdf

    page_texts = [p.text for p in load_pdf(pdfs[0])]
    rows: dict[str, dict] = {}
    for path in sorted(folder.glob("question_type_*.csv")):
        for r in _read_csv(path):
            q = r["question"].strip()
            rows.setdefault(q, {"answer": r["answer"].strip(), "type": r["question_type"]})
    for path in sorted(folder.glob("token_presence_*.csv")):
        for r in _read_csv(path):
            q = r["question"].strip()
            row = rows.setdefault(q, {"answer": r["answer"].strip(), "type": None})
            tokens = ast.literal_eval(r["tokens_present"])  # a Python list literal
            row["tokens"] = [str(t) for t in tokens if str(t).strip()]
    items = []
    for n, (question, row) in enumerate(rows.items(), start=1):
        if not question or not row["answer"]:
            continue
        tokens, tokens_from = row.get("tokens"), "csv"
        if not tokens:
            tokens, tokens_from = key_tokens(question, row["answer"]), "answer"
        page = answer_page(page_texts, row["answer"])
        items.append(
            {
                "id": f"{folder.name}-{n:03d}",
                "question": question,
                "answers": [row["answer"]],
                "source": source,
                "page": page,
                "page_from": "answer" if page is not None else None,
                "match": "reference",
                "tokens": tokens,
                "tokens_from": tokens_from,
                "type": row["type"],
            }
        )
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.policies_to_jsonl", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the policies folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the jsonl to write")
    args = parser.parse_args(argv)
    folders = sorted(p for p in args.data.iterdir() if p.is_dir()) if args.data.is_dir() else []
    if not folders:
        print(f"error: no policy folders in {args.data}", file=sys.stderr)
        return 2
    items = [item for folder in folders for item in convert_folder(folder)]
    items += [
        {"id": f"none-{n:02d}", "question": q, "answers": [], "source": None, "page": None}
        for n, q in enumerate(UNANSWERABLE, start=1)
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for item in items:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    by_source: dict[str, int] = {}
    for item in items:
        by_source[item["source"] or "(unanswerable)"] = (
            by_source.get(item["source"] or "(unanswerable)", 0) + 1
        )
    for source, n in by_source.items():
        print(f"{n:5d}  {source}")
    paged = sum(item.get("page") is not None for item in items)
    print(f"{paged} questions have the page of their reference answer (page_from: answer)")
    print(f"Wrote {len(items)} questions to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
