"""Who uses this browser session: an employee (chat) or an admin (chat and documents).

Two ways to become admin:

- **Password.** The hash comes from ``RAG_ADMIN_PASSWORD_HASH`` (settings) or, when that is
  unset, from ``admin_password_hash`` in ``.streamlit/secrets.toml``; make it with
  ``python -m app.auth hash``. Five wrong tries in a session pause that session for 30 s;
  twenty in the whole process pause every session for 60 s.
- **Single sign-on (optional).** With an ``[auth]`` section in ``.streamlit/secrets.toml``
  (Streamlit's OIDC: ``redirect_uri``, ``cookie_secret``, ``client_id``, ``client_secret``,
  ``server_metadata_url``), a "Sign in with single sign-on" button calls ``st.login``; a user
  whose e-mail is in ``admin_emails = ["a@example.com"]`` in the secrets is admin. Name a
  provider section (``[auth.okta]``) with ``sso_provider = "okta"``.

The role is decided again on every rerun: a password sign-in stays valid only while the
configured hash is the one it was checked against and for ``SESSION_HOURS``; an SSO admin
only while the identity provider's e-mail is still listed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import streamlit as st

from app import auth
from app.errors import ConfigError
from app.settings import Settings

_ROLE_KEY = "_rag_admin_grant"  # session_state only; no widget uses these keys
_THROTTLE_KEY = "_rag_sign_in_throttle"
GO_TO_DOCUMENTS = "_rag_go_to_documents"
SESSION_HOURS = 8


@dataclass(frozen=True)
class Identity:
    role: Literal["employee", "admin"]
    name: str = ""  # shown in the sidebar and recorded as "added by"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _secret(name: str, default: Any = None) -> Any:
    """A value from st.secrets; a missing or unreadable secrets file is no secrets."""
    try:
        return st.secrets.get(name, default)
    except Exception:  # FileNotFoundError, a TOML error: both mean "not configured here"
        return default


def configured_hash(settings: Settings) -> str | None:
    if settings.admin_password_hash is not None:
        return settings.admin_password_hash.get_secret_value().strip() or None
    value = str(_secret("admin_password_hash") or "").strip()
    return value or None


def sso_configured() -> bool:
    return _secret("auth") is not None


def _sso_email() -> str | None:
    try:
        if st.user.is_logged_in:
            return str(st.user.get("email") or "") or None
    except Exception:  # st.user without [auth] configured
        return None
    return None


def _sso_admins() -> set[str]:
    return {str(e).strip().lower() for e in _secret("admin_emails", []) or []}


def current(settings: Settings) -> Identity:
    """This session's identity, decided afresh from what is configured now."""
    grant = st.session_state.get(_ROLE_KEY)
    if grant is not None:
        stored = configured_hash(settings)
        fresh = time.time() - grant.get("since", 0) < SESSION_HOURS * 3600
        if stored and fresh and _same(grant.get("fingerprint", ""), auth.fingerprint(stored)):
            return Identity("admin", grant.get("name", "admin"))
        del st.session_state[_ROLE_KEY]  # password changed or removed, or too old
    if sso_configured():
        email = _sso_email()
        if email and email.lower() in _sso_admins():
            return Identity("admin", email)
        if email:
            return Identity("employee", email)
    return Identity("employee")


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def require_admin(settings: Settings) -> Identity:
    """For an admin-only page: stop the page here unless this session is admin now."""
    who = current(settings)
    if not who.is_admin:
        st.error("This page is for admins. Sign in as admin in the sidebar.")
        st.stop()
    return who


def _session_throttle() -> auth.Throttle:
    throttle = st.session_state.get(_THROTTLE_KEY)
    if throttle is None:
        throttle = st.session_state[_THROTTLE_KEY] = auth.Throttle()
    return throttle


def sign_in_with_password(settings: Settings, password: str) -> str | None:
    """Make this session admin if ``password`` is right. Returns a message for the person
    when it is not (or when trying is paused), ``None`` on success."""
    stored = configured_hash(settings)
    if not stored:
        return (
            "No admin password is configured. Make a hash with `python -m app.auth hash` and "
            "set RAG_ADMIN_PASSWORD_HASH (or admin_password_hash in .streamlit/secrets.toml)."
        )
    mine = _session_throttle()
    wait = max(mine.wait_seconds(), auth.PROCESS_THROTTLE.wait_seconds())
    if wait > 0:
        return f"Too many wrong passwords. Try again in {math.ceil(wait)} s."
    try:
        ok = auth.verify_password(password, stored)
    except ConfigError as exc:
        return str(exc)
    if not ok:
        mine.failed()
        auth.PROCESS_THROTTLE.failed()
        wait = max(mine.wait_seconds(), auth.PROCESS_THROTTLE.wait_seconds())
        pause = f" Too many tries: wait {math.ceil(wait)} s." if wait > 0 else ""
        return "Wrong password." + pause
    mine.succeeded()
    st.session_state[_ROLE_KEY] = {
        "name": "admin",
        "fingerprint": auth.fingerprint(stored),
        "since": time.time(),
    }
    return None


def sign_out() -> None:
    st.session_state.pop(_ROLE_KEY, None)


def sidebar(settings: Settings, who: Identity) -> None:
    """Sign-in and sign-out controls, drawn in the sidebar."""
    if who.is_admin:
        st.caption(f"Signed in as admin ({who.name})")
        if st.button("Sign out", key="sign_out"):
            sign_out()
            if sso_configured() and _sso_email():
                st.logout()
            st.rerun()
        return
    if sso_configured():
        email = _sso_email()
        if email:
            st.caption(f"Signed in as {email}")
            if st.button("Sign out", key="sso_sign_out"):
                st.logout()
        elif st.button("Sign in with single sign-on", key="sso_sign_in"):
            provider = _secret("sso_provider")
            if provider:
                st.login(provider)
            else:
                st.login()
    if not configured_hash(settings):
        if not sso_configured():  # say how, so a first-time operator finds the admin page
            st.caption(
                "Admin sign-in is off: make a hash with `python -m app.auth hash` and set "
                "`RAG_ADMIN_PASSWORD_HASH` (see the README)."
            )
        return
    with st.expander("Admin sign-in"):
        with st.form("admin_sign_in", clear_on_submit=True, border=False):
            password = st.text_input("Admin password", type="password", key="admin_password")
            submitted = st.form_submit_button("Sign in")
        if submitted:
            problem = sign_in_with_password(settings, password)
            if problem:
                st.error(problem)
            else:
                st.session_state[GO_TO_DOCUMENTS] = True
                st.rerun()
