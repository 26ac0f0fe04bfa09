"""The fake OpenAI-compatible server, exercised over real HTTP (stdlib client and the openai client)."""

from __future__ import annotations

import http.client
import json
import socket
import threading

import openai
import pytest

from evolve.testing import (
    Die,
    FakeLLMServer,
    Garbage,
    HTTPFault,
    Reply,
    Slow,
    Truncated,
    forbidden,
    model_not_found,
    rate_limited,
    server_error,
    unauthorized,
)

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "add two and three"}]


def post(server: FakeLLMServer, body: dict | bytes, timeout: float = 5.0) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", "/v1/chat/completions", body=data, headers={"Content-Type": "application/json"})
    return conn.getresponse()


def sdk(server: FakeLLMServer, timeout: float = 5.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=timeout)


def test_text_reply_with_usage_counts_through_the_openai_client() -> None:
    with FakeLLMServer(["five is the answer"]) as server:
        reply = sdk(server).chat.completions.create(model="tiny", messages=MESSAGES)
    assert reply.choices[0].message.content == "five is the answer"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "tiny"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (2 + 4, 4)
    assert server.requests[0]["messages"] == MESSAGES


def test_tool_call_reply() -> None:
    call = {"name": "read_file", "arguments": {"path": "a.py"}}
    with FakeLLMServer([{"content": None, "tool_calls": [call]}]) as server:
        reply = sdk(server).chat.completions.create(model="m", messages=MESSAGES, tools=[{"type": "function", "function": {"name": "read_file", "parameters": {}}}])
    message = reply.choices[0].message
    assert reply.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls[0].function.name == "read_file"
    assert json.loads(message.tool_calls[0].function.arguments) == {"path": "a.py"}
    assert server.requests[0]["tools"][0]["function"]["name"] == "read_file"


def test_rate_limit_carries_retry_after() -> None:
    with FakeLLMServer([rate_limited(2.5)]) as server:
        response = post(server, {"model": "m", "messages": MESSAGES})
        assert response.status == 429
        assert response.getheader("Retry-After") == "2.5"
        assert "rate limit" in json.loads(response.read())["error"]["message"]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors(status: int) -> None:
    with FakeLLMServer([server_error(status)]) as server:
        response = post(server, {"model": "m", "messages": MESSAGES})
        assert response.status == status
        response.read()


def test_slow_reply_outlasts_a_short_client_timeout_and_then_answers() -> None:
    with FakeLLMServer([Slow(1.0, "late"), Slow(0.05, "in time")]) as server:
        with pytest.raises(openai.APITimeoutError):
            sdk(server, timeout=0.2).chat.completions.create(model="m", messages=MESSAGES)
        reply = sdk(server).chat.completions.create(model="m", messages=MESSAGES)
        assert reply.choices[0].message.content == "in time"


def test_garbage_body_is_not_json() -> None:
    with FakeLLMServer([Garbage(b"<html>oops</html>")]) as server:
        response = post(server, {"model": "m", "messages": MESSAGES})
        assert response.status == 200
        with pytest.raises(ValueError):
            json.loads(response.read())


def test_truncated_body_cuts_the_connection() -> None:
    with FakeLLMServer([Truncated("never complete")]) as server:
        response = post(server, {"model": "m", "messages": MESSAGES})
        with pytest.raises(http.client.IncompleteRead):
            response.read()


def test_models_route_unknown_route_bad_json_and_exhausted_script() -> None:
    with FakeLLMServer(["only one"], models=("a", "b")) as server:
        assert [m.id for m in sdk(server).models.list()] == ["a", "b"]
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/v1/nothing")
        assert conn.getresponse().status == 404
        bad = post(server, b"{not json")
        assert bad.status == 400
        bad.read()
        assert post(server, {"model": "m", "messages": MESSAGES}).status == 200
        exhausted = post(server, {"model": "m", "messages": MESSAGES})
        assert exhausted.status == 400
        assert "script exhausted" in json.loads(exhausted.read())["error"]["message"]
        assert server.paths[:2] == ["GET /v1/models", "GET /v1/nothing"]


def test_callable_script_sees_each_request() -> None:
    seen = []

    def script(request: dict) -> Reply:
        seen.append(request["messages"][-1]["content"])
        return Reply(content=f"echo {len(seen)}")

    with FakeLLMServer(script) as server:
        client = sdk(server)
        texts = [client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"q{i}"}]).choices[0].message.content for i in range(3)]
    assert texts == ["echo 1", "echo 2", "echo 3"]
    assert seen == ["q0", "q1", "q2"]


def test_requests_are_served_concurrently() -> None:
    """Four requests must be inside the server at once to pass the barrier; a serial server cannot."""
    barrier = threading.Barrier(4, timeout=10)

    def script(request: dict) -> str | HTTPFault:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return HTTPFault(500, message="not concurrent")
        return "together"

    with FakeLLMServer(script) as server:
        results: list[str] = []

        def ask() -> None:
            reply = sdk(server, timeout=15).chat.completions.create(model="m", messages=MESSAGES)
            results.append(reply.choices[0].message.content)

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == ["together"] * 4
    assert len(server.requests) == 4


def test_close_wakes_slow_handlers_and_frees_the_port() -> None:
    server = FakeLLMServer([Slow(60, "never sent")])
    port = server.port
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            sdk(server, timeout=120).chat.completions.create(model="m", messages=MESSAGES)
        except Exception as exc:  # the cut connection is the expected outcome
            errors.append(exc)

    caller = threading.Thread(target=ask)
    caller.start()
    while not server.requests:
        threading.Event().wait(0.01)
    server.close()
    caller.join(timeout=10)
    assert not caller.is_alive()
    assert errors and isinstance(errors[0], openai.APIConnectionError)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    assert not [t for t in threading.enumerate() if t.name == "fake-llm"]
    server.close()  # idempotent


@pytest.mark.parametrize("fault, status, code", [
    (unauthorized(), 401, "invalid_api_key"), (forbidden(), 403, "forbidden"),
    (model_not_found("m"), 404, "model_not_found"), (model_not_found("m", status=400), 400, "model_not_found"),
])
def test_setup_faults_answer_with_an_openai_shaped_error(fault: HTTPFault, status: int, code: str) -> None:
    with FakeLLMServer([fault]) as server:
        response = post(server, {"model": "m", "messages": MESSAGES})
        error = json.loads(response.read())["error"]
    assert (response.status, error["code"]) == (status, code)


def test_reported_model_per_reply_and_per_server() -> None:
    with FakeLLMServer(["plain", Reply("other", model="m-other")], report_model="m-2026") as server:
        first = sdk(server).chat.completions.create(model="m", messages=MESSAGES)
        second = sdk(server).chat.completions.create(model="m", messages=MESSAGES)
    assert (first.model, second.model) == ("m-2026", "m-other")


def test_die_cuts_everything_and_revive_listens_again_on_the_same_port() -> None:
    with FakeLLMServer([Slow(60, "never"), Die(), "back"]) as server:
        port = server.port
        errors: list[BaseException] = []

        def ask() -> None:
            try:
                sdk(server, timeout=120).chat.completions.create(model="m", messages=MESSAGES)
            except Exception as exc:
                errors.append(exc)

        slow = threading.Thread(target=ask)
        slow.start()
        while not server.requests:
            threading.Event().wait(0.01)
        with pytest.raises(openai.APIConnectionError):
            sdk(server).chat.completions.create(model="m", messages=MESSAGES)
        slow.join(timeout=10)
        assert not slow.is_alive() and isinstance(errors[0], openai.APIConnectionError)
        assert not server.alive
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        server.revive()
        assert server.port == port and server.alive
        assert sdk(server).chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content == "back"
