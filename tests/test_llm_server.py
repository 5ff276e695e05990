"""The openai backend end to end against a real OpenAI-compatible server: llama.cpp's
(``python -m llama_cpp.server``) serving SmolLM2-135M on 127.0.0.1, offline."""

from __future__ import annotations

import threading
import time

import pytest

from app.qa import QAService
from app.settings import load_settings
from app.wiring import make_llm
from retrieval.types import Hit
from tests.servers import llama_server


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    with llama_server(tmp_path_factory.mktemp("llama")) as url:
        yield url


def _llm(url: str, **overrides):
    settings = load_settings(
        llm_backend="openai",
        llm_model="smollm2",  # llama.cpp's server answers with its one model whatever the name
        llm_base_url=url,
        **{"max_new_tokens": 24, **overrides},
    )
    return make_llm(settings)


def test_openai_backend_streams_from_a_real_server(server_url):
    llm = _llm(server_url)
    assert llm.queue is None  # a server serves many at once: no queue in the app
    arrivals = []
    tokens = []
    for token in llm.stream("Name three colours."):
        arrivals.append(time.monotonic())
        tokens.append(token)
    assert len(tokens) > 3, tokens  # streamed piece by piece, not one body
    assert arrivals[-1] > arrivals[0]
    assert "".join(tokens).strip()


def test_questions_from_many_people_at_once_all_get_answers(server_url, embedder):
    llm = _llm(server_url)
    qa = QAService(OneHit(), llm, embedder=embedder)
    answers: dict[int, str] = {}
    errors: list[BaseException] = []

    def ask(i: int) -> None:
        try:
            answers[i] = qa.ask(f"When does the canteen open? ({i})").text
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and sorted(answers) == [0, 1, 2]
    assert all(text.strip() for text in answers.values())


def test_a_stopped_answer_closes_the_connection(server_url):
    llm = _llm(server_url, max_new_tokens=200)
    stream = llm.stream("Count from one to one hundred in words.")
    first = next(stream)
    stream.close()
    assert first and list(stream) == []
    # the server is free for the next question straight away
    assert "".join(_llm(server_url).stream("Say yes.")).strip()


class OneHit:
    def search(self, query: str, k: int) -> list[Hit]:
        return [Hit("id1", "The canteen opens at 11:30.", "canteen.txt", None, 1.0, 0.9)]
