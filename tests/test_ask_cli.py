"""``python -m app.ask`` on a terminal and piped: the person reads the checked answer."""

from __future__ import annotations

import pytest

from tests.conftest import ScriptedLLM, make_settings
from tests.test_press import PressingLLM

GARAGE_Q = "How much does a parking space in the new office garage cost per month?"


@pytest.fixture
def ask_with(sample_index, monkeypatch):
    """Run ``app.ask`` on the samples with a scripted model, stdout a terminal or a pipe."""
    import app.services
    from app import ask

    build = app.services.build_services

    def run(llm, question: str, *, terminal: bool) -> int:
        services = build(make_settings(sample_index.config.data_dir), llm=llm, index=sample_index)
        monkeypatch.setattr(app.services, "build_services", lambda settings: services)
        monkeypatch.setattr("sys.stdout.isatty", lambda: terminal)
        return ask.main([question])

    return run


INVENTED = "A parking space in the garage costs EUR 80 per month."


def test_piped_only_the_checked_answer_is_printed(ask_with, capsys):
    assert ask_with(ScriptedLLM(INVENTED), GARAGE_Q, terminal=False) == 0
    out = capsys.readouterr().out
    # the invented sentence is not printed as an answer, only listed as not found
    assert out.startswith("I couldn't find this in the documents.")
    assert f"not found in the documents: {INVENTED}" in out
    assert "Checked against the documents" not in out  # nothing was streamed to replace


def test_on_a_terminal_the_draft_is_followed_by_the_checked_answer(ask_with, capsys):
    assert ask_with(ScriptedLLM(INVENTED), GARAGE_Q, terminal=True) == 0
    out = capsys.readouterr().out
    draft, checked = out.split("Checked against the documents:\n")
    assert INVENTED in draft  # streamed as the model wrote it
    assert checked.startswith("I couldn't find this in the documents.")


def test_a_supported_answer_is_printed_once_with_its_sources(ask_with, capsys):
    for terminal in (True, False):
        llm = ScriptedLLM("Parking spaces in the new garage are rented monthly for EUR 35.")
        assert ask_with(llm, GARAGE_Q, terminal=terminal) == 0
        out = capsys.readouterr().out
        assert out.count("Parking spaces in the new garage") == 1, out
        assert "Checked against" not in out
        assert "Sources:" in out and "memo_2026-06_office_move.txt" in out


def test_a_pressed_answer_is_printed_although_it_was_not_streamed(ask_with, capsys):
    # the second try after "I don't know" is shown only once checked (llm.press): the CLI
    # printed nothing of it before, only its sources
    llm = PressingLLM("Parking spaces in the new garage are rented monthly for EUR 35.")
    for terminal in (True, False):
        assert ask_with(llm, GARAGE_Q, terminal=terminal) == 0
        out = capsys.readouterr().out
        assert out.lstrip().startswith("Parking spaces in the new garage"), out
        assert "memo_2026-06_office_move.txt" in out
