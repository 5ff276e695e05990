"""The chat page through Streamlit's AppTest."""

from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.settings import REPO_ROOT
from tests.conftest import MODEL_CACHE


@pytest.fixture
def app_env(monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_MODEL_DIR", str(MODEL_CACHE))
    return tmp_path


@pytest.fixture(autouse=True)
def fresh_process_cache():
    """The app builds its services once per process; each test here is a fresh start."""
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def test_empty_index_says_how_to_add_documents(app_env, monkeypatch):
    monkeypatch.setenv("RAG_DATA_DIR", str(app_env / "empty"))
    at = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=120).run()
    assert not at.exception
    assert any("No documents are indexed yet" in i.value for i in at.info)
    assert [m.value for m in at.sidebar.metric] == ["0", "0"]


def test_ask_and_see_answer_with_sources(sample_index, monkeypatch):
    """The real app, real index and the real embedded model behind the chat input."""
    monkeypatch.setenv("RAG_DATA_DIR", str(sample_index.config.data_dir))
    at = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=240).run()
    documents = len(sample_index.store.documents())  # the sample handbook and its memos
    assert [m.value for m in at.sidebar.metric] == [str(documents), str(sample_index.store.count())]
    assert any("Qwen2.5" in c.value for c in at.sidebar.caption)

    at.chat_input[0].set_value("How many vacation days do full-time employees get?").run()
    assert not at.exception
    texts = [m.value for m in at.markdown]
    assert any("28" in t for t in texts)
    assert any("employee\\_handbook.pdf, page 3" in t for t in texts)
    assert any(e.label.startswith("Sources given to the model") for e in at.expander)
    assert any(e.label == "Open employee_handbook.pdf, page 3" for e in at.expander)
    expanders = len(at.expander)

    # history is kept; an off-topic follow-up is refused without sources
    at.chat_input[0].set_value("What is the capital of Australia?").run()
    texts = [m.value for m in at.markdown]
    assert any("28" in t for t in texts) and "I don't know." in texts
    assert len(at.expander) == expanders


def test_one_set_of_services_per_process_and_a_settings_change_is_reported(app_env, monkeypatch):
    """Editing the environment (or rag.toml) while the app runs builds no second model: the
    change is named in the sidebar with what to do, and every session keeps one set."""
    import app.services

    built = []
    real = app.services.build_services

    def counting(settings, **kwargs):
        built.append(settings)
        return real(settings, **kwargs)

    monkeypatch.setattr(app.services, "build_services", counting)
    monkeypatch.setenv("RAG_DATA_DIR", str(app_env / "store"))
    at = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=120).run()
    assert not at.exception and len(built) == 1
    assert not at.sidebar.warning

    monkeypatch.setenv("RAG_TOP_K", "7")
    monkeypatch.setenv("RAG_LLM_API_KEY", "sk-secret-value")
    at.run()
    assert not at.exception and len(built) == 1
    (warning,) = [w.value for w in at.sidebar.warning]
    assert "top_k" in warning and "llm_api_key" in warning and "restart" in warning
    assert "sk-secret-value" not in warning and "7" not in warning

    other_tab = AppTest.from_file(str(REPO_ROOT / "streamlit_app.py"), default_timeout=120).run()
    assert not other_tab.exception and len(built) == 1  # a new session, the same services

    monkeypatch.setenv("RAG_TOP_K", "not a number")  # an invalid edit keeps the app running
    at.run()
    assert not at.exception and len(built) == 1
    assert any("invalid" in w.value.lower() for w in at.sidebar.warning)

    monkeypatch.delenv("RAG_TOP_K")
    monkeypatch.delenv("RAG_LLM_API_KEY")
    at.run()
    assert not at.sidebar.warning and len(built) == 1
