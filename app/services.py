"""Wire once: build the services from settings. The UI builds them once per process and
keeps them: a settings change at run time is reported (``changed_settings``), not applied
by building a second set (a second 1.1 GB model)."""

from __future__ import annotations

from dataclasses import dataclass

from app.qa import QAService
from app.settings import Settings
from app.wiring import make_llm, open_index
from llm import LLM
from retrieval import Index


@dataclass
class Services:
    settings: Settings
    index: Index
    llm: LLM
    qa: QAService

    def status(self) -> dict:
        docs = self.index.store.documents()
        return {
            "documents": len(docs),
            "chunks": sum(d.chunks for d in docs),
            "model": self.llm.name,
            "data_dir": str(self.settings.data_dir),
        }


def build_services(
    settings: Settings, *, llm: LLM | None = None, index: Index | None = None
) -> Services:
    """Everything the app needs. Pass ``llm`` or ``index`` to replace a part (tests do)."""
    index = index or open_index(settings)
    llm = llm or make_llm(settings)
    condense_with_model = settings.condense == "model" or (
        settings.condense == "auto" and settings.llm_backend != "embedded"
    )
    qa = QAService(
        index.retriever(), llm, top_k=settings.top_k, condense_with_model=condense_with_model
    )
    return Services(settings, index, llm, qa)


def changed_settings(running: Settings, now: Settings) -> list[str]:
    """The names of the settings whose value differs between the ones the services were
    built with and the ones read now (names only: some values are secrets)."""
    return [
        name for name in type(running).model_fields if getattr(running, name) != getattr(now, name)
    ]
