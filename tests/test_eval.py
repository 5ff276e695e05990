"""The evaluation harness: metrics on hand-checked cases, the pipeline on a tiny QA file with a
scripted model, and the command end to end on the sample documents (retrieval only)."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import pytest

from app import metrics
from app.errors import RagError
from app.eval import (
    QAItem,
    evaluate_answers,
    evaluate_retrieval,
    load_qa,
    spread,
    summarize_answers,
    summarize_retrieval,
)
from app.eval.report import retrieval_table
from app.qa import QAService
from app.settings import REPO_ROOT
from retrieval.types import Hit
from tests.conftest import ScriptedLLM, run_module

TINY = Path(__file__).parent / "fixtures" / "tiny_qa.jsonl"
DEV = REPO_ROOT / "data" / "eval" / "dev.jsonl"


# ---- pure metrics -------------------------------------------------------------------------
def test_normalisation_handles_case_punctuation_numbers_and_citations():
    assert metrics.normalize_tokens("Three Weeks [1].") == ["3", "weeks"]
    assert metrics.normalize_tokens("twenty-eight days") == ["28", "days"]
    assert metrics.normalize_tokens("From the fourth day [1, 2]") == ["from", "4th", "day"]
    assert metrics.normalize_tokens("EUR 0.30 per km") == ["eur", "0", "30", "per", "km"]


def test_accuracy_needs_the_whole_accepted_answer_as_words():
    assert metrics.answer_correct("You may carry over five days [2].", ["5 days"])
    assert metrics.answer_correct("Core hours start at 10:00.", ["10:00"])
    assert not metrics.answer_correct("You get 280 days.", ["28"])  # not a substring match
    assert not metrics.answer_correct("It is EUR 400.", ["EUR 600", "600"])
    assert not metrics.answer_correct("anything", [])


def test_token_f1_is_squad_f1():
    # pred {budget, is, eur, 400} vs {eur, 600}: 1 common -> P 1/4, R 1/2, F1 1/3
    assert metrics.token_f1("The budget is EUR 400.", "EUR 600") == pytest.approx(1 / 3)
    assert metrics.token_f1("28 days", "28 days") == 1.0
    assert metrics.token_f1("no overlap", "28 days") == 0.0
    assert metrics.best_f1("28 days [1]", ["28", "28 days"]) == 1.0


def test_token_presence_and_judgement_parsing():
    assert metrics.token_presence("Records stay under lock and key.", ["lock", "key", "RTI"]) == (
        pytest.approx(2 / 3)
    )
    assert metrics.token_presence("the section in charge", ["In-charge"]) == 1.0
    assert metrics.parse_judgement("YES.") is True
    assert metrics.parse_judgement("No, it says 400.") is False
    assert metrics.parse_judgement("Maybe") is None


def test_rank_metrics():
    found = [("a.pdf", 2), ("docs/b.pdf", 4), ("b.pdf", 5)]
    assert metrics.first_rank(found, "b.pdf") == 2  # below an ingested folder
    assert metrics.first_rank(found, "b.pdf", 5) == 3
    assert metrics.first_rank(found, "c.pdf") is None
    assert (metrics.hit_at(3, 1), metrics.hit_at(3, 3), metrics.hit_at(None, 5)) == (0, 1, 0)
    assert metrics.reciprocal_rank(4) == 0.25 and metrics.reciprocal_rank(None) == 0
    # one relevant doc at rank 2: DCG = 1/log2(3); ideal = 1
    assert metrics.ndcg_at_k(["x", "d"], {"d": 1}) == pytest.approx(1 / 1.5849625007)
    assert metrics.ndcg_at_k(["x"] * 10 + ["d"], {"d": 1}) == 0.0
    assert metrics.recall_at_k(["d", "x"], {"d": 1, "e": 1}, 100) == 0.5
    assert metrics.percentile([1, 2, 3, 4], 50) == 2.5
    assert metrics.percentile([0, 10], 95) == pytest.approx(9.5)


def test_qa_file_loading_and_limit(tmp_path):
    items = load_qa(TINY)
    assert [i.answerable for i in items] == [True] * 4 + [False] * 2
    assert [i.id for i in spread(items, 3)] == ["t1", "t3", "t5"]  # mixes the kinds
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "question": "q", "answers": [], "source": null}\n{"id": 1}\n')
    with pytest.raises(RagError, match="line 2"):
        load_qa(bad)


def test_a_place_that_also_states_the_answer_counts_as_right(tmp_path):
    qa = tmp_path / "qa.jsonl"
    row = {"id": "a", "question": "How often are laptops replaced?", "answers": ["3 years"]}
    also = [{"source": "memo.txt", "page": None}]
    qa.write_text(json.dumps(row | {"source": "hb.pdf", "page": 9, "also": also}) + "\n")
    [item] = load_qa(qa)
    assert item.expected == (("hb.pdf", 9), ("memo.txt", None))
    found = [("hb.pdf", 2), ("docs/memo.txt", None), ("hb.pdf", 9)]
    assert item.rank_in(found) == 2 and item.rank_in(found[::2]) == 2
    assert (
        item.rank_in([("hb.pdf", 2)]) is None and item.rank_in([("hb.pdf", 2)], any_page=True) == 1
    )
    assert item.names("memo.txt", 4) and not item.names("hb.pdf", 2) and not item.names("x.md")
    for bad in ({"source": "hb.pdf", "also": ["memo.txt"]}, {"source": None, "also": also}):
        qa.write_text(json.dumps(row | bad) + "\n")
        with pytest.raises(RagError, match=r"line 1: .*\"also\""):
            load_qa(qa)


def test_every_other_place_the_dev_set_accepts_states_the_answer():
    """``also`` corrects a label, it never widens one: each file named there holds an answer."""
    samples = REPO_ROOT / "data" / "samples"
    also = [(i, source) for i in load_qa(DEV) for source, _ in i.also]
    assert also
    for item, source in also:
        text = (samples / source).read_text(encoding="utf-8")
        assert any(a in text for a in item.answers), (item.id, source)


def test_dev_set_meets_its_brief():
    items = load_qa(DEV)
    assert len(items) >= 40 and sum(not i.answerable for i in items) >= 10
    memo = [i for i in items if i.source and i.source.startswith("memo_")]
    assert len(memo) >= 5
    assert len({i.id for i in items}) == len(items)
    conflicts = [i for i in items if i.conflict]
    assert len(conflicts) >= 10 and all(i.source == i.newer for i in conflicts)
    assert len({i.newer for i in conflicts}) >= 4  # changed amounts, deadlines, a withdrawal


def test_conflict_question_needs_the_newer_answer_and_the_newer_document_cited(tmp_path):
    from app.citations import Citation
    from app.eval.runner import grade_answer, newer_above
    from app.qa import Answer

    item = QAItem(
        "c1",
        "How many days per week can I work from home?",
        ("3 days",),
        "memo.md",
        None,
        newer="memo.md",
        older="handbook.pdf",
        older_page=6,
    )
    memo = Citation(1, "memo.md", None, "3 days", quote="up to 3 days", checked="kept")
    handbook = Citation(2, "handbook.pdf", 6, "2", quote="up to 2 days", checked="kept")

    hits = [
        Hit("m", "up to 3 days", "memo.md", None, 1.0),
        Hit("h", "up to 2 days", "handbook.pdf", 6, 0.9),
    ]

    def grade(text, *citations):
        return grade_answer(item, Answer(text, False, list(citations), hits)).conflict_correct

    assert grade("3 days [1][2].", memo, handbook) is True
    assert grade("3 days [2].", handbook) is False  # right words, only the older document
    assert grade("2 days [1].", memo) is False  # the older rule
    inferred = Citation(1, "memo.md", None, "3 days", inferred=True)
    assert grade("3 days.", inferred) is False  # given to the model is not cited
    # put in front of the older citation by app.conflicts.cite_newer: not a checked citation
    put_in = Citation(1, "memo.md", None, "3 days", quote="up to 3 days", checked="newer")
    assert grade("3 days [2].", put_in, handbook) is False
    bare_item = dataclasses.replace(item, answers=("3",))
    assert grade_answer(bare_item, Answer("3 days [1].", False, [memo], hits)).correct is True
    with pytest.raises(RagError, match="bare number"):
        bad = tmp_path / "bare.jsonl"
        bad.write_text(
            '{"id": "x", "question": "q", "answers": ["EUR 170", "170"], "source": "m", '
            '"newer": "m", "older": "h"}\n'
        )
        load_qa(bad)
    assert newer_above([("memo.md", None), ("handbook.pdf", 6)], item) is True
    assert newer_above([("handbook.pdf", 6), ("memo.md", None)], item) is False
    assert newer_above([("handbook.pdf", 2), ("memo.md", None)], item) is True  # other page
    assert newer_above([("handbook.pdf", 6)], item) is False
    with pytest.raises(RagError, match="both"):
        bad = tmp_path / "bad_conflict.jsonl"
        bad.write_text(
            '{"id": "x", "question": "q", "answers": ["a"], "source": "m", "newer": "m"}\n'
        )
        load_qa(bad)


# ---- the pipeline on the tiny file --------------------------------------------------------
def test_retrieval_metrics_on_the_tiny_file(sample_index):
    items = load_qa(TINY)
    results = evaluate_retrieval(sample_index, items, "hybrid")
    # hand-checked: t2 (memo second, after the handbook's older page 6); t4 (a lost laptop)
    # is found on page 7 under its heading "Reporting incidents and lost devices"
    assert [r.rank for r in results] == [1, 2, 1, 1, None, None]
    summary = summarize_retrieval(items, results)
    assert summary["hit@1"] == 0.75 and summary["hit@3"] == 1.0 and summary["hit@5"] == 1.0
    assert summary["mrr@10"] == pytest.approx(0.875)
    assert summary["doc_hit@1"] == 0.75  # t2: the handbook first
    assert summary["questions_paged"] == 3 and summary["page_hit@1"] == 1.0
    # as the model is given them (floor on, app.conflicts' order), t2's newer memo comes
    # first; t5 and t6 name no source
    assert [r.given_rank for r in results] == [1, 1, 1, 1, None, None]
    assert [r.given_doc_rank for r in results][:4] == [1, 1, 1, 1]
    assert summary["given_hit@1"] == 1.0 and summary["given_doc_hit@1"] == 1.0
    # off-topic t5 is below the floor; on-topic t6 (parental leave) clears it
    assert [r.floor_refused for r in results] == [False] * 4 + [True, False]
    assert summary["floor_refused_answerable"] == 0.0
    assert summary["floor_refused_unanswerable"] == 0.5


def test_report_on_a_file_with_only_answerable_questions(sample_index):
    # a subset such as the 16 conflict questions has no unanswerable question to separate:
    # no best floor is reported, and the table says n/a instead of failing after the answers
    items = [i for i in load_qa(TINY) if i.answerable]
    summary = summarize_retrieval(items, evaluate_retrieval(sample_index, items, "hybrid"))
    assert "best_floor" not in summary
    rows = {r[0]: r[1:] for r in retrieval_table({"hybrid": summary})}
    assert rows["best-separating floor (cosine)"] == ["n/a"]
    assert rows["hit@1"] == ["0.750"]


def test_answer_metrics_on_the_tiny_file(sample_index):
    items = load_qa(TINY)
    llm = ScriptedLLM(
        "Full-time employees get 28 days of leave [1].",  # t1 right, cites handbook p.3
        "The home-office budget is EUR 400 [1].",  # t2 wrong: the memo raised it to 600
        "You must request it two weeks in advance [1].",  # t3 right by number words
        "I don't know.",  # t4 wrongly refused
        # t5 is refused by the relevance floor: the model is never asked
        "You get 12 weeks of parental leave [1].",  # t6: no passage says it: the check refuses
    )
    qa = QAService(sample_index.retriever("hybrid"), llm, top_k=5)
    results = evaluate_answers(qa, items)
    assert len(llm.prompts) == 5 and not llm.replies
    assert [r.correct for r in results] == [True, False, True, False, None, None]
    assert [r.refused for r in results] == [False, False, False, True, True, True]
    # t2 cites [1], the memo (the newer document is put first, app.conflicts); its old
    # amount is in the memo too ("raised from EUR 400"), so the check cannot flag it
    assert [r.citation_hit for r in results] == [True, True, True, None, None, None]
    assert [r.model_citation_hit for r in results] == [True, True, True, None, None, None]
    summary = summarize_answers(items, results)
    assert summary["accuracy"] == 0.5
    assert summary["refused_answerable"] == 0.25
    assert summary["refused_unanswerable"] == 1.0  # t6: no passage says 12 weeks
    assert summary["citation_hit"] == 1.0
    assert summary["cited_by_model"] == 1.0
    # the answer check's figures: every quote is in its chunk, each answer has a citation
    assert summary["quotes_verbatim"] == 1.0 and summary["has_citation"] == 1.0
    assert [r.citation_precision for r in results[:3]] == [1.0, 1.0, 1.0]
    assert results[0].page_hit is True and results[0].all_supported is True
    # F1 by hand: t1 8 tokens, 2 shared with "28 days": P 1/4, R 1 -> 0.4; t2 6 tokens, 1
    # shared with "EUR 600": P 1/6, R 1/2 -> 0.25; t3 8 tokens vs "2 weeks" -> 0.4; t4 refused 0
    assert summary["token_f1"] == pytest.approx((0.4 + 0.25 + 0.4 + 0) / 4)
    assert summary["judge_accuracy"] is None  # not asked
    assert summary["total_p50_s"] >= summary["retrieval_p50_s"] > 0
    assert summary["first_token_p50_s"] > 0


def test_uncited_answer_is_cited_by_the_check_not_by_the_model(sample_index):
    items = load_qa(TINY)[:1]
    qa = QAService(sample_index.retriever("hybrid"), ScriptedLLM("Full-time staff get 28 days."))
    [result] = evaluate_answers(qa, items)
    assert result.correct and not result.cited_by_model
    assert result.citation_hit is True  # the check added the resource that supports it
    assert result.model_citation_hit is False
    assert result.citations == ("[1] employee_handbook.pdf p.3 (added)",)


def test_an_answer_the_check_refuses_keeps_what_the_model_wrote(sample_index):
    """The CSV records the model's withheld sentences, so ``bench.recheck_answers`` can
    replay them through a changed check."""
    item = QAItem("b1", "How big is the referral bonus?", ("EUR 5000",), None, None)
    qa = QAService(sample_index.retriever(), ScriptedLLM("The referral bonus is EUR 5000 [1]."))
    [result] = evaluate_answers(qa, [item])
    assert result.refused and not result.refused_before_check  # the check refused it
    assert "EUR 5000" in " ".join(result.withheld)
    refusing = QAService(sample_index.retriever(), ScriptedLLM("I don't know."))
    [by_model] = evaluate_answers(refusing, [item])
    assert by_model.refused and by_model.withheld == ()  # the model's own refusal


def test_judge_and_prompt_variant(sample_index):
    items = load_qa(TINY)[:2]
    answers = ScriptedLLM("Full-time employees get 28 days [1].", "It is EUR 400 [1].")
    judge = ScriptedLLM("YES", "NO, the memo says 600.")
    qa = QAService(sample_index.retriever("hybrid"), answers, top_k=5, prompt="few_shot")
    results = evaluate_answers(qa, items, judge=judge)
    assert [r.judge for r in results] == [True, False]
    assert "Example 1" in answers.prompts[0]
    assert "Correct answer: 28 days / 28" in judge.prompts[0]
    assert "Answer to grade: Full-time employees get 28 days [1]." in judge.prompts[0]
    assert summarize_answers(items, results)["judge_accuracy"] == 0.5


def test_reference_answers_grade_f1_and_tokens_but_not_accuracy(sample_index):
    item = QAItem(
        "r1",
        "How many days of annual leave does a full-time employee get per year?",
        ("Full-time employees are entitled to 28 days of paid annual leave per year.",),
        "employee_handbook.pdf",
        None,
        tokens=("28", "paid", "annual"),
        match="reference",
    )
    qa = QAService(sample_index.retriever(), ScriptedLLM("They get 28 days of leave [1]."))
    [result] = evaluate_answers(qa, [item])
    assert result.correct is None
    assert result.token_presence == pytest.approx(1 / 3)
    assert 0 < result.f1 < 1
    assert result.citation_hit is True


# ---- the command --------------------------------------------------------------------------
def test_cli_retrieval_only_on_the_sample_documents(tmp_path):
    out = tmp_path / "out"
    proc = run_module(
        *("app.eval", str(DEV), "--retrieval-only", "--compare-modes"),
        *("--data-dir", str(tmp_path / "store"), "--out", str(out), "--quiet"),
        data_dir=tmp_path / "store",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "hit@5" in proc.stdout and "Ingested into" in proc.stderr  # the empty dir was filled
    stem = "dev-compare-retrieval"
    assert (out / f"{stem}.md").read_text().startswith("# Evaluation: dev")
    with open(out / f"{stem}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 97
    summary = json.loads((out / f"{stem}.json").read_text())
    assert summary["answerable"] == 64 and summary["answers"] is None
    hybrid = summary["retrieval"]["hybrid"]
    assert hybrid["conflict_questions"] == 16
    # as the model is given them, the newer document comes first (16 of 16 measured; the
    # issue asks >= 0.95), far more often than as retrieved: app.conflicts.widen fetches the
    # replacing memo's own rule when retrieval found only its closing lines (q48)
    assert hybrid["newer_first_arranged"] >= 0.95
    assert hybrid["newer_first_arranged"] > hybrid["newer_first"]
    for mode in ("bm25", "dense", "hybrid"):
        r = summary["retrieval"][mode]
        assert r["hit@5"] >= 0.8, (mode, r)
        assert r["hit@1"] <= r["hit@3"] <= r["hit@5"] <= 1.0
        assert r["hit@1"] <= r["mrr@10"] <= 1.0
        assert r["floor_refused_answerable"] <= 0.05, (mode, r)
        assert r["floor_refused_unanswerable"] > 0
        assert 0 < r["retrieval_p50_s"] <= r["retrieval_p95_s"]
