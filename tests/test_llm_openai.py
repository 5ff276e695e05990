"""The openai backend against a real HTTP server on 127.0.0.1 that speaks /v1/chat/completions.

Each test scripts the server's next answers (a stream, a status, a hang) and then checks both
what the client yielded or raised and what the server received. Nothing in httpx is mocked.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.errors import ConfigError, LLMConfigError, LLMError
from app.settings import load_settings
from app.wiring import make_llm
from llm.openai_backend import OpenAILLM

TIMEOUT = 0.5  # seconds: the client's; a hang in the server lasts longer


@dataclass
class Reply:
    """One scripted answer. ``kind``: stream | json | status | hang | stream_then_hang."""

    kind: str
    tokens: list[str] = field(default_factory=list)
    status: int = 200
    body: dict | str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict


class FakeOpenAIServer:
    """A ThreadingHTTPServer in a thread; answers with the queued replies, in order."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.received: list[Received] = []
        self.release = threading.Event()  # ends any hang when the test is over
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest's output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                if self.path != "/v1/chat/completions":
                    return self._status(404, {"error": {"message": f"no route {self.path}"}})
                reply = server.replies.pop(0) if server.replies else Reply("stream", ["ok"])
                match reply.kind:
                    case "stream" | "stream_then_hang":
                        self.send_response(200)
                        self.send_header("Content-Type", "text/event-stream")
                        self.end_headers()
                        self.wfile.write(b": keep-alive\n\n")
                        for token in reply.tokens:
                            chunk = {"choices": [{"index": 0, "delta": {"content": token}}]}
                            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                            self.wfile.flush()
                        if reply.kind == "stream_then_hang":
                            server.release.wait(10 * TIMEOUT)
                            return
                        final = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                        self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
                    case "json":
                        text = "".join(reply.tokens)
                        self._status(200, {"choices": [{"message": {"content": text}}]})
                    case "status":
                        self._status(reply.status, reply.body, reply.headers)
                    case "hang":
                        server.release.wait(10 * TIMEOUT)

            def _status(self, status: int, body: dict | str, headers: dict | None = None) -> None:
                raw = json.dumps(body).encode() if isinstance(body, dict) else body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    srv = FakeOpenAIServer()
    yield srv
    srv.close()


def _llm(server: FakeOpenAIServer, **kwargs) -> OpenAILLM:
    options = {"timeout": TIMEOUT, "retries": 2, "backoff": 0.01, "max_new_tokens": 32}
    return OpenAILLM("handbook-model", base_url=server.url, **(options | kwargs))


def test_streams_tokens_and_sends_the_expected_request(server):
    server.replies = [Reply("stream", ["Full-time ", "staff get ", "28 days [1]."])]
    llm = _llm(server, api_key="sk-test", temperature=0.2)
    pieces = list(llm.stream("How many vacation days?", max_tokens=7))
    assert pieces == ["Full-time ", "staff get ", "28 days [1]."]
    (request,) = server.received
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body == {
        "model": "handbook-model",
        "messages": [{"role": "user", "content": "How many vacation days?"}],
        "stream": True,
        "max_tokens": 7,
        "temperature": 0.2,
    }
    assert llm.name == f"openai: handbook-model @ {server.url}"


def test_no_key_means_no_authorization_header_and_default_max_tokens(server):
    server.replies = [Reply("stream", ["hi"])]
    assert list(_llm(server).stream("hello")) == ["hi"]
    assert "authorization" not in server.received[0].headers
    assert server.received[0].body["max_tokens"] == 32


def test_a_server_that_ignores_stream_and_sends_json_is_accepted(server):
    server.replies = [Reply("json", ["One ", "body."])]
    assert "".join(_llm(server).stream("hello")) == "One body."


def test_429_is_retried_with_a_capped_retry_after_and_then_answers(server):
    server.replies = [
        Reply(
            "status",
            status=429,
            body={"error": {"message": "slow down"}},
            headers={"Retry-After": "3600"},
        ),
        Reply("stream", ["after ", "retry"]),
    ]
    started = time.perf_counter()
    text = "".join(_llm(server, max_retry_after=0.05).stream("q"))
    assert text == "after retry"
    assert len(server.received) == 2  # the retry happened
    assert server.received[0].body == server.received[1].body
    assert time.perf_counter() - started < 2  # the hour-long Retry-After was capped


def test_500_retries_are_exhausted_then_llm_error_names_the_status(server):
    server.replies = [Reply("status", status=500, body="boom")] * 3
    with pytest.raises(LLMError, match="HTTP 500") as err:
        list(_llm(server, retries=2).stream("q"))
    assert len(server.received) == 3  # one try and two retries
    assert "3 attempt" in str(err.value)


def test_401_is_not_retried_and_says_to_set_the_key(server):
    server.replies = [Reply("status", status=401, body={"error": {"message": "bad key"}})]
    with pytest.raises(LLMError, match="RAG_LLM_API_KEY") as err:
        list(_llm(server, api_key="sk-wrong").stream("q"))
    assert "refused the API key" in str(err.value) and "OPENAI_API_KEY" in str(err.value)
    assert len(server.received) == 1


def test_401_without_a_key_says_the_server_wants_one(server):
    server.replies = [Reply("status", status=401, body={"error": "unauthorized"})]
    with pytest.raises(LLMError, match="wants an API key"):
        list(_llm(server).stream("q"))


def test_unknown_model_404_names_the_model_setting(server):
    server.replies = [
        Reply(
            "status",
            status=404,
            body={"error": {"message": "The model `handbook-model` does not exist."}},
        )
    ]
    with pytest.raises(LLMError, match="RAG_LLM_MODEL") as err:
        list(_llm(server).stream("q"))
    assert "'handbook-model'" in str(err.value) and "does not exist" in str(err.value)
    assert len(server.received) == 1


def test_model_not_found_in_a_400_body_is_reported_as_the_model(server):
    server.replies = [Reply("status", status=400, body={"error": "model 'llama9' not found"})]
    with pytest.raises(LLMError, match="RAG_LLM_MODEL"):
        list(_llm(server).stream("q"))


def test_a_hanging_server_ends_quickly_with_a_timeout_error(server):
    server.replies = [Reply("hang")]
    started = time.perf_counter()
    with pytest.raises(LLMError, match=rf"did not answer within {TIMEOUT:g} s"):
        list(_llm(server).stream("q"))
    assert time.perf_counter() - started < 4 * TIMEOUT
    assert len(server.received) == 1  # a hang is not retried


def test_a_stream_that_stalls_after_the_first_token_is_not_retried(server):
    server.replies = [Reply("stream_then_hang", ["partial "])]
    pieces = []
    with pytest.raises(LLMError, match="did not answer within"):
        for piece in _llm(server).stream("q"):
            pieces.append(piece)
    assert pieces == ["partial "]
    assert len(server.received) == 1


def test_connection_refused_says_start_the_server_or_set_the_url():
    with socket.socket() as sock:  # a port that was free a moment ago and now is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    llm = OpenAILLM("m", base_url=url, timeout=TIMEOUT, retries=1, backoff=0.01)
    with pytest.raises(LLMError, match="RAG_LLM_BASE_URL") as err:
        list(llm.stream("q"))
    assert f"No server at {url}" in str(err.value)


def test_from_settings_reads_model_url_and_openai_api_key(server, monkeypatch):
    monkeypatch.delenv("RAG_LLM_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    settings = load_settings(
        llm_backend="openai",
        llm_model="served-model",
        llm_base_url=server.url,
        max_new_tokens=11,
        llm_timeout=TIMEOUT,
    )
    llm = make_llm(settings)
    assert list(llm.stream("q")) == ["ok"]
    assert server.received[0].headers["authorization"] == "Bearer sk-from-env"
    assert server.received[0].body["model"] == "served-model"
    assert server.received[0].body["max_tokens"] == 11


def test_from_settings_without_a_model_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv("RAG_LLM_MODEL", raising=False)
    with pytest.raises(ConfigError, match="RAG_LLM_MODEL"):
        make_llm(load_settings(llm_backend="openai", llm_base_url="http://h/v1"))


def test_the_openai_api_without_a_key_fails_at_start(monkeypatch):
    monkeypatch.delenv("RAG_LLM_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        make_llm(load_settings(llm_backend="openai", llm_model="gpt-4o-mini"))


def test_a_base_url_that_is_not_http_is_refused():
    with pytest.raises(LLMConfigError, match="RAG_LLM_BASE_URL"):
        OpenAILLM("m", base_url="localhost:8000")
