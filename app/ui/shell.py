"""The app around the pages: the sidebar, the role, and the pages that role may open.

The page list is built from the role on every rerun, so an employee's session has no
documents page at all (its URL falls back to the chat); the documents page checks the role
again itself. Tests call ``run`` with services they built (a scripted LLM, a temp index).
"""

from __future__ import annotations

import streamlit as st

from app.services import Services
from app.ui import admin, auth, chat


def run(services: Services) -> None:
    who = auth.current(services.settings)
    status = services.status()
    with st.sidebar:
        st.header("Handbook RAG")
        st.metric("Documents", status["documents"])
        st.metric("Chunks", status["chunks"])
        st.caption(f"Model: {status['model']}")
        if services.model.error:
            st.caption(f"Model not loaded: {services.model.error}")
        elif not services.model.ready and services.model.started is not None:
            st.caption("Model: loading…")
        if who.is_admin:  # the server's paths are for admins, not every employee
            st.caption(f"Data: {status['data_dir']}")
        if st.button("New conversation", key="new_conversation"):
            st.session_state["history"] = []
            st.rerun()
        auth.sidebar(services.settings, who)

    pages = [
        st.Page(
            lambda: chat.render(services), title="Chat", icon="💬", url_path="chat", default=True
        )
    ]
    documents = None
    if who.is_admin:
        documents = st.Page(
            lambda: admin.render(services), title="Documents", icon="📂", url_path="documents"
        )
        pages.append(documents)
    page = st.navigation(pages)
    if documents is not None and st.session_state.pop(auth.GO_TO_DOCUMENTS, False):
        st.switch_page(documents)
    page.run()
