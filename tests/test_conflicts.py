"""Conflicts between documents: found on real embeddings, the newer put first, what a
document replaces set aside and never cited alone, shown under the answer (AppTest)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import conflicts
from app.citations import Citation
from app.qa import Answer, QAService
from app.services import build_services
from app.ui.render import inert_markdown
from llm.prompt import build_prompt
from retrieval.types import Hit
from tests import ui_app
from tests.conftest import ScriptedLLM, make_settings

HANDBOOK_6 = (
    "6 Remote Work Larkspur is an office-first company with flexible remote work. How much "
    "remote work is possible Employees whose role allows it may work from home on up to 2 days "
    "per week. Remote work requires the agreement of your manager."
)
MEMO = (
    "Remote days: From 1 October 2026, employees whose role allows it may work from home on up "
    "to 3 days per week instead of the previous 2 days. Each team agrees on one anchor day."
)
SUPERSEDES = ('employee handbook | section 6 | "Remote Work"',)
OLD_RULE = "may work from home on up to 2 days per week"
MESSAGE = "The memo of 8 September 2026 replaces the Employee Handbook, page 6, on this point."


def _hits(supersedes=SUPERSEDES) -> list[Hit]:
    return [
        Hit("h6", HANDBOOK_6, "employee_handbook.pdf", 6, 0.9, effective="2026-01-01"),
        Hit(
            "m",
            MEMO,
            "memo_2026-09_remote_work.md",
            None,
            0.8,
            effective="2026-09-08",
            supersedes=supersedes,
        ),
    ]


# ---- pure pieces ----------------------------------------------------------------------------
def test_numbers_dates_and_old_values():
    assert conflicts.quantities("up to 2 days, by 31 March, EUR 0.30, section 6") == {
        "2",
        "31",
        "march",
        "0.30",
    }
    assert conflicts.quantities("two weeks; employees may work") == {"2"}  # "may" is no month
    assert conflicts.current_quantities("raised from EUR 400 to EUR 600") == {"600"}
    assert conflicts.current_quantities("up to 3 days instead of the previous 2 days") == {"3"}
    assert conflicts.differs("The cap is EUR 170 per night.", "The cap is EUR 150 per night.")
    assert conflicts.differs("You can no longer buy your laptop.", "You may buy it for EUR 120.")
    # restating a rule with more detail is no conflict
    assert not conflicts.differs("Laptops are still replaced every 3 years.", "Every 3 years.")
    assert not conflicts.differs(
        "Nothing changes: still every 3 years, two months ahead.", "Two months."
    )


def test_names_and_dates_as_people_say_them():
    assert conflicts.document_name("memo_2026-09_remote_work.md") == "memo"
    assert conflicts.document_name("hr/employee_handbook.pdf") == "Employee Handbook"
    assert conflicts.spoken_date("2026-09-08") == "8 September 2026"


# ---- on real embeddings ---------------------------------------------------------------------
def test_conflict_found_newer_first_superseded_sentence_set_aside(embedder):
    hits, found = conflicts.arrange(_hits(), embedder.embed, "How many days can I work from home?")
    assert [c.message() for c in found] == [MESSAGE]
    [c] = found
    assert c.declared and len(c.points) == 1
    assert "3 days" in c.points[0].newer and "2 days per week" in c.points[0].older
    assert [h.id for h in hits] == ["m", "h6"]  # the newer passage first
    assert OLD_RULE not in hits[1].text  # the replaced sentence is not given to the model
    assert "office-first company" in hits[1].text  # the rest of the page is
    json = c.to_json()
    assert json["newer"] == {
        "source": "memo_2026-09_remote_work.md",
        "page": None,
        "effective": "2026-09-08",
    }
    assert json["older"]["page"] == 6 and json["message"] == MESSAGE


def test_undeclared_conflict_reorders_but_keeps_the_text(embedder):
    hits, [c] = conflicts.arrange(_hits(supersedes=()), embedder.embed)
    assert not c.declared and [h.id for h in hits] == ["m", "h6"]
    assert OLD_RULE in hits[1].text


@pytest.mark.parametrize(
    "change",
    [
        {"effective": "2026-01-01"},  # same date: neither is newer
        {"source": "employee_handbook.pdf", "page": 7},  # same document
        {"text": "The canteen opens at 11:30 and closes at 14:00 every working day."},
        {"effective": None},  # undated
    ],
)
def test_no_conflict(embedder, change):
    import dataclasses

    old, memo = _hits(supersedes=())
    hits, found = conflicts.arrange([old, dataclasses.replace(memo, **change)], embedder.embed)
    assert found == []
    assert [h.id for h in hits] == ["h6", "m"]


def test_declared_replacement_without_a_point_still_goes_first(embedder):
    old, memo = _hits()
    unrelated = memo.__class__(**{**memo.__dict__, "text": "Each team agrees on an anchor day."})
    hits, found = conflicts.arrange([old, unrelated], embedder.embed)
    assert found == [] and [h.id for h in hits] == ["m", "h6"]
    assert OLD_RULE in hits[1].text  # nothing set aside without a point in conflict


def test_older_passage_is_never_cited_alone_for_a_replaced_point(embedder):
    hits, found = conflicts.arrange(_hits(), embedder.embed)
    older = Citation(2, "employee_handbook.pdf", 6, "2 days per week")
    cited = conflicts.cite_newer([older], hits, found)
    assert [(c.n, c.source) for c in cited] == [
        (1, "memo_2026-09_remote_work.md"),
        (2, "employee_handbook.pdf"),
    ]
    assert "3 days per week" in cited[0].snippet
    checked = Citation(2, "employee_handbook.pdf", 6, "2 days", quote="2 days", checked="kept")
    [put_in, _] = conflicts.cite_newer([checked], hits, found)
    assert put_in.checked == conflicts.NEWER and "3 days" in (put_in.quote or "")
    # already cited together, or only the newer: nothing changes
    both = [Citation(1, "memo_2026-09_remote_work.md", None, "x"), older]
    assert conflicts.cite_newer(both, hits, found) == both


def test_older_passage_cited_for_a_rule_the_memo_leaves_alone_is_cited_alone(embedder):
    hits, found = conflicts.arrange(_hits(), embedder.embed)
    assert found and found[0].declared
    kept_rule = "Remote work requires the agreement of your manager."
    older = Citation(
        2, "employee_handbook.pdf", 6, "x", quote=kept_rule, quotes=(kept_rule,), checked="added"
    )
    assert conflicts.cite_newer([older], hits, found) == [older]
    # the same page cited for the replaced rule (its old number) does get the memo in front
    old_rule = "Employees whose role allows it may work from home on up to 2 days per week."
    replaced = Citation(2, "employee_handbook.pdf", 6, "x", quote=old_rule, quotes=(old_rule,))
    cited = conflicts.cite_newer([replaced], hits, found)
    assert [c.source for c in cited] == ["memo_2026-09_remote_work.md", "employee_handbook.pdf"]


# ---- through the answer pipeline and the chat -------------------------------------------------
def test_answer_puts_the_memo_first_and_never_cites_the_handbook_alone(sample_index):
    llm = ScriptedLLM("Employees may work from home 2 days per week [2].")
    qa = QAService(sample_index.retriever(), llm, top_k=5)
    answer = qa.ask("How many days per week can I work from home?")
    prompt = llm.prompts[0]
    assert "[1] (memo_2026-09_remote_work.md, dated 2026-09-08)" in prompt
    assert "(employee_handbook.pdf, page 6, dated 2026-01-01)" in prompt
    assert OLD_RULE not in prompt  # the replaced sentence was set aside
    assert answer.hits[0].source == "memo_2026-09_remote_work.md"
    assert MESSAGE in [c["message"] for c in answer.to_json()["conflicts"]]
    # whatever the model cited, the memo is cited before any handbook page 6
    places = [(c.source, c.page) for c in answer.citations]
    assert places and places[0] == ("memo_2026-09_remote_work.md", None)


def test_chat_shows_the_conflict_under_the_answer(sample_index, embedder):
    settings = make_settings(sample_index.config.data_dir)
    services = build_services(
        settings, llm=ScriptedLLM("You may work from home 3 days per week [1]."), index=sample_index
    )
    ui_app.SERVICES.update(services=services, documents_page_alone=False)
    at = AppTest.from_file(str(Path(ui_app.__file__)), default_timeout=60).run()
    at.chat_input[0].set_value("How many days per week can I work from home?").run()
    assert not at.exception
    texts = [m.value for m in at.markdown]
    assert any(inert_markdown(MESSAGE) in t for t in texts), texts
    captions = [c.value for c in at.caption]
    now = f"Now: **{inert_markdown('memo_2026-09_remote_work.md')}** (dated "
    before = f"Before: **{inert_markdown('employee_handbook.pdf, page 6')}** (dated "
    assert any(c.startswith(now) and "up to 3 days per week" in c for c in captions), captions
    assert any(c.startswith(before) and "up to 2 days per week" in c for c in captions)
    # both sides open at their page, the older one too although the answer does not cite it
    labels = [e.label for e in at.expander]
    assert "Open employee_handbook.pdf, page 6" in labels, labels
    opened = next(e for e in at.expander if e.label == "Open employee_handbook.pdf, page 6")
    assert any("2 days per week" in m.value for m in opened.markdown)


# ---- a question in other words, what a document replaces, the prompt ------------------------
HANDBOOK_5 = (
    "Expenses are reimbursed only if they were necessary and, where required, approved in "
    "advance. Submitting a claim Expense claims are submitted in the expenses module of "
    "PeopleDesk within 30 days of the date on which the expense occurred. Late claims are only "
    "accepted with the approval of the department head, and claims older than 90 days are "
    "rejected."
)
EXPENSE_MEMO = (
    "We have therefore extended the deadline. From 1 December 2026, expense claims are "
    "submitted in the expenses module of PeopleDesk within 60 days of the date on which the "
    "expense occurred. Claims older than 120 days are rejected."
)
IN_OTHER_WORDS = (
    "I bought something for work with my own money. How long do I have to get reimbursed?"
)


def _expense_hits() -> list[Hit]:
    return [
        Hit("h5", HANDBOOK_5, "employee_handbook.pdf", 5, 0.9, 0.405, effective="2026-01-01"),
        Hit("h9", "Laptops are replaced every 3 years.", "employee_handbook.pdf", 9, 0.8, 0.3,
            effective="2026-01-01"),
        Hit("m", EXPENSE_MEMO, "memo_2026-11_expense_deadline.txt", None, 0.7, 0.323,
            effective="2026-11-03"),
    ]  # fmt: skip


def test_a_question_in_other_words_still_brings_the_newer_passage_in(embedder, monkeypatch):
    # every sentence is below ABOUT_QUESTION from the question (0.43), but the deadline is
    # what both passages say best on it: the memo, third, is brought in ahead of page 5
    hits, [c] = conflicts.arrange(_expense_hits(), embedder.embed, IN_OTHER_WORDS, k=2)
    assert [h.id for h in hits] == ["m", "h5"]
    assert "60 days" in c.points[0].newer and "30 days" in c.points[0].older
    monkeypatch.setattr(conflicts, "ABOUT_ANSWER", conflicts.ABOUT_QUESTION)  # the old gate
    hits, found = conflicts.arrange(_expense_hits(), embedder.embed, IN_OTHER_WORDS, k=2)
    assert found == [] and [h.id for h in hits] == ["h5", "h9"]


def test_what_a_document_replaces_is_set_aside_whatever_the_question(embedder):
    # the anchor day is no point in conflict, the remote days are: still not given
    hits, _ = conflicts.arrange(_hits(), embedder.embed, "Which day is the anchor day?")
    older = next(h for h in hits if h.id == "h6")
    assert OLD_RULE not in older.text and "office-first company" in older.text


def test_an_older_sentence_changed_without_saying_so_is_marked_in_the_prompt(embedder):
    hits, found = conflicts.arrange(_hits(supersedes=()), embedder.embed)
    shown = conflicts.mark_replaced(hits, hits, found)
    assert [h.id for h in shown] == ["m", "h6"] and shown[0] is hits[0]
    marked = OLD_RULE + ". (replaced by [1], dated 2026-09-08)"
    assert marked in shown[1].text and hits[1].text == HANDBOOK_6  # the hit is unchanged
    prompt = build_prompt("How many days can I work from home?", shown)
    assert "[2] (employee_handbook.pdf, page 6, dated 2026-01-01)" in prompt and marked in prompt


def test_a_conflict_the_answer_does_not_draw_on_is_not_shown(embedder):
    hits, found = conflicts.arrange(_hits(), embedder.embed)
    other = Citation(3, "employee_handbook.pdf", 2, "core hours", quote="core hours")
    answer = Answer("Core hours are 10 to 15 [3].", False, [other], hits)
    assert conflicts.with_conflicts(answer, hits, found).conflicts == []
    cited = dataclasses.replace(answer, citations=[Citation(2, "employee_handbook.pdf", 6, "x")])
    assert [c.message() for c in conflicts.with_conflicts(cited, hits, found).conflicts] == [
        MESSAGE
    ]


DEV = Path(__file__).resolve().parents[1] / "data" / "eval" / "dev.jsonl"


def test_widen_fetches_the_replacing_documents_own_rule(embedder):
    """Retrieval found the memo's closing lines, not its new rule: ``widen`` asks for the
    memo's passages closest to the question, and ``arrange`` then puts the new rule first."""
    [h6, memo] = _hits()
    closing = dataclasses.replace(memo, id="m-end", text="Questions go to People & Culture.")
    asked: list[list[str]] = []

    def search_in(sources: list[str], n: int) -> list[Hit]:
        asked.append(sources)
        assert n == conflicts.WIDEN_PER_DOCUMENT * len(sources)
        return [memo, closing]

    other = Hit("x", "The canteen opens at noon.", "canteen.md", None, 0.3, effective="2026-01-01")
    pool = conflicts.widen([h6, closing, other], 3, search_in)
    assert asked == [["memo_2026-09_remote_work.md"]]
    assert [h.id for h in pool] == ["h6", "m-end", "x", "m"]
    given, _ = conflicts.arrange(pool, embedder.embed, "How many days can I work from home?", 3)
    # the new rule comes in for the passage ranked last, and goes before the page it replaces
    ids = [h.id for h in given]
    assert "x" not in ids and ids.index("m") < ids.index("h6")
    # nothing declares a replacement of the first k: nothing is fetched
    assert conflicts.widen([h6], 1, search_in) == [h6] and len(asked) == 1


def test_every_dev_conflict_question_gives_the_newer_document_first(sample_index):
    """What the model reads for each conflict question of the dev set: the newer document
    before the older page, with its date, and no sentence of the older page that the newer
    one changes left as it was (set aside, or marked replaced)."""
    from app.eval.qa_file import load_qa

    items = [i for i in load_qa(DEV) if i.conflict]
    llm = ScriptedLLM()
    qa = QAService(sample_index.retriever(), llm, top_k=5)
    for item in items:
        stream = qa.ask_stream(item.question)
        prompt = llm.prompts[-1] if stream.generating and list(stream) is not None else ""
        places = [(h.source, h.page) for h in stream.hits]
        newer = next(n for n, (s, _) in enumerate(places) if s == item.newer)
        older = [n for n, p in enumerate(places) if p == (item.older, item.older_page)]
        assert all(newer < n for n in older), (item.id, places)
        assert f"[{newer + 1}] ({item.newer}, dated " in prompt, item.id
        for c in stream.conflicts:
            for p in c.points:
                assert c.declared or p.older + " (replaced by [" in prompt, (item.id, p.older)
                assert not c.declared or p.older not in prompt, (item.id, p.older)
