"""The model's first-come-first-served queue (llm.queue) with a scripted slow model and
threads: order, positions, stop and abandon, the time bound, no queue for servers, and the
chat's "questions ahead of yours"."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.qa import QAService
from app.services import build_services
from app.settings import load_settings
from app.ui import queue_status
from app.wiring import make_llm
from llm.errors import LLMError
from llm.press import Retry
from llm.queue import AnswerQueue, QueuedLLM
from retrieval.types import Hit
from tests import ui_app
from tests.conftest import make_settings


class SlowLLM:
    """Yields ``tokens`` words, ``delay`` seconds apart; records when each answer ran and
    whether it was closed before its end."""

    name = "slow"

    def __init__(self, tokens: int = 5, delay: float = 0.02) -> None:
        self.tokens, self.delay = tokens, delay
        self.runs: list[tuple[str, float, float]] = []  # (prompt, started, ended)
        self.closed: list[str] = []
        self.lock = threading.Lock()

    def stream(self, prompt: str, *, max_tokens: int | None = None) -> Iterator[str]:
        started = time.monotonic()
        finished = False
        try:
            for i in range(self.tokens):
                time.sleep(self.delay)
                yield f"{prompt}-{i} "
            finished = True
        finally:
            with self.lock:
                self.runs.append((prompt, started, time.monotonic()))
                if not finished:
                    self.closed.append(prompt)


def test_answers_start_in_the_order_asked_and_positions_count_down():
    slow = SlowLLM(tokens=5, delay=0.03)
    llm = QueuedLLM(slow, queue=AnswerQueue())
    streams = [llm.stream(f"p{i}") for i in range(5)]
    assert [s.ticket.ahead for s in streams] == [0, 1, 2, 3, 4]

    seen: list[list[int | None]] = []
    threads = [threading.Thread(target=lambda s=s: list(s)) for s in streams]
    for t in reversed(threads):  # the last asked starts its thread first: order is the queue's
        t.start()
        time.sleep(0.01)
    while any(t.is_alive() for t in threads):
        seen.append([s.ticket.ahead for s in streams])
        time.sleep(0.005)
    for t in threads:
        t.join()

    assert [prompt for prompt, _, _ in slow.runs] == ["p0", "p1", "p2", "p3", "p4"]
    for (_, _, ended), (_, started, _) in zip(slow.runs, slow.runs[1:], strict=False):
        assert started >= ended  # one at a time
    last = [row[4] for row in seen if row[4] is not None]
    assert last == sorted(last, reverse=True) and {3, 2, 1, 0} <= set(last)  # counted down
    assert len(llm.queue) == 0


def test_a_second_try_after_the_check_is_in_the_same_turn():
    slow = SlowLLM(tokens=2, delay=0.01)
    llm = QueuedLLM(slow, queue=AnswerQueue())
    between: list[int | None] = []
    first = llm.stream(
        "p0", revise=lambda text: between.append(second.ticket.ahead) or Retry("p0b")
    )
    second = llm.stream("p1")
    text = "".join(first)
    assert text == "p0-0 p0-1 p0b-0 p0b-1 " and first.revised
    assert first.first_text == "p0-0 p0-1 "
    assert between == [1]  # the next question still waited while the check asked again
    assert second.ticket.ahead == 0  # the turn passed on once both tries were done
    list(second)
    assert [prompt for prompt, _, _ in slow.runs] == ["p0", "p0b", "p1"]


def test_a_stop_or_an_abandoned_answer_frees_the_model_at_once():
    slow = SlowLLM(tokens=50, delay=0.02)
    llm = QueuedLLM(slow, queue=AnswerQueue())
    a, b, c = llm.stream("a"), llm.stream("b"), llm.stream("c")
    assert next(a) == "a-0 " and c.ticket.ahead == 2
    b.close()  # stopped while waiting: leaves the queue
    assert c.ticket.ahead == 1 and list(b) == []
    a.close()  # stopped while generating: the backend is closed, the turn passes on
    assert slow.closed == ["a"] and c.ticket.wait(0)
    assert len(list(c)) == 50

    d = llm.stream("d")
    next(d)
    del d  # a tab closed mid-answer: nobody reads it any more
    gc.collect()
    assert "d" in slow.closed and len(llm.queue) == 0
    assert llm.stream("e").ticket.wait(0)


def test_an_answer_past_the_time_limit_is_stopped_and_frees_the_model():
    slow = SlowLLM(tokens=100, delay=0.02)
    llm = QueuedLLM(slow, queue=AnswerQueue(), answer_timeout_s=0.2)
    first, second = llm.stream("first"), llm.stream("second")
    started = time.monotonic()
    with pytest.raises(LLMError, match="RAG_ANSWER_TIMEOUT_S"):
        list(first)
    assert time.monotonic() - started < 1.5
    assert slow.closed == ["first"] and second.ticket.wait(0)


def test_a_server_backend_is_not_serialised():
    slow = SlowLLM(tokens=10, delay=0.02)
    llm = QueuedLLM(slow, queue=None)
    threads = [threading.Thread(target=lambda i=i: list(llm.stream(f"s{i}"))) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (_, s0, e0), (_, s1, e1), (_, s2, e2) = sorted(slow.runs, key=lambda r: r[1])
    assert s1 < e0 and s2 < e0  # all three generated at once

    served = make_llm(
        load_settings(llm_backend="openai", llm_model="m", llm_base_url="http://127.0.0.1:9/v1")
    )
    assert served.queue is None and served.answer_timeout_s == 300
    local = make_llm(load_settings(llm_backend="embedded", answer_timeout_s=42))
    assert local.queue is not None and local.answer_timeout_s == 42
    assert local.name.startswith("embedded:")  # the backend's own attributes show through


class OneHit:
    def search(self, query: str, k: int) -> list[Hit]:
        return [Hit("id1", "The canteen opens at 11:30.", "canteen.txt", None, 1.0, 0.9)]


def test_the_answer_stream_shows_its_place_and_closes(embedder):
    llm = QueuedLLM(SlowLLM(tokens=20, delay=0.01), queue=AnswerQueue())
    qa = QAService(OneHit(), llm, embedder=embedder)
    first, second = qa.ask_stream("When does the canteen open?"), qa.ask_stream("And closes?")
    assert (first.ticket.ahead, second.ticket.ahead) == (0, 1)
    first.close()
    assert second.ticket.ahead == 0
    assert second.result().text  # answered in full


def test_the_chat_waits_its_turn_then_answers(tmp_path, embedder, monkeypatch):
    """A question asked while another is being answered waits (the chat shows how many are
    ahead), then streams; the model is free again afterwards."""
    from app.wiring import open_index

    settings = make_settings(tmp_path / "store")
    index = open_index(settings, embedder)
    doc = tmp_path / "canteen.txt"
    doc.write_text("The canteen opens at 11:30 and serves vegetarian lunch on Thursdays.\n")
    from ingest import ingest_paths

    assert ingest_paths(index, [doc]).ok
    queue = AnswerQueue()
    llm = QueuedLLM(SlowLLM(tokens=3, delay=0.01), queue=queue)
    ui_app.SERVICES.update(
        services=build_services(settings, llm=llm, index=index), documents_page_alone=False
    )
    shown: list[int] = []
    real_text = queue_status.ahead_text
    monkeypatch.setattr(queue_status, "ahead_text", lambda n: shown.append(n) or real_text(n))
    at = AppTest.from_file(str(Path(ui_app.__file__)), default_timeout=60).run()
    someone_else = queue.join()  # another person's answer is being generated
    a_third = queue.join()  # and a third person's waits for it
    threading.Timer(1.5, someone_else.release).start()
    threading.Timer(3.0, a_third.release).start()
    started = time.monotonic()
    at.chat_input[0].set_value("When does the canteen open?").run()
    assert not at.exception
    assert time.monotonic() - started >= 2.5  # it waited for both other answers
    assert any("canteen" in m.value.lower() or "-2" in m.value for m in at.markdown)
    assert len(queue) == 0
    # "2 questions ahead", then "1 question ahead": each drawn once, not every half second
    assert shown == [2, 1]
