"""A model "I don't know" asked once more (``llm.press``), and what ``QAService`` keeps of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.qa import QAService
from llm.press import Pressed, Revised
from tests.conftest import ScriptedLLM


def tokens(text: str) -> Iterator[str]:
    for word in text.split(" "):
        yield word + " "


class Tracked:
    """Tokens that record whether they were closed."""

    def __init__(self, text: str) -> None:
        self._it, self.closed = tokens(text), False

    def __iter__(self) -> Tracked:
        return self

    def __next__(self) -> str:
        return next(self._it)

    def close(self) -> None:
        self.closed = True


def test_an_answer_streams_through_untouched():
    asked = []
    tries = Pressed(lambda: tokens("The cap is EUR 170."), lambda: asked.append(1) or tokens("x"))
    assert "".join(tries).strip() == "The cap is EUR 170."
    assert not tries.pressed and not asked  # no second try


def test_a_refusal_is_held_back_and_replaced_by_the_second_try():
    first = Tracked("I don't know.")
    tries = Pressed(lambda: first, lambda: tokens("Spaces cost EUR 35 a month [1]."))
    shown = list(tries)
    assert "".join(shown).strip() == "Spaces cost EUR 35 a month [1]."
    assert not any("know" in t for t in shown)  # not a word of the refusal was shown
    assert tries.pressed and first.closed


@pytest.mark.parametrize("text", ["I", "In 2026 the cap is EUR 170.", "It is 10 days."])
def test_an_answer_that_starts_like_a_refusal_is_shown_whole(text):
    tries = Pressed(lambda: tokens(text), lambda: tokens("second"))
    assert "".join(tries).strip() == text and not tries.pressed


class PressingLLM:
    """A backend that can press: the first try refuses, the second says ``second``."""

    name = "pressing"
    presses = True

    def __init__(self, second: str) -> None:
        self.second, self.pressed_asks = second, 0

    def stream(self, prompt: str, *, max_tokens: int | None = None, press: bool = False):
        if not press:
            return tokens("I don't know.")
        self.pressed_asks += 1
        return Pressed(lambda: tokens("I don't know."), lambda: tokens(self.second))


def test_a_pressed_answer_that_the_resources_support_is_kept(sample_index):
    llm = PressingLLM("Parking spaces in the new garage are rented monthly for EUR 35.")
    qa = QAService(sample_index.retriever(), llm)
    stream = qa.ask_stream("How much does a parking space in the new office garage cost?")
    assert "".join(stream) == ""  # neither try is streamed: the second is shown once checked
    answer = stream.result()
    assert llm.pressed_asks == 1
    assert not answer.refused and answer.pressed and answer.to_json()["pressed"] is True
    assert [c.source for c in answer.citations] == ["memo_2026-06_office_move.txt"]
    assert "EUR 35" in answer.citations[0].quote


def test_a_pressed_answer_beside_the_question_leaves_the_refusal(sample_index):
    """Supported, but not what the question asks: the model's own "I don't know" stands."""
    llm = PressingLLM("The garage also has 8 charging points for electric cars.")
    qa = QAService(sample_index.retriever(), llm)
    answer = qa.ask("How much does a parking space in the new office garage cost per month?")
    assert answer.refused and not answer.pressed and answer.reason == "dont_know"
    assert answer.citations == []
    assert "charging" not in answer.text


def test_an_unsupported_pressed_answer_leaves_the_refusal(sample_index):
    llm = PressingLLM("A parking space costs EUR 50 per month.")
    answer = QAService(sample_index.retriever(), llm).ask(
        "How much does a parking space in the new office garage cost per month?"
    )
    assert answer.refused and answer.reason == "dont_know" and answer.text == "I don't know."


def test_no_press_without_resources_or_when_switched_off(sample_index):
    llm = PressingLLM("Anything.")
    nothing = QAService(sample_index.retriever(), llm).ask("Who won the football World Cup?")
    assert nothing.reason == "no_hits"  # under the relevance floor: no model call at all
    QAService(sample_index.retriever(), llm, press=False).ask(
        "How much does a parking space in the new office garage cost per month?"
    )
    assert llm.pressed_asks == 0


# ---- a second try after the answer check (llm.press.Revised) ------------------------------
def test_revised_streams_the_first_try_then_flags_the_second():
    asked: list[str] = []

    def revise(text: str):
        asked.append(text)
        return lambda: tokens("EUR 220.")

    tries = Revised(lambda: tokens("EUR 170."), revise)
    seen = []
    for token in tries:
        seen.append((token, tries.revised))
    assert [t for t, _ in seen] == ["EUR ", "170. ", "EUR ", "220. "]
    assert [r for _, r in seen] == [False, False, True, True]  # flagged before the second
    assert asked == ["EUR 170. "] and tries.first_text == "EUR 170. "


def test_no_second_try_when_the_check_asks_none_or_the_first_was_pressed():
    tries = Revised(lambda: tokens("EUR 35."), lambda text: None)
    assert "".join(tries) == "EUR 35. " and not tries.revised
    asked = []
    pressed = Revised(
        lambda: Pressed(lambda: tokens("I don't know."), lambda: tokens("EUR 35.")),
        lambda text: asked.append(text) or (lambda: tokens("x")),
    )
    assert "".join(pressed) == "EUR 35. " and pressed.pressed and not pressed.revised
    assert asked == []  # a pressed answer has had its second try


LONDON_Q = "What is the hotel limit per night in London?"


def test_a_value_given_to_the_wrong_subject_is_asked_again_and_corrected(sample_index):
    # dev q25 as the embedded model answered it: 170 is the cap for Germany and Austria
    llm = ScriptedLLM(
        "The hotel limit per night in London is EUR 170 [1].",
        "The hotel limit per night in London is EUR 220 [1].",
    )
    answer = QAService(sample_index.retriever(), llm).ask(LONDON_Q)
    assert len(llm.prompts) == 2
    first_prompt, second_prompt = llm.prompts
    assert second_prompt.startswith(first_prompt)  # the same prompt, then the finding
    assert "EUR 170" in second_prompt.removeprefix(first_prompt)
    assert "220 for 'london', not 170" in second_prompt  # what the passage gives London
    assert not answer.refused and answer.revised
    assert "EUR 220" in answer.text and answer.first_try.startswith("The hotel limit")
    assert [c.source for c in answer.citations] == ["memo_2026-10_travel_rates.txt"]
    assert "220" in answer.citations[0].quote
    assert answer.to_json()["revised"] is True


def test_a_second_try_the_check_does_not_support_leaves_the_refusal(sample_index):
    llm = ScriptedLLM(
        "The hotel limit per night in London is EUR 170.",
        "The hotel limit per night in London is EUR 300.",
    )
    answer = QAService(sample_index.retriever(), llm).ask(LONDON_Q)
    assert len(llm.prompts) == 2
    assert answer.refused and answer.reason == "not_found" and not answer.revised
    assert "EUR 300" not in answer.text
    assert answer.unsupported == ["The hotel limit per night in London is EUR 170."]


def test_no_second_try_for_an_invented_value_or_when_switched_off(sample_index):
    # a number no passage has: nothing to tell the model, so nothing is asked again
    llm = ScriptedLLM("The hotel limit per night in London is EUR 999.")
    answer = QAService(sample_index.retriever(), llm).ask(LONDON_Q)
    assert len(llm.prompts) == 1 and answer.refused and not answer.revised
    llm = ScriptedLLM("The hotel limit per night in London is EUR 170.")
    QAService(sample_index.retriever(), llm, revise=False).ask(LONDON_Q)
    assert len(llm.prompts) == 1


def test_an_answer_is_checked_once_though_the_reviser_checks_it_in_the_turn(
    sample_index, monkeypatch
):
    import app.qa

    calls: list[str] = []
    real = app.qa.check_answer
    monkeypatch.setattr(
        app.qa, "check_answer", lambda text, *a, **k: calls.append(text) or real(text, *a, **k)
    )
    llm = ScriptedLLM("The hotel cap in high-cost cities such as London is EUR 220 per night.")
    answer = QAService(sample_index.retriever(), llm).ask(LONDON_Q)
    assert not answer.refused and not answer.revised
    assert len(calls) == 1  # the reviser's check, reused by result()


class MarkerLLM(ScriptedLLM):
    """A backend that can ban "[" (as llama.cpp does with a logits processor): it writes
    the citation mark where the value belongs until it may not."""

    bans_markers = True

    def __init__(self, marked: str, plain: str) -> None:
        super().__init__()
        self.marked, self.plain, self.bans = marked, plain, []

    def stream(self, prompt: str, *, max_tokens: int | None = None, ban_markers: bool = False):
        self.prompts.append(prompt)
        self.bans.append(ban_markers)
        return tokens(self.plain if ban_markers else self.marked)


EMAIL_Q = "Which email address do I use to report a security incident?"


def test_a_mark_where_the_value_belongs_is_asked_again_without_marks(sample_index):
    # dev q21 as the embedded model answered it
    llm = MarkerLLM(
        "The email address to report a security incident is [1].",
        "The email address to report a security incident is security@larkspur-systems.example.",
    )
    answer = QAService(sample_index.retriever(), llm).ask(EMAIL_Q)
    assert llm.bans == [False, True]
    assert llm.prompts[0] == llm.prompts[1]  # the same prompt; only "[" is not allowed
    assert not answer.refused and answer.revised
    assert "security@larkspur-systems.example" in answer.text
    assert [(c.source, c.page) for c in answer.citations] == [("employee_handbook.pdf", 7)]


def test_no_second_try_without_marks_from_a_backend_that_cannot_ban_them(sample_index):
    llm = ScriptedLLM("The email address to report a security incident is [1].")
    answer = QAService(sample_index.retriever(), llm).ask(EMAIL_Q)
    assert len(llm.prompts) == 1 and answer.refused and answer.reason == "not_found"
