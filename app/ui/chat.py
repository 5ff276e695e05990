"""The chat page: history per browser session, streamed answers, sources under each answer."""

from __future__ import annotations

import streamlit as st

from app.errors import USER_ERRORS
from app.qa import EMPTY_QUESTION
from app.services import Services
from app.ui import queue_status
from app.ui.render import inert_markdown, source_label


def _show_sources(answer: dict) -> None:
    citations = answer.get("citations") or []
    if not citations:
        return
    inferred = all(c.get("inferred") for c in citations)
    title = "Sources (given to the model)" if inferred else "Sources"
    with st.expander(f"{title}: {len(citations)}", expanded=False):
        for c in citations:
            st.markdown(f"**[{c['n']}] {inert_markdown(source_label(c))}**")
            st.caption(inert_markdown(c["snippet"]))


def render(services: Services) -> None:
    st.title("Ask the handbook")
    status = services.status()
    if status["chunks"] == 0:
        st.info(
            "No documents are indexed yet. Add some with "
            "`python -m ingest PATH...` (for the samples: `python -m ingest data/samples`), "
            "or ask an admin to upload them."
        )

    history: list[dict] = st.session_state.setdefault("history", [])
    for turn in history:
        with st.chat_message("user"):
            st.markdown(inert_markdown(turn["question"]))
        with st.chat_message("assistant"):
            st.markdown(inert_markdown(turn["answer"]["answer"]))
            _show_sources(turn["answer"])

    question = st.chat_input("Ask a question about the company's documents")
    if question is None:
        return
    if not question.strip():
        st.warning(EMPTY_QUESTION)
        return
    with st.chat_message("user"):
        st.markdown(inert_markdown(question))
    with st.chat_message("assistant"):
        try:
            stream = services.qa.ask_stream(
                question, [(t["question"], t["answer"]["answer"]) for t in history]
            )
            placeholder = st.empty()
            try:
                queue_status.wait_for_turn(stream, placeholder)  # "2 questions ahead of yours"
                text = ""
                for token in stream:  # already checked by app.guard (see app.qa.AnswerStream)
                    text += token
                    placeholder.markdown(inert_markdown(text) + " ▌")
                answer = stream.result().to_json()
            finally:
                stream.close()  # a stop, a closed tab, an error: the model is free at once
        except USER_ERRORS as exc:
            st.error(str(exc))
            return
        placeholder.markdown(inert_markdown(answer["answer"]))
        _show_sources(answer)
    history.append({"question": question, "answer": answer})
