"""The whole path with real parts: packaged embedder, Chroma on disk, the embedded model.
Each answer costs about 20-40 s on 2 CPU cores, so there are few, and each one matters."""

from __future__ import annotations

import pytest

from app.qa import QAService


@pytest.fixture(scope="module")
def qa(sample_index, embedded_llm):
    return QAService(sample_index.retriever(), embedded_llm, top_k=5)


def test_handbook_fact_with_citation_of_file_and_page(qa):
    answer = qa.ask("How many vacation days do full-time employees get per year?")
    assert not answer.refused
    assert "28" in answer.text
    assert ("employee_handbook.pdf", 3) in {(c.source, c.page) for c in answer.citations}


def test_memo_overrides_the_handbook(qa):
    from app.metrics import answer_correct

    answer = qa.ask("How many days per week may employees work from home?")
    assert not answer.refused
    # the words of the newer rule, not a bare digit (a citation mark "[3]" has one)
    assert answer_correct(answer.text, ["3 days", "three days"]), answer.text
    assert not answer_correct(answer.text, ["2 days", "two days"]) or "instead of" in answer.text
    # the memo is cited, and never behind the handbook page it replaces (the code puts it
    # first: when the model cites nothing, the resources listed as given start with it)
    cited = [(c.source, c.page) for c in answer.citations]
    assert ("memo_2026-09_remote_work.md", None) in cited, answer.citations
    if ("employee_handbook.pdf", 6) in cited:  # never the older page alone, nor first
        assert cited.index(("memo_2026-09_remote_work.md", None)) < cited.index(
            ("employee_handbook.pdf", 6)
        )
    assert any("replaces the Employee Handbook, page 6" in c.message() for c in answer.conflicts)


def test_unanswerable_gets_i_dont_know_without_citations(qa):
    answer = qa.ask("Who won the football World Cup in 1998?")
    assert answer.refused
    assert "I don't know" in answer.text
    assert answer.citations == []


def test_the_model_pressed_after_i_dont_know_answers_without_it(embedded_llm):
    """``llm.press`` on the real model: a prompt that asks for "I don't know" gets it on the
    first try; the second try may not start with "I" (llama.cpp logits processor)."""
    stream = embedded_llm.stream(
        "Reply with exactly these words and nothing else: I don't know.",
        max_tokens=12,
        press=True,
    )
    text = "".join(stream).strip()
    assert stream.pressed
    assert text and not text.startswith("I")


def test_the_model_told_what_the_passage_gives_answers_again_with_it(qa, embedded_llm):
    """``llm.press.Revised`` on the real model: dev q25's first answer gave London the cap
    of Germany (EUR 170); with the check's finding added to the prompt it answers 220."""
    from llm.prompt import build_prompt, build_revision

    question = "What is the hotel limit per night in London?"
    prompt = build_prompt(question, qa.retriever.search(question, 5))
    again = build_revision(
        prompt,
        "The hotel limit per night in London is EUR 170.",
        ["the passage gives 220 for 'london', not 170"],
    )
    text = "".join(embedded_llm.stream(again, max_tokens=60))
    assert "220" in text, text


def test_the_model_asked_without_marks_writes_none(embedded_llm):
    """``ban_markers`` on the real model (a llama.cpp logits processor): no "[" at all."""
    text = "".join(
        embedded_llm.stream(
            "Reply with exactly these words: see [1].", max_tokens=12, ban_markers=True
        )
    )
    assert text.strip() and "[" not in text, text
