"""LLMClient against the real fake server: model choice, retries and backoff, errors, usage and cost."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

from evolve.llm import (
    LLMCancelled,
    LLMClient,
    LLMError,
    LLMRequestError,
    LLMRunFailure,
    ModelSpec,
    RetriesExhausted,
    client_from_config,
)
from evolve.testing import FakeLLMServer, Garbage, HTTPFault, Slow, Truncated, rate_limited, server_error
from evolve.usage import Usage

MESSAGES = [{"role": "user", "content": "improve this program please"}]


def client(server: FakeLLMServer, **kw) -> LLMClient:
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("timeout_s", 5.0)
    models = kw.pop("models", [ModelSpec("fake-model", 1.0, 2.0, 8.0)])
    return LLMClient(server.base_url, models, **kw)


def test_completion_text_tokens_and_cost() -> None:
    with FakeLLMServer(["use a smaller embedding"]) as server, client(server) as llm:
        c = llm.complete(MESSAGES, random.Random(0))
    assert (c.text, c.usage.model, c.cached, c.attempts) == ("use a smaller embedding", "fake-model", False, 1)
    assert (c.usage.prompt_tokens, c.usage.completion_tokens) == (4, 4)
    assert c.usage.cost_usd == pytest.approx((4 * 2.0 + 4 * 8.0) / 1e6)
    assert c.finish_reason == "stop" and c.latency_s > 0
    totals = llm.totals
    assert (totals.requests, totals.retries) == (1, 0)
    assert totals.spent == Usage(4, 4, c.usage.cost_usd)  # run-wide: no model named


def test_defaults_and_params_reach_the_server() -> None:
    with FakeLLMServer(["a", "b"]) as server, client(server, temperature=0.3, max_tokens=77) as llm:
        llm.complete(MESSAGES, random.Random(1))
        llm.complete(MESSAGES, random.Random(1), temperature=0.9, stop=["###"])
        first, second = server.requests
    assert (first["temperature"], first["max_tokens"], first["model"]) == (0.3, 77, "fake-model")
    assert isinstance(first["seed"], int)
    assert (second["temperature"], second["stop"]) == (0.9, ["###"])


def test_send_seed_false_keeps_the_seed_out_of_the_request() -> None:
    with FakeLLMServer(["a"]) as server, client(server, send_seed=False) as llm:
        llm.complete(MESSAGES, random.Random(1))
    assert "seed" not in server.requests[0]


def test_model_choice_follows_weights_and_the_callers_rng() -> None:
    models = [ModelSpec("big", 3.0), ModelSpec("small", 1.0), ModelSpec("off", 0.0)]
    with FakeLLMServer(lambda request: "ok") as server, client(server, models=models) as llm:
        picks = Counter(llm.pick_model(random.Random(seed)).name for seed in range(400))
        assert picks["off"] == 0
        assert 0.65 < picks["big"] / 400 < 0.85
        chosen = [llm.complete(MESSAGES, random.Random(7)).usage.model for _ in range(3)]
        assert len(set(chosen)) == 1


def test_complete_draws_exactly_two_values_from_the_callers_rng() -> None:
    """Cache hits, retries and failures must not shift the caller's random stream."""
    with FakeLLMServer([server_error(), "ok"]) as server, client(server) as llm:
        rng = random.Random(5)
        llm.complete(MESSAGES, rng)
    twin = random.Random(5)
    twin.random()
    twin.getrandbits(31)
    assert rng.random() == twin.random()


def test_rate_limit_then_success_honours_retry_after() -> None:
    with FakeLLMServer([rate_limited(0.3), "fine"]) as server, client(server) as llm:
        c = llm.complete(MESSAGES, random.Random(0))
        gap = server.request_times[1] - server.request_times[0]
    assert c.text == "fine" and c.attempts == 2
    assert gap >= 0.3
    assert llm.totals.retries == 1


def test_server_errors_exhaust_retries_with_a_one_line_error() -> None:
    with FakeLLMServer([server_error(500)] * 10) as server, client(server, retries=3) as llm:
        with pytest.raises(RetriesExhausted) as info:
            llm.complete(MESSAGES, random.Random(0))
        assert len(server.requests) == 4
    message = str(info.value)
    assert "\n" not in message
    assert "failed after 4 attempts" in message and "HTTP 500" in message
    assert info.value.cause == "5xx" and server.base_url not in message  # replayable: no port in it
    assert llm.totals.retries == 3 and llm.totals.requests == 0


def test_backoff_grows_exponentially() -> None:
    """Equal jitter: the wait before retry k is at least backoff * 2**k / 2."""
    with FakeLLMServer([server_error(503)] * 3 + ["done"]) as server, client(server, backoff_s=0.08, retries=3) as llm:
        assert llm.complete(MESSAGES, random.Random(0)).attempts == 4
        t = server.request_times
    gaps = [b - a for a, b in zip(t, t[1:])]
    assert gaps[0] >= 0.04 and gaps[1] >= 0.08 and gaps[2] >= 0.16


def test_backoff_is_capped() -> None:
    with FakeLLMServer([server_error()] * 2 + ["done"]) as server, client(server, backoff_s=5.0, backoff_max_s=0.05) as llm:
        start = time.monotonic()
        llm.complete(MESSAGES, random.Random(0))
        assert time.monotonic() - start < 4.0  # uncapped, the second wait alone would be >= 5 s


@pytest.mark.parametrize("fault", [Slow(2.0, "late"), Garbage(), Garbage(b'{"unexpected": true}'), Garbage(b"plain text", "text/plain"), Truncated()],
                         ids=["slow-timeout", "not-json", "json-not-a-completion", "text-plain", "truncated"])
def test_transient_faults_are_retried(fault: object) -> None:
    with FakeLLMServer([fault, "recovered"]) as server, client(server, timeout_s=0.5) as llm:
        c = llm.complete(MESSAGES, random.Random(0))
        assert (c.text, c.attempts) == ("recovered", 2)
        assert len(server.requests) == 2


def test_timeout_cause_is_named_when_retries_run_out() -> None:
    with FakeLLMServer([Slow(2.0)] * 2) as server, client(server, timeout_s=0.3, retries=1) as llm:
        with pytest.raises(LLMError, match=r"failed after 2 attempts: timed out after 0.3s"):
            llm.complete(MESSAGES, random.Random(0))


def test_a_rejected_request_is_not_retried_and_the_client_goes_on() -> None:
    with FakeLLMServer([HTTPFault(400, message="context length exceeded"), "fine"]) as server, client(server) as llm:
        with pytest.raises(LLMRequestError, match="HTTP 400: context length exceeded") as info:
            llm.complete(MESSAGES, random.Random(0))
        assert not isinstance(info.value, LLMRunFailure)
        assert llm.complete(MESSAGES, random.Random(1)).text == "fine"
        assert len(server.requests) == 2


def test_tool_calls_pass_through_both_ways() -> None:
    tools = [{"type": "function", "function": {"name": "run_tests", "parameters": {"type": "object", "properties": {}}}}]
    reply = {"content": "", "tool_calls": [{"id": "call_1", "name": "run_tests", "arguments": {"fast": True}}]}
    with FakeLLMServer([reply]) as server, client(server) as llm:
        c = llm.complete(MESSAGES, random.Random(0), tools=tools, tool_choice="auto")
        assert server.requests[0]["tools"] == tools and server.requests[0]["tool_choice"] == "auto"
    assert c.finish_reason == "tool_calls"
    assert c.tool_calls == [{"id": "call_1", "type": "function", "function": {"name": "run_tests", "arguments": '{"fast": true}'}}]
    assert c.as_message() == {"role": "assistant", "content": "", "tool_calls": c.tool_calls}


def test_concurrency_is_bounded() -> None:
    lock, inside, peak = threading.Lock(), [0], [0]

    def script(request: dict) -> str:
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        time.sleep(0.05)
        with lock:
            inside[0] -= 1
        return "ok"

    with FakeLLMServer(script) as server, client(server, max_concurrency=2) as llm:
        threads = [threading.Thread(target=llm.complete, args=(MESSAGES, random.Random(i))) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(server.requests) == 6
    assert 1 <= peak[0] <= 2
    assert llm.totals.requests == 6


def test_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVOLVE_TEST_KEY", "sk-secret-123")
    with FakeLLMServer(["a", "b"]) as server:
        with client(server, api_key_env="EVOLVE_TEST_KEY") as llm:
            llm.complete(MESSAGES, random.Random(0))
        monkeypatch.delenv("EVOLVE_TEST_KEY")
        with client(server, api_key_env="EVOLVE_TEST_KEY") as llm:  # loopback: a dummy key is fine
            llm.complete(MESSAGES, random.Random(1))
        auth = [h["authorization"] for h in server.request_headers]
    assert auth[0] == "Bearer sk-secret-123"
    assert auth[1].startswith("Bearer ") and "sk-secret" not in auth[1]


def test_missing_key_for_a_remote_endpoint_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVOLVE_TEST_KEY", raising=False)
    with pytest.raises(LLMError, match="environment variable EVOLVE_TEST_KEY is not set"):
        LLMClient("https://api.example.com/v1", [ModelSpec("m")], api_key_env="EVOLVE_TEST_KEY")


def test_bad_model_pools_are_rejected() -> None:
    with pytest.raises(LLMError, match="no models"):
        LLMClient("http://127.0.0.1:1/v1", [])
    with pytest.raises(LLMError, match="weights"):
        LLMClient("http://127.0.0.1:1/v1", [ModelSpec("a", 0.0)])


def test_check_reachable() -> None:
    server = FakeLLMServer()
    with client(server) as llm:
        llm.check_reachable()
        assert server.paths == ["GET /v1/models"]
        server.close()
        with pytest.raises(LLMError) as info:
            llm.check_reachable()
    assert str(info.value) == f"no LLM endpoint reachable at {server.base_url}: connection refused"


def test_client_from_config_section() -> None:
    class Model:
        name, weight, price_in, price_out = "m1", 2.0, 1.0, 3.0

    class Section:
        provider, base_url, api_key_env, local_model = "openai", None, None, None
        models = [Model()]
        temperature, max_tokens, timeout_s, retries = 0.2, 99, 5.0, 1

    with FakeLLMServer(["hi"]) as server:
        with pytest.raises(LLMError, match="no base_url"):
            client_from_config(Section())
        with client_from_config(Section(), base_url=server.base_url) as llm:
            c = llm.complete(MESSAGES, random.Random(0))
    assert (c.usage.model, llm.max_tokens, llm.retries) == ("m1", 99, 1)
    assert c.usage.cost_usd == pytest.approx((4 * 1.0 + 1 * 3.0) / 1e6)


def _ask_in_threads(llm: LLMClient, n: int) -> tuple[list[threading.Thread], list[BaseException]]:
    errors: list[BaseException] = []

    def ask(seed: int) -> None:
        try:
            llm.complete(MESSAGES, random.Random(seed))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads, errors


def test_cancel_abandons_requests_in_flight_and_refuses_new_ones(tmp_path) -> None:
    """Three requests wait on a server that answers after 60 s (a fourth waits for a slot): cancel()
    releases all four, none is sent afterwards, and the late answers never reach the cache."""
    with FakeLLMServer(lambda request: Slow(60, "late")) as server, \
            client(server, timeout_s=120, max_concurrency=3, cache_dir=tmp_path) as llm:
        threads, errors = _ask_in_threads(llm, 4)
        while len(server.requests) < 3:
            time.sleep(0.01)
        llm.cancel()
        for t in threads:
            t.join(timeout=20)  # far below the 60 s answer: only the cancel can release them
        assert not any(t.is_alive() for t in threads)
        with pytest.raises(LLMCancelled):
            llm.complete(MESSAGES, random.Random(9))
        assert len(server.requests) == 3
    assert len(errors) == 4 and all(isinstance(e, LLMCancelled) for e in errors)
    assert llm.cancelled and not list(tmp_path.rglob("*.json"))


def test_cancel_ends_backoff_waits() -> None:
    with FakeLLMServer([server_error()] * 5) as server, client(server, backoff_s=60, backoff_max_s=60) as llm:
        threads, errors = _ask_in_threads(llm, 1)
        while len(server.requests) < 1:
            time.sleep(0.01)
        llm.cancel()
        threads[0].join(timeout=20)  # the backoff wait alone would be >= 30 s
        assert not threads[0].is_alive()
        assert len(server.requests) == 1
    assert isinstance(errors[0], LLMCancelled)


def test_an_answer_that_lands_before_cancel_is_cached_whole(tmp_path) -> None:
    with FakeLLMServer(["kept"]) as server, client(server, cache_dir=tmp_path) as llm:
        assert llm.complete(MESSAGES, random.Random(0)).text == "kept"
        llm.cancel()
    with LLMClient("http://127.0.0.1:9/v1", [ModelSpec("fake-model", 1.0, 2.0, 8.0)], cache_dir=tmp_path, replay=True) as replay:
        assert replay.complete(MESSAGES, random.Random(0)).text == "kept"
    assert not list(tmp_path.rglob("*.tmp"))
