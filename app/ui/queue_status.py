"""While an answer waits for the model: "2 questions ahead of yours", and a way to stop.

The model answers one question at a time (``llm.queue``); the chat calls ``wait_for_turn``
before streaming an answer, and closes the stream in a ``finally`` (see ``app.ui.chat``), so
a stop, a closed tab or a new question gives the model's turn to the next person at once.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

POLL_S = 0.5  # how often the position is looked at while waiting


def ahead_text(ahead: int) -> str:
    if ahead == 1:
        return "1 question ahead of yours: yours is next."
    return f"{ahead} questions ahead of yours. The model answers one question at a time."


def stop_button() -> None:
    """A button that stops this answer: clicking it starts a new run of the page, which
    interrupts this one (its ``finally`` closes the stream)."""
    st.button("Stop", key="stop_answer", help="Stop this answer", type="secondary")


def wait_for_turn(stream: Any, placeholder: Any) -> None:
    """Show the answer's place in the queue, updated while it waits, until its turn.
    Returns at once when there is no queue or nobody is ahead. The notice is redrawn only
    when the number changes: with 15 people waiting, redrawing each notice twice a second
    sent 30 page updates a second to browsers on the cores the model answers on."""
    ticket = getattr(stream, "ticket", None)
    if ticket is None or ticket.wait(0):
        return
    stop_button()
    shown = None
    while not ticket.wait(POLL_S):
        ahead = ticket.ahead
        if ahead is None:  # left the queue (stopped)
            return
        if ahead != shown:
            placeholder.info(ahead_text(ahead), icon="⏳")
            shown = ahead
    placeholder.empty()
