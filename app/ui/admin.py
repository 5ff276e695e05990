"""The documents page (admins only): upload, list, delete, re-index.

It writes through the ingest code and its writer lock, so it never runs alongside a
``python -m ingest``: an upload then waits up to ``uploads.LOCK_TIMEOUT`` seconds and, if the
other ingest is still writing, says so. Every name shown here went through
``uploads.display_name`` and is drawn as plain text.
"""

from __future__ import annotations

import streamlit as st

from app import uploads
from app.errors import USER_ERRORS
from app.services import Services
from app.ui import auth
from app.ui.render import inert_markdown

_GEN = "_rag_upload_gen"  # bumped to give the uploader and the picker a fresh, empty widget
_REPORT = "_rag_upload_report"
_NOTICE = "_rag_admin_notice"
_CONFIRM = "_rag_confirm_delete"


def result_line(result) -> str:
    """One line per file, worded as the CLI words it."""
    if result.status in ("added", "updated") and result.effective:
        return f"{result.status}: {result.source} ({result.chunks} chunks, {result.dated()})"
    if result.status in ("added", "updated"):
        return f"{result.status}: {result.source} ({result.chunks} chunks)"
    if result.reason:
        return f"{result.status}: {result.source}: {result.reason}"
    return f"{result.status}: {result.source}"


def _when(iso: str | None) -> str:
    """``2026-11-23T11:19:49.123456+00:00`` as ``2026-11-23 11:19 UTC``."""
    if not iso:
        return ""
    return iso[:16].replace("T", " ") + (" UTC" if iso.endswith(("+00:00", "Z")) else "")


def render(services: Services) -> None:
    who = auth.require_admin(services.settings)  # re-checked here, not only in the menu
    st.title("Documents")
    notice = st.session_state.pop(_NOTICE, None)
    if notice:
        kind, text = notice
        getattr(st, kind)(text)
    _upload(services, who)
    st.divider()
    _table(services)
    st.divider()
    _reindex(services)


def _upload(services: Services, who: auth.Identity) -> None:
    settings = services.settings
    gen = st.session_state.setdefault(_GEN, 0)
    st.subheader("Add documents")
    # No type= here on purpose: with it, Streamlit raises an exception for a crafted name
    # (a NUL byte) before this page runs; uploads.check_upload refuses it with a message.
    files = st.file_uploader(
        "Files to add",
        accept_multiple_files=True,
        max_upload_size=settings.upload_max_mb,
        key=f"upload_{gen}",
        help=f"{', '.join(settings.upload_types)}; at most {settings.upload_max_mb} MB each. "
        "A file with the name of an indexed document replaces it.",
    )
    effective = st.date_input(
        "Effective date (optional)",
        value=None,
        key=f"effective_{gen}",
        help="The date these files take effect. Left empty, each file's own date is used: a "
        '"Date:" line or front matter, a date in its name, its PDF metadata, else today.',
    )
    if st.button("Add to the index", type="primary", disabled=not files, key="add_uploads"):
        uploaded = [uploads.Upload(f.name, f.getvalue()) for f in files]
        _add(services, who, uploaded, effective)
    last = st.session_state.get(_REPORT)
    if last:
        box = st.success if not last["failed"] else st.warning
        box(inert_markdown(last["summary"]))
        for line in last["lines"]:
            st.markdown(inert_markdown(line))


def _add(
    services: Services, who: auth.Identity, files: list[uploads.Upload], effective=None
) -> None:
    lines: list[str] = []
    with st.status(f"Adding {len(files)} file(s)…", expanded=True) as status:

        def progress(result) -> None:
            lines.append(result_line(result))
            st.markdown(inert_markdown(lines[-1]))
            status.update(label=f"Adding files: {len(lines)} of {len(files)} done…")

        try:
            report = uploads.ingest_uploads(
                services.index,
                services.settings,
                files,
                added_by=who.name,
                lock_timeout=uploads.LOCK_TIMEOUT,
                on_result=progress,
                effective=effective,
            )
        except USER_ERRORS as exc:  # StoreError: another ingest holds the lock
            status.update(label="Stopped", state="error")
            st.error(str(exc))
            return
        status.update(label=report.summary(), state="complete")
    st.session_state[_REPORT] = {
        "summary": report.summary(),
        "lines": lines,
        "failed": bool(report.failed),
    }
    st.session_state[_GEN] = st.session_state.get(_GEN, 0) + 1
    st.rerun()


def _table(services: Services) -> None:
    st.subheader("Indexed documents")
    try:
        rows = uploads.list_documents(services.index)
    except USER_ERRORS as exc:
        st.error(str(exc))
        return
    if not rows:
        st.info("No documents are indexed yet.")
        return
    st.dataframe(
        [
            {
                "Name": r.name,
                "Pages": str(r.pages) if r.pages else "—",  # text files have no pages
                "Chunks": r.chunks,
                "Effective": r.effective or "",
                "Date from": r.effective_origin or "",
                "Added": _when(r.added_at),
                "Added by": r.added_by or "",
            }
            for r in rows
        ],
        hide_index=True,
        width="stretch",
    )
    _correct_date(services, rows)
    gen = st.session_state.get(_GEN, 0)
    pending: list[str] | None = st.session_state.get(_CONFIRM)
    if not pending:
        chosen = st.multiselect("Delete documents", [r.name for r in rows], key=f"delete_{gen}")
        if st.button("Delete…", disabled=not chosen, key="delete"):
            st.session_state[_CONFIRM] = list(chosen)
            st.rerun()
        return
    chunks = sum(r.chunks for r in rows if r.name in pending)
    st.warning(
        inert_markdown(
            f"Delete {len(pending)} document(s) and their {chunks} chunks from the index? "
            f"Answers will no longer use them: {', '.join(pending)}"
        )
    )
    yes, no = st.columns(2)
    if yes.button("Yes, delete", type="primary", key="confirm_delete"):
        try:
            uploads.remove_documents(
                services.index, services.settings, pending, lock_timeout=uploads.LOCK_TIMEOUT
            )
        except USER_ERRORS as exc:
            st.error(str(exc))
            return
        finally:
            st.session_state.pop(_CONFIRM, None)
        st.session_state[_NOTICE] = ("success", inert_markdown(f"Deleted: {', '.join(pending)}"))
        st.session_state[_GEN] = gen + 1
        st.rerun()
    if no.button("Cancel", key="cancel_delete"):
        st.session_state.pop(_CONFIRM, None)
        st.rerun()


def _correct_date(services: Services, rows: list) -> None:
    """Set a document's effective date by hand (metadata only: nothing is re-embedded)."""
    gen = st.session_state.get(_GEN, 0)
    with st.expander("Correct an effective date"):
        name = st.selectbox("Document", [r.name for r in rows], key=f"date_doc_{gen}")
        when = st.date_input("Effective from", value=None, key=f"date_value_{gen}")
        if st.button("Set the date", disabled=not (name and when), key="set_effective"):
            try:
                source = uploads.set_effective(
                    services.index, name, when, lock_timeout=uploads.LOCK_TIMEOUT
                )
            except USER_ERRORS as exc:
                st.error(str(exc))
                return
            text = f"{source}: effective {when.isoformat()} (given)" if source else f"{name}: gone"
            st.session_state[_NOTICE] = ("success", inert_markdown(text))
            st.session_state[_GEN] = gen + 1
            st.rerun()


def _reindex(services: Services) -> None:
    st.subheader("Maintenance")
    st.caption("Re-index all: rebuild the search indexes from the stored documents.")
    if st.button("Re-index all", key="reindex"):
        with st.spinner("Re-indexing…"):
            try:
                chunks = uploads.rebuild(services.index)
            except USER_ERRORS as exc:
                st.error(str(exc))
                return
        st.session_state[_NOTICE] = ("success", f"Re-indexed all documents: {chunks} chunks.")
        st.rerun()
