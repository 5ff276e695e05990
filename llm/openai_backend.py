"""Any OpenAI-compatible chat-completions server: OpenAI, Azure OpenAI, vLLM, TGI, Ollama,
llama.cpp's server.

One ``POST {base_url}/chat/completions`` with ``stream: true``; the answer comes back as
server-sent events (``data: {...}`` lines, ended by ``data: [DONE]``). A server that ignores
``stream`` and answers with one JSON body is accepted too.

Failures before the first token (429, 5xx, a refused or dropped connection) are retried with
exponential back-off, honouring a capped ``Retry-After``. Once a token has been yielded nothing
is retried: the caller has already shown it. Timeouts are not retried either: a server that
hung once is likely to hang again, and the person would wait ``retries x timeout`` seconds.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from llm.errors import LLMConfigError, LLMError

KEY_HINT = "set RAG_LLM_API_KEY (or OPENAI_API_KEY)"
OPENAI_URL = "https://api.openai.com/v1"


class OpenAILLM:
    """``LLM`` over HTTP. Holds one connection pool; safe to share between threads."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str = OPENAI_URL,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        backoff: float = 0.5,
        max_retry_after: float = 30.0,
    ) -> None:
        base_url = base_url.rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise LLMConfigError(
                f"RAG_LLM_BASE_URL must be an http(s) URL such as http://localhost:8000/v1, "
                f"not {base_url!r}."
            )
        self.name = f"openai: {model} @ {base_url}"
        self.model = model
        self.base_url = base_url
        self._url = f"{base_url}/chat/completions"
        self._timeout = timeout
        self._retries = retries
        self._max_new_tokens = max_new_tokens
        self._temperature = temperature
        self._backoff = backoff
        self._max_retry_after = max_retry_after
        self._has_key = bool(api_key)
        headers = {"Accept": "text/event-stream"}
        if api_key and (parts.hostname or "").endswith(".azure.com"):
            headers["api-key"] = api_key  # Azure OpenAI's own header; Bearer is for Entra tokens
        elif api_key:  # local servers (vLLM, Ollama, llama.cpp) need none
            headers["Authorization"] = f"Bearer {api_key}"
        # httpx applies the timeout to connecting and to each read, so a server that stops
        # sending, before the answer or in the middle of it, ends with ReadTimeout.
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout))

    def stream(self, prompt: str, *, max_tokens: int | None = None) -> Iterator[str]:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "stream": True,
            "max_tokens": max_tokens or self._max_new_tokens,
            "temperature": self._temperature,
        }
        attempt = 0
        yielded = False
        while True:
            retry_in: float | None = None
            try:
                with self._client.stream("POST", self._url, json=body) as response:
                    if response.status_code >= 400:
                        response.read()
                        if _retryable(response.status_code) and attempt < self._retries:
                            retry_in = self._delay(attempt, response)
                        else:
                            raise self._http_error(response, attempt)
                    else:
                        for text in self._texts(response):
                            yielded = True
                            yield text
                        return
            except httpx.TimeoutException as exc:
                raise LLMError(
                    f"The server at {self.base_url} did not answer within {self._timeout:g} s "
                    f"({type(exc).__name__}); check that it is running and not overloaded, or "
                    "raise RAG_LLM_TIMEOUT."
                ) from exc
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                if yielded:
                    raise LLMError(
                        f"The connection to {self.base_url} broke in the middle of the "
                        f"answer ({exc}); ask again."
                    ) from exc
                if attempt >= self._retries:
                    if isinstance(exc, httpx.ConnectError):
                        raise LLMError(
                            f"No server at {self.base_url} ({exc}); start it or set "
                            "RAG_LLM_BASE_URL."
                        ) from exc
                    raise LLMError(
                        f"The server at {self.base_url} closed the connection without an "
                        f"answer ({exc}) after {attempt + 1} attempt(s); check its logs."
                    ) from exc
                retry_in = self._delay(attempt, None)
            except httpx.HTTPError as exc:  # invalid URL, unsupported protocol, ...
                raise LLMError(f"Could not call {self._url}: {exc}") from exc
            attempt += 1
            time.sleep(retry_in)

    # -- helpers -------------------------------------------------------------------------

    def _texts(self, response: httpx.Response) -> Iterator[str]:
        """The answer's text pieces, from SSE lines or from a single JSON body."""
        if response.headers.get("content-type", "").startswith("application/json"):
            data = _json(response.read())
            _raise_stream_error(data, self.base_url)
            for choice in data.get("choices") or []:
                text = (choice.get("message") or {}).get("content")
                if text:
                    yield text
            return
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, ": keep-alive" comments, "event:" fields
            payload = line[5:].strip()
            if payload == "[DONE]":
                return
            if not payload:
                continue
            data = _json(payload)
            _raise_stream_error(data, self.base_url)
            for choice in data.get("choices") or []:  # Azure sends filter-only chunks: []
                text = (choice.get("delta") or {}).get("content")
                if text:
                    yield text

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        """Seconds before retry ``attempt + 1``: the server's ``Retry-After`` when given
        (capped, so a server cannot park the app for an hour), else ``backoff * 2**attempt``."""
        if response is not None:
            after = _retry_after_seconds(response.headers.get("retry-after"))
            if after is not None:
                return min(after, self._max_retry_after)
        return min(self._backoff * 2**attempt, self._max_retry_after)

    def _http_error(self, response: httpx.Response, attempt: int) -> LLMError:
        status = response.status_code
        detail = _detail(response)
        where = self.base_url
        if status in (401, 403):
            if not self._has_key:
                return LLMError(
                    f"The server at {where} wants an API key (HTTP {status}: {detail}): {KEY_HINT}."
                )
            return LLMError(
                f"The server at {where} refused the API key (HTTP {status}: {detail}); "
                f"check it and {KEY_HINT}."
            )
        if status == 404 or _mentions_missing_model(detail):
            return LLMError(
                f"The server at {where} has no model {self.model!r} (HTTP {status}: {detail}); "
                "set RAG_LLM_MODEL to a model it serves (or check RAG_LLM_BASE_URL, which "
                "usually ends in /v1)."
            )
        if status == 429:
            return LLMError(
                f"The server at {where} is rate-limiting us (HTTP 429: {detail}) after "
                f"{attempt + 1} attempt(s); wait a little, or raise RAG_LLM_RETRIES."
            )
        if status >= 500:
            return LLMError(
                f"The server at {where} failed with HTTP {status} after {attempt + 1} "
                f"attempt(s): {detail}. Check its logs."
            )
        return LLMError(f"The server at {where} refused the request (HTTP {status}: {detail}).")


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` is either seconds or an HTTP date (RFC 9110, section 10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _json(raw: bytes | str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LLMError(f"The server sent something that is not JSON: {raw[:200]!r}") from exc
    if not isinstance(data, dict):
        raise LLMError(f"The server sent unexpected JSON: {str(data)[:200]}")
    return data


def _raise_stream_error(data: dict[str, Any], base_url: str) -> None:
    """Some servers report a failure inside a 200 stream: ``{"error": {...}}``."""
    if data.get("error"):
        error = data["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        raise LLMError(f"The server at {base_url} reported an error: {message}")


def _detail(response: httpx.Response) -> str:
    """The error message from the usual JSON shapes (OpenAI, vLLM, TGI, Ollama), else text."""
    text = response.text.strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300] or response.reason_phrase
    if isinstance(data, dict):
        for key in ("error", "detail", "message"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value
            if value:
                return str(value)[:300]
    return text[:300]


def _mentions_missing_model(detail: str) -> bool:
    lowered = detail.lower()
    return "model" in lowered and ("not found" in lowered or "does not exist" in lowered)
