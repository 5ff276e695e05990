"""Handbook RAG web app: ``streamlit run streamlit_app.py [-- --data-dir DIR]``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import streamlit as st

from app.errors import USER_ERRORS
from app.services import Services, build_services, changed_settings
from app.settings import Settings, load_settings
from app.ui import shell

log = logging.getLogger("app")


def _settings() -> Settings:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--data-dir", type=Path)
    args, _ = parser.parse_known_args(sys.argv[1:])
    return load_settings(data_dir=args.data_dir)


# One set of services per process, whatever the settings say later: keyed on the settings,
# an edited rag.toml or environment would build a second set (another 1.1 GB model) and
# keep the first. A change is reported instead (_settings_drift); a restart applies it.
@st.cache_resource(show_spinner="Loading the search index and the model…")
def _services() -> Services:
    return build_services(_settings())


def _settings_drift(services: Services) -> None:
    try:
        changed = changed_settings(services.settings, _settings())
    except USER_ERRORS as exc:
        changed, why = ["(invalid now)"], str(exc)
    else:
        why = ""
    if not changed:
        return
    log.warning("Settings changed since the app started: %s %s", ", ".join(changed), why)
    st.sidebar.warning(
        f"Settings changed since the app started: {', '.join(changed)}. {why} "
        "The app keeps running with the settings it started with; restart it to apply them."
    )


def main() -> None:
    st.set_page_config(page_title="Handbook RAG", page_icon="📘")
    try:
        services = _services()
    except USER_ERRORS as exc:
        st.error(str(exc))
        st.stop()
    _settings_drift(services)
    services.warm_up()  # the model loads in the background while the page is used
    shell.run(services)


# Guarded, so that importing this file (a test, a tool) does not start the app.
if __name__ == "__main__":
    main()
