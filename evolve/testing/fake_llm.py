"""A scripted, deterministic OpenAI-compatible Chat Completions server on 127.0.0.1.

It is a real HTTP server (stdlib ``ThreadingHTTPServer``), so the production ``openai`` client, its
HTTP stack, timeouts and retries are exercised exactly as against a real endpoint. Tests and
benchmarks script the replies, including faults (rate limits, server errors, slow answers, garbage
and truncated bodies, a revoked key, an unknown model, a reply from another model, the server dying
mid-run and coming back), and assert on the recorded requests.

    with FakeLLMServer(["first reply", rate_limited(0.1), "second reply"]) as server:
        client = LLMClient(server.base_url, [ModelSpec("fake")])
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union


@dataclass(frozen=True)
class Reply:
    """A successful completion: text and/or tool calls.

    ``tool_calls`` entries are ``{"name": str, "arguments": dict | str}`` (an ``id`` is optional).
    """

    content: str | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()
    finish_reason: str | None = None  # default: "tool_calls" when there are tool calls, else "stop"
    model: str | None = None  # the model id the answer reports; default: the server's, else the requested one


@dataclass(frozen=True)
class HTTPFault:
    """Answer with an HTTP error status (429 carries a ``Retry-After`` header when set)."""

    status: int
    retry_after: float | None = None
    message: str = "fake LLM server fault"
    code: str | None = None  # the body's ``error.code`` (OpenAI: "model_not_found", "insufficient_quota")


@dataclass(frozen=True)
class Slow:
    """Wait ``seconds`` before answering with ``then`` (a client with a shorter timeout gives up)."""

    seconds: float
    then: "Response" = "slow reply"


@dataclass(frozen=True)
class Garbage:
    """A 200 answer whose body is not a chat completion."""

    body: bytes = b"<html>upstream proxy error</html>"
    content_type: str = "application/json"


@dataclass(frozen=True)
class Truncated:
    """A 200 answer that declares a longer body than it sends, then cuts the connection."""

    then: "Response" = "truncated reply"


@dataclass(frozen=True)
class Die:
    """The server dies on this request: it stops listening and cuts every open connection, this one
    included. Later requests get "connection refused" until :meth:`FakeLLMServer.revive`."""


Response = Union[str, dict[str, Any], Reply, HTTPFault, Slow, Garbage, Truncated, Die]
Script = Union[Iterable[Response], Callable[[dict[str, Any]], Response]]


def rate_limited(retry_after: float | None = 0.0) -> HTTPFault:
    return HTTPFault(429, retry_after, "rate limit exceeded")


def server_error(status: int = 500) -> HTTPFault:
    return HTTPFault(status, None, "internal server error")


def unauthorized() -> HTTPFault:
    """What a revoked or wrong API key gets."""
    return HTTPFault(401, None, "Incorrect API key provided", "invalid_api_key")


def forbidden() -> HTTPFault:
    return HTTPFault(403, None, "Project does not have access to this model", "forbidden")


def model_not_found(model: str = "fake-model", status: int = 404) -> HTTPFault:
    """An unknown model, as OpenAI (404) or some proxies (400) answer it."""
    return HTTPFault(status, None, f"The model `{model}` does not exist", "model_not_found")


def count_tokens(text: str | None) -> int:
    """The server's deterministic token count: whitespace-separated words."""
    return len(text.split()) if text else 0


@dataclass
class _State:
    script: Script
    models: tuple[str, ...]
    report_model: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    requests: list[dict[str, Any]] = field(default_factory=list)
    request_times: list[float] = field(default_factory=list)
    request_headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    served: int = 0
    connections: set[socket.socket] = field(default_factory=set)
    threads: set[threading.Thread] = field(default_factory=set)

    def next_response(self, body: dict[str, Any]) -> Response:
        if callable(self.script):
            return self.script(body)
        with self.lock:
            if not isinstance(self.script, list):
                self.script = list(self.script)
            if self.served >= len(self.script):
                return HTTPFault(400, None, f"fake LLM server: script exhausted after {self.served} responses")
            response = self.script[self.served]
            self.served += 1
            return response


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real servers; every answer has a Content-Length
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid the 40 ms ACK stall
    server: "_Server"

    def setup(self) -> None:
        super().setup()
        state = self.server.state
        with state.lock:
            state.connections.add(self.connection)
            state.threads.add(threading.current_thread())

    def finish(self) -> None:
        state = self.server.state
        with state.lock:
            state.connections.discard(self.connection)
            state.threads.discard(threading.current_thread())
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence per-request logging."""

    # --- routing ----------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._record(None)
        if self.path.rstrip("/") == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.server.state.models]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_error(404, f"no route GET {self.path}")

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._record(None)
            self._send_error(404, f"no route POST {self.path}")
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._record(None)
            self._send_error(400, "request body is not JSON")
            return
        self._record(body)
        if body.get("stream"):
            self._send_error(400, "fake LLM server does not stream")
            return
        try:
            self._answer(body, self.server.state.next_response(body))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. timed out) first

    # --- answers ----------------------------------------------------------------------------
    def _answer(self, body: dict[str, Any], response: Response) -> None:
        if isinstance(response, Slow):
            if self.server.state.stop.wait(response.seconds):
                self.close_connection = True
                return
            self._answer(body, response.then)
        elif isinstance(response, HTTPFault):
            headers = {} if response.retry_after is None else {"Retry-After": f"{response.retry_after:g}"}
            self._send_error(response.status, response.message, headers, response.code)
        elif isinstance(response, Die):
            self.close_connection = True
            self.server.owner.kill()
        elif isinstance(response, Garbage):
            self._send_raw(200, response.body, response.content_type)
        elif isinstance(response, Truncated):
            data = json.dumps(_completion(body, _as_reply(response.then), self.server.state)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data) + 64))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._send_json(200, _completion(body, _as_reply(response), self.server.state))

    def _record(self, body: dict[str, Any] | None) -> None:
        state = self.server.state
        with state.lock:
            state.paths.append(f"{self.command} {self.path}")
            if body is not None:
                state.requests.append(body)
                state.request_times.append(time.monotonic())
                state.request_headers.append({k.lower(): v for k, v in self.headers.items()})

    def _send_error(self, status: int, message: str, headers: dict[str, str] | None = None,
                    code: str | None = None) -> None:
        payload = {"error": {"message": message, "type": "fake_error", "code": code or status}}
        self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        self._send_raw(status, json.dumps(payload).encode(), "application/json")

    def _send_raw(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _as_reply(response: Response) -> Reply:
    if isinstance(response, Reply):
        return response
    if isinstance(response, str):
        return Reply(content=response)
    if isinstance(response, dict):
        return Reply(
            content=response.get("content"),
            tool_calls=tuple(response.get("tool_calls", ())),
            finish_reason=response.get("finish_reason"),
            model=response.get("model"),
        )
    raise TypeError(f"fake LLM server: cannot nest {type(response).__name__} here")


def _completion(body: dict[str, Any], reply: Reply, state: _State) -> dict[str, Any]:
    with state.lock:
        number = len(state.requests)
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    calls = []
    for i, call in enumerate(reply.tool_calls):
        arguments = call.get("arguments", {})
        calls.append({
            "id": call.get("id", f"call_{number}_{i}"),
            "type": "function",
            "function": {"name": call["name"], "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)},
        })
    if calls:
        message["tool_calls"] = calls
    prompt_tokens = sum(count_tokens(m.get("content")) for m in body.get("messages", []) if isinstance(m.get("content"), str))
    completion_tokens = count_tokens(reply.content) + sum(count_tokens(c["function"]["arguments"]) + 1 for c in calls)
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": 0,
        "model": reply.model or state.report_model or body.get("model", "fake"),
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": reply.finish_reason or ("tool_calls" if calls else "stop"),
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a forgotten server never blocks interpreter exit; close() joins them
    state: _State
    owner: "FakeLLMServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (cancelled, timed out) is normal here; anything else is reported."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class FakeLLMServer:
    """A threaded Chat Completions server on a free loopback port; use as a context manager.

    ``responses`` is a list (served in order, one per chat request; when exhausted the server answers
    HTTP 400 "script exhausted") or a callable ``request_json -> response``. A response is a string
    (the assistant text), a dict ``{"content", "tool_calls", "finish_reason"}``, a :class:`Reply`,
    or a fault: :class:`HTTPFault` (see :func:`rate_limited`, :func:`server_error`,
    :func:`unauthorized`, :func:`forbidden`, :func:`model_not_found`), :class:`Slow`,
    :class:`Garbage`, :class:`Truncated` or :class:`Die`. ``report_model`` is the model id every
    answer claims (default: the requested one). ``port`` 0 picks a free port.
    """

    def __init__(self, responses: Script = (), models: Iterable[str] = ("fake-model",), *,
                 report_model: str | None = None, port: int = 0) -> None:
        self._state = _State(script=responses if callable(responses) else list(responses), models=tuple(models),
                             report_model=report_model)
        self._port = port
        self._closed = False
        self._alive_lock = threading.Lock()
        self._listen()

    def _listen(self) -> None:
        self._httpd = _Server(("127.0.0.1", self._port), _Handler)
        self._port = self._httpd.server_address[1]
        self._httpd.state, self._httpd.owner = self._state, self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), name="fake-llm", daemon=True)
        self._thread.start()
        self._alive = True

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url`` of this server (ends in ``/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of all chat requests received so far, in arrival order."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def request_times(self) -> list[float]:
        """``time.monotonic()`` at the arrival of each chat request."""
        with self._state.lock:
            return list(self._state.request_times)

    @property
    def request_headers(self) -> list[dict[str, str]]:
        """The HTTP headers (lower-case names) of each chat request."""
        with self._state.lock:
            return list(self._state.request_headers)

    @property
    def paths(self) -> list[str]:
        """``"METHOD /path"`` of every request received, in arrival order."""
        with self._state.lock:
            return list(self._state.paths)

    def kill(self) -> None:
        """Die like a crashed server: stop listening (connects are refused), wake slow handlers and
        cut every open connection. Safe from a handler thread; :meth:`revive` brings it back."""
        with self._alive_lock:
            if not self._alive:
                return
            self._alive = False
            self._state.stop.set()
            self._httpd.shutdown()
            self._httpd.server_close()
            with self._state.lock:
                connections = list(self._state.connections)
            for conn in connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def revive(self) -> None:
        """Listen again on the same port with the same script position (the endpoint is back)."""
        with self._alive_lock:
            if self._alive or self._closed:
                return
            self._state.stop = threading.Event()
            self._listen()

    @property
    def alive(self) -> bool:
        return self._alive

    def close(self) -> None:
        """Stop serving, wake slow handlers, cut open connections and join every handler thread."""
        if self._closed:
            return
        self.kill()
        self._closed = True
        with self._state.lock:
            threads = [t for t in self._state.threads if t is not threading.current_thread()]
        for thread in threads:
            thread.join(timeout=5)
        self._thread.join(timeout=5)

    def __enter__(self) -> "FakeLLMServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
