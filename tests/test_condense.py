"""Follow-up questions become standalone search queries; standalone ones are left alone."""

from __future__ import annotations

import pytest

from app.condense import (
    MAX_REWRITE_CHARS,
    clean_rewrite,
    condense,
    needs_context,
    rule_condense,
)
from app.errors import LLMError
from tests.conftest import ScriptedLLM

VACATION = (
    "How many vacation days do full-time employees get?",
    "Full-time employees get 28 days of paid vacation leave per year [1].",
)
HISTORY = [VACATION]


def test_a_follow_up_carries_the_earlier_topic():
    query = condense("and for part-time staff?", HISTORY)
    lowered = query.lower()
    assert "vacation" in lowered or "leave" in lowered
    assert "part-time" in lowered
    assert not lowered.startswith("and")
    assert query == "vacation days full-time employees: for part-time staff?"


def test_a_chain_of_follow_ups_keeps_the_original_subject():
    history = [VACATION, ("and for part-time staff?", "Part-time staff get it pro rata [2].")]
    query = condense("What about interns?", history)
    assert query.startswith("vacation days") and "interns" in query
    assert "part-time" not in query  # the earlier follow-up's detail does not pile up


def test_a_standalone_question_is_left_unchanged():
    question = "What is the dress code for client meetings?"
    assert condense(question, HISTORY) == question
    assert condense(question, HISTORY, llm=ScriptedLLM("must not be asked")) == question


def test_without_history_nothing_changes():
    assert condense("and for part-time staff?", []) == "and for part-time staff?"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("and for part-time staff?", True),
        ("What about contractors?", True),
        ("How about interns?", True),
        ("Is it paid?", True),
        ("Can I carry them over?", True),
        ("Parking?", True),
        ("How many vacation days do full-time employees get?", False),
        ("Is it allowed to bring dogs to the office on Fridays?", False),
        ("What is the remote work policy?", False),
        ("Where do employees park their bikes?", False),  # "their" = the employees
        ("What is their notice period?", True),  # "their" = someone named before
        ("Do interns get it too?", True),  # "it" points back wherever it stands
        ("", False),
    ],
)
def test_needs_context(question, expected):
    assert needs_context(question) is expected


def test_pronoun_follow_up_gets_the_topic():
    history = [("What is the parental leave policy?", "Sixteen weeks of paid leave [1].")]
    assert rule_condense("Is it paid?", history) == "parental leave policy: Is it paid?"


def test_model_rewrite_is_used_and_sees_the_conversation():
    llm = ScriptedLLM("How many vacation days do part-time employees get?")
    query = condense("and for part-time staff?", HISTORY, llm=llm)
    assert query == "How many vacation days do part-time employees get?"
    (prompt,) = llm.prompts
    assert "User: How many vacation days do full-time employees get?" in prompt
    assert "Assistant: Full-time employees get 28 days" in prompt
    assert prompt.rstrip().endswith(
        "Follow-up question: and for part-time staff?\nStandalone question:"
    )


def test_model_rewrite_is_cleaned_of_labels_and_quotes():
    llm = ScriptedLLM('Standalone question: "Do part-time staff get vacation days?"\nExtra.')
    assert condense("and part-time?", HISTORY, llm=llm) == "Do part-time staff get vacation days?"


@pytest.mark.parametrize("reply", ["", "   ", "word " * (MAX_REWRITE_CHARS // 2)])
def test_unusable_model_output_falls_back_to_the_rule(reply):
    llm = ScriptedLLM(reply)
    assert condense("and for part-time staff?", HISTORY, llm=llm) == rule_condense(
        "and for part-time staff?", HISTORY
    )
    assert len(llm.prompts) == 1


def test_a_failing_model_falls_back_to_the_rule():
    class DownLLM:
        name = "down"

        def stream(self, prompt, *, max_tokens=None):
            raise LLMError("No server at http://localhost:8000/v1")
            yield  # a generator, like a real backend

    query = condense("and for part-time staff?", HISTORY, llm=DownLLM())
    assert query == "vacation days full-time employees: for part-time staff?"


def test_clean_rewrite_refuses_empty_and_overlong_output():
    assert clean_rewrite("") is None
    assert clean_rewrite('""') is None
    assert clean_rewrite("x" * (MAX_REWRITE_CHARS + 1)) is None
    assert clean_rewrite("  Is parental leave paid?  ") == "Is parental leave paid?"
