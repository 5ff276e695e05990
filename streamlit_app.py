"""Handbook RAG web app: ``streamlit run streamlit_app.py [-- --data-dir DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import streamlit as st

from app.errors import USER_ERRORS
from app.services import Services, build_services
from app.settings import Settings, load_settings
from app.ui import shell


def _settings() -> Settings:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--data-dir", type=Path)
    args, _ = parser.parse_known_args(sys.argv[1:])
    return load_settings(data_dir=args.data_dir)


@st.cache_resource(show_spinner="Loading the search index and the model…")
def _services(settings: Settings) -> Services:
    return build_services(settings)


def main() -> None:
    st.set_page_config(page_title="Handbook RAG", page_icon="📘")
    try:
        services = _services(_settings())
    except USER_ERRORS as exc:
        st.error(str(exc))
        st.stop()
    services.warm_up()  # the model loads in the background while the page is used
    shell.run(services)


# Guarded, so that importing this file (a test, a tool) does not start the app.
if __name__ == "__main__":
    main()
