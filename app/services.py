"""Wire once: build the services from settings. The UI builds them once per process and
keeps them: a settings change at run time is reported (``changed_settings``), not applied
by building a second set (a second 1.1 GB model)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from app.pages import PageView, page_view
from app.qa import QAService
from app.settings import Settings
from app.wiring import make_llm, open_index
from llm import LLM
from retrieval import Index

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    index: Index
    llm: LLM
    qa: QAService
    model: ModelState = field(default_factory=lambda: ModelState())

    def status(self) -> dict:
        docs = self.index.store.documents()
        return {
            "documents": len(docs),
            "chunks": sum(d.chunks for d in docs),
            "model": self.llm.name,
            "data_dir": str(self.settings.data_dir),
        }

    def page(self, source: str, page: int | None, quote: str | None = None) -> PageView:
        """A cited page's text with the quote located in it."""
        return page_view(self.index, source, page, quote)

    def warm_up(self) -> None:
        """Load the model in the background now, not at the first question."""
        self.model.start(self.llm)


class ModelState:
    """Whether the model is loaded, loading (since when), or failed, for the page to say.
    A backend without ``load()`` (a server behind the openai backend) is ready at once."""

    EXPECTED_S = 15  # what loading the embedded model takes on 2 cores, assembled

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started: float | None = None
        self.loaded_s: float | None = None
        self.error: str | None = None

    def start(self, llm: LLM) -> None:
        load = getattr(llm, "load", None)
        with self._lock:
            if self.started is not None:
                return
            self.started = time.monotonic()
            if load is None:
                self.loaded_s = 0.0
                return
        threading.Thread(target=self._load, args=(load,), daemon=True, name="model-load").start()

    def _load(self, load) -> None:  # noqa: ANN001 - the backend's bound load()
        try:
            load()
        except Exception as exc:  # shown on the page; the question path raises it again
            log.exception("Loading the model failed")
            self.error = str(exc)
            return
        self.loaded_s = time.monotonic() - (self.started or time.monotonic())

    @property
    def ready(self) -> bool:
        return self.loaded_s is not None

    def loading_for(self) -> float:
        return 0.0 if self.started is None else time.monotonic() - self.started


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
        index.retriever(),
        llm,
        top_k=settings.top_k,
        condense_with_model=condense_with_model,
        embedder=index.embedder,
        context_tokens=settings.context_tokens,
    )
    return Services(settings, index, llm, qa)


def changed_settings(running: Settings, now: Settings) -> list[str]:
    """The names of the settings whose value differs between the ones the services were
    built with and the ones read now (names only: some values are secrets)."""
    return [
        name for name in type(running).model_fields if getattr(running, name) != getattr(now, name)
    ]
