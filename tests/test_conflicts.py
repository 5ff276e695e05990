"""Conflicts between documents: found on real embeddings, the newer put first, what a
document replaces set aside and never cited alone, shown under the answer (AppTest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import conflicts
from app.citations import Citation
from app.qa import QAService
from app.services import build_services
from app.ui.render import inert_markdown
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
    # already cited together, or only the newer: nothing changes
    both = [Citation(1, "memo_2026-09_remote_work.md", None, "x"), older]
    assert conflicts.cite_newer(both, hits, found) == both


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
