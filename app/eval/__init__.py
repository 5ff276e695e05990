"""Evaluation: ``python -m app.eval QA.jsonl ...`` (see ``app/eval/__main__.py``).

One concern per file: ``qa_file`` (the QA format), ``runner`` (retrieval and answers,
graded), ``report`` (tables, CSV, what went wrong), ``__main__`` (the command).
"""

from app.eval.qa_file import QAItem, load_qa, spread
from app.eval.report import DEFAULT_OUT, answer_table, markdown_table, retrieval_table
from app.eval.runner import (
    evaluate_answers,
    evaluate_retrieval,
    prepare_index,
    summarize_answers,
    summarize_retrieval,
)

__all__ = [
    "DEFAULT_OUT",
    "QAItem",
    "answer_table",
    "evaluate_answers",
    "evaluate_retrieval",
    "load_qa",
    "markdown_table",
    "prepare_index",
    "retrieval_table",
    "spread",
    "summarize_answers",
    "summarize_retrieval",
]
