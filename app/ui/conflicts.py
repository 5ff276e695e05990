"""Under an answer: which document replaces which, on what point, with both sources."""

from __future__ import annotations

import streamlit as st

from app.ui.render import inert_markdown, source_label


def show(answer: dict) -> None:
    """One notice per conflict in ``answer["conflicts"]`` (``Answer.to_json()``): "The memo
    of 8 September 2026 replaces the Employee Handbook, page 6, on this point.", then the
    newer and the older source, each with its date and what it says on that point."""
    for conflict in answer.get("conflicts") or []:
        with st.container(border=True):
            st.markdown(f"🗓️ {inert_markdown(conflict['message'])}")
            for side, label in (("newer", "Now"), ("older", "Before")):
                where = conflict[side]
                said = " … ".join(p[side] for p in conflict["points"])
                st.caption(
                    f"{label}: **{inert_markdown(source_label(where))}** "
                    f"(dated {inert_markdown(where.get('effective') or '?')}): "
                    f"{inert_markdown(said)}"
                )
