"""The chat page: history per browser session; what was found shown at once, then the
answer as it streams, then the checked sources, each openable at its page."""

from __future__ import annotations

import streamlit as st

from app.errors import USER_ERRORS
from app.qa import EMPTY_QUESTION
from app.services import Services
from app.ui import conflicts as conflicts_ui
from app.ui import queue_status
from app.ui.render import inert_markdown, source_label

NOT_FOUND_NOTE = "not found in the documents"


def found_label(hits: list[dict]) -> str:
    """ "Found 5 passages in employee_handbook.pdf (p. 3, 7) and memo.md." """
    pages: dict[str, list[int]] = {}
    for h in hits:
        pages.setdefault(h["source"], [])
        if h.get("page") is not None and h["page"] not in pages[h["source"]]:
            pages[h["source"]].append(h["page"])
    parts = [
        src + (f" (p. {', '.join(str(p) for p in sorted(ps))})" if ps else "")
        for src, ps in pages.items()
    ]
    where = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    n = len(hits)
    return f"Found {n} passage{'s' if n != 1 else ''} in {where}."


def _quote(text: str, where: str) -> None:
    st.markdown(f"> {inert_markdown(text)}  \n> — {inert_markdown(where)}")


REVISING = "That does not match the documents: checking them and asking the model again…"


def _answer_markdown(answer: dict) -> str:
    """The answer's text; sentences no resource supports are muted and marked."""
    text = answer["answer"]
    marked = [
        s for s in answer.get("sentences") or [] if s["checked"] in ("unsupported", "dropped")
    ]
    if not marked:
        return inert_markdown(text)
    out, cursor = [], 0
    for s in marked:
        start, end = s["start"], s["end"]
        out.append(inert_markdown(text[cursor:start]))
        out.append(f":gray[{inert_markdown(text[start:end])} *({NOT_FOUND_NOTE})*]")
        cursor = end
    out.append(inert_markdown(text[cursor:]))
    return "".join(out)


def _open_page(services: Services, c: dict) -> None:
    """The cited page's text with the quote highlighted."""
    where = source_label(c)
    with st.expander(f"Open {where}", expanded=False):
        try:
            view = services.page(c["source"], c.get("page"), c.get("quote"))
        except USER_ERRORS as exc:
            st.error(str(exc))
            return
        if not view.text:
            st.caption("This page is no longer in the index.")
            return
        if view.quote_at is None:
            st.markdown(inert_markdown(view.text))
            return
        end = view.quote_at + len(c["quote"])
        st.markdown(
            inert_markdown(view.text[: view.quote_at])
            + f":orange-background[{inert_markdown(view.text[view.quote_at : end])}]"
            + inert_markdown(view.text[end:])
        )


def _show_sources(services: Services, answer: dict) -> None:
    citations = [c for c in answer.get("citations") or [] if c.get("quote")]
    if answer.get("passages"):  # a refusal: the closest passages, or the one that may help
        st.markdown(f"**{inert_markdown(answer.get('lead') or '')}**")
        for p in answer["passages"]:
            _quote(p["quote"], source_label(p))
            _open_page(services, p)
    if citations:
        st.markdown("**Sources**")
        for c in citations:
            st.markdown(f"**[{c['n']}] {inert_markdown(source_label(c))}**")
            for q in c.get("quotes") or [c["quote"]]:
                st.markdown(f"> {inert_markdown(q)}")
            _open_page(services, c)
    given = answer.get("sources") or []
    if given:
        with st.expander(f"Sources given to the model: {len(given)}", expanded=False):
            for s in given:
                st.caption(inert_markdown(f"[{s['n']}] {source_label(s)}"))


def _show_details(services: Services, answer: dict) -> None:
    if answer.get("withheld"):  # the notice asks an admin to check what was given
        for c in answer.get("citations") or []:
            st.caption(inert_markdown(f"[{c['n']}] {source_label(c)}"))
        return
    if answer.get("revised"):  # llm.press.Revised: say so, with the first answer
        st.caption(
            "The check did not find the model's first answer in the documents "
            f"(“{inert_markdown(answer.get('first_try') or '')}”). Asked again, the model "
            "gave this answer, which the check found there (see the quotes)."
        )
    if answer.get("pressed"):  # llm.press: say so, the person may weigh it
        st.caption(
            'The model first answered "I don\'t know"; asked again, it gave this answer, '
            "which the check found in the documents (see the quotes)."
        )
    # "The memo of ... replaces ... on this point", both sides openable at their page
    conflicts_ui.show(answer, lambda where: _open_page(services, where))
    _show_sources(services, answer)


def _model_note(services: Services) -> str | None:
    state = services.model
    if state.error:
        return None  # the question path reports the error itself
    if not state.ready and state.started is not None:
        return (
            f"Loading the model ({state.loading_for():.0f} s so far; about "
            f"{state.EXPECTED_S} s on first start)…"
        )
    return None


def render(services: Services) -> None:
    st.title("Ask the handbook")
    status = services.status()
    if status["chunks"] == 0:
        st.info(
            "No documents are indexed yet. Add some with "
            "`python -m ingest PATH...` (for the samples: `python -m ingest data/samples`), "
            "or ask an admin to upload them."
        )
    note = _model_note(services)
    if note:
        st.caption(note)

    history: list[dict] = st.session_state.setdefault("history", [])
    for i, turn in enumerate(history):
        with st.chat_message("user"):
            st.markdown(inert_markdown(turn["question"]))
        with st.chat_message("assistant"):
            st.container(key=f"answer_{i}").markdown(_answer_markdown(turn["answer"]))
            _show_details(services, turn["answer"])

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
            answer = _answer(services, question, history, key=f"answer_{len(history)}")
        except USER_ERRORS as exc:
            st.error(str(exc))
            return
        _show_details(services, answer)
    history.append({"question": question, "answer": answer})


def _answer(services: Services, question: str, history: list[dict], *, key: str) -> dict:
    """Search, show what was found, stream the answer, then show it checked."""
    with st.spinner("Searching the documents…"):
        stream = services.qa.ask_stream(
            question, [(t["question"], t["answer"]["answer"]) for t in history]
        )
    status = None
    if stream.generating and stream.hits:
        found = found_label([{"source": h.source, "page": h.page} for h in stream.hits])
        waiting = _model_note(services) or "Writing the answer…"
        status = st.status(f"{found} {waiting}", expanded=True)
        with status:
            preview = stream.preview
            if preview is not None:
                st.caption("Best match:")
                _quote(preview.quote, source_label(preview.to_json()))
    placeholder = st.container(key=key).empty()  # the answer's text (key: for browser tests)
    try:
        queue_status.wait_for_turn(stream, placeholder)  # "2 questions ahead of yours"
        text = ""
        for token in stream:  # already checked by app.guard (see app.qa.AnswerStream)
            text += token
            if stream.revising:  # the check found a value on the wrong subject: asked again
                placeholder.markdown(f"~~{inert_markdown(text)}~~\n\n*{REVISING}*")
                continue
            placeholder.markdown(inert_markdown(text) + " ▌")
        answer = stream.result().to_json()
    finally:
        stream.close()  # a stop, a closed tab, an error: the model is free at once
    if status is not None:
        label = (
            f"Checked {len(answer['citations'])} source(s) for the answer."
            if not answer["refused"]
            else "Not answered from the documents."
        )
        status.update(label=label, state="complete", expanded=False)
    placeholder.markdown(_answer_markdown(answer))
    return answer
