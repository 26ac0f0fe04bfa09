"""Every fault kind, over real HTTP against the fake server: whose failure it is and how it is counted."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest

from evolve.llm import (
    EndpointFailing,
    EndpointLost,
    EndpointRefused,
    LLMClient,
    LLMRequestError,
    LLMRunFailure,
    ModelSpec,
    RetriesExhausted,
)
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

MESSAGES = [{"role": "user", "content": "improve this program please"}]


class Events:
    """Collects a client's events (what the run log would get)."""

    def __init__(self) -> None:
        self.lock, self.items = threading.Lock(), []

    def __call__(self, event: str, **fields: Any) -> None:
        with self.lock:
            self.items.append({"event": event, **fields})

    def named(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.items if e["event"] == name]


def client(server: FakeLLMServer, events: Events | None = None, **kw: Any) -> LLMClient:
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("timeout_s", 5.0)
    return LLMClient(server.base_url, [ModelSpec("fake-model")], on_event=events, **kw)


@pytest.mark.parametrize("fault, says", [
    (unauthorized(), "refused the API key (HTTP 401: Incorrect API key provided)"),
    (forbidden(), "refused the API key (HTTP 403"),
    (model_not_found("fake-model"), "does not serve model 'fake-model'"),
    (model_not_found("fake-model", status=400), "does not serve model 'fake-model'"),
    (HTTPFault(404, message="no route"), "(wrong model name or base_url?): HTTP 404: no route"),
    (HTTPFault(429, message="You exceeded your current quota", code="insufficient_quota"), "quota exhausted"),
    (HTTPFault(402, message="payment required"), "refused the request to 'fake-model' (HTTP 402"),
], ids=["401", "403", "404-model", "400-model-not-found", "404-route", "429-quota", "402"])
def test_setup_failures_stop_at_once_without_retries(fault: HTTPFault, says: str) -> None:
    events = Events()
    with FakeLLMServer([fault, "never asked"]) as server, client(server, events, retries=4) as llm:
        with pytest.raises(EndpointRefused) as info:
            llm.complete(MESSAGES, random.Random(0))
        with pytest.raises(EndpointRefused) as again:  # every later request is refused without a call
            llm.complete(MESSAGES, random.Random(1))
        assert len(server.requests) == 1
    message = str(info.value)
    assert says in message and "\n" not in message and str(again.value) == message
    assert isinstance(info.value, LLMRunFailure)
    assert not events.named("llm.retry")
    assert [e["error"] for e in events.named("llm.failed")] == ["refused"]


def test_a_setup_failure_stops_the_other_threads_too() -> None:
    """Two requests wait in a slow server while a third gets 401: all three end with the run failure."""
    gate = threading.Event()

    def script(request: dict) -> Any:
        if request["messages"][-1]["content"] == "key":
            gate.wait(10)
            return unauthorized()
        gate.set()
        return Slow(60, "late")

    with FakeLLMServer(script) as server, client(server, timeout_s=120) as llm:
        errors: list[BaseException] = []

        def ask(text: str, seed: int) -> None:
            try:
                llm.complete([{"role": "user", "content": text}], random.Random(seed))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=ask, args=(t, i)) for i, t in enumerate(["slow", "slow", "key"])]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)  # a thread still waiting here would wait out the 60 s answer
        assert not any(t.is_alive() for t in threads)
    assert len(errors) == 3 and all(isinstance(e, EndpointRefused) for e in errors)


def test_a_request_rejection_and_exhausted_retries_belong_to_the_request() -> None:
    script = [HTTPFault(400, message="context length exceeded"), server_error(), server_error(), "fine"]
    with FakeLLMServer(script) as server, client(server, retries=1) as llm:
        with pytest.raises(LLMRequestError) as rejected:
            llm.complete(MESSAGES, random.Random(0))
        with pytest.raises(RetriesExhausted) as exhausted:
            llm.complete(MESSAGES, random.Random(1))
        assert llm.complete(MESSAGES, random.Random(2)).text == "fine"
    for exc in (rejected.value, exhausted.value):
        assert not isinstance(exc, LLMRunFailure)
    assert exhausted.value.cause == "5xx"


@pytest.mark.parametrize("fault, kind", [
    (rate_limited(0.0), "429"),
    (server_error(503), "5xx"),
    (HTTPFault(408, message="request timeout"), "408/409"),
    (Slow(3.0), "timeout"),
    (Garbage(), "bad body"),
    (Garbage(b'{"unexpected": true}'), "bad body"),
    (Truncated(), "bad body"),
], ids=["429", "503", "408", "timeout", "not-json", "not-a-completion", "truncated"])
def test_transient_faults_are_retried_and_counted_by_kind(fault: object, kind: str) -> None:
    events = Events()
    with FakeLLMServer([fault, "recovered"]) as server, client(server, events, timeout_s=0.5) as llm:
        assert llm.complete(MESSAGES, random.Random(0)).text == "recovered"
    [retry] = events.named("llm.retry")
    assert retry["cause"] == kind and retry["attempt"] == 1 and retry["wait_s"] >= 0
    [done] = events.named("llm.request")
    assert done["attempts"] == 2 and not done["cached"]


def test_a_dead_server_is_a_lost_endpoint_after_a_few_attempts() -> None:
    """The server dies mid-run: the request in flight and the next ones end as EndpointLost, promptly
    (3 refused attempts, not 5 retries per request), and it works again once the endpoint is back."""
    events = Events()
    with FakeLLMServer(["before", Die(), "after"]) as server:
        with client(server, events, retries=10, lost_after=3) as llm:
            assert llm.complete(MESSAGES, random.Random(0)).text == "before"
            with pytest.raises(EndpointLost) as info:
                llm.complete(MESSAGES, random.Random(1))
            with pytest.raises(EndpointLost):
                llm.complete(MESSAGES, random.Random(2))
            assert len(server.requests) == 2
        assert not server.alive
        server.revive()
        with client(server) as fresh:  # a resumed run gets a fresh client
            assert fresh.complete(MESSAGES, random.Random(3)).text == "after"
    message = str(info.value)
    assert "lost: 3 attempts in a row got no answer" in message and "\n" not in message
    assert [e["cause"] for e in events.named("llm.retry")] == ["connection", "connection"]
    assert len(events.named("llm.endpoint_lost")) == 1


def test_timeouts_across_threads_make_the_endpoint_lost() -> None:
    """Three requests in three threads each time out once: the streak is shared, the endpoint lost."""
    with FakeLLMServer(lambda request: Slow(60)) as server, client(server, timeout_s=0.3, retries=10, lost_after=3) as llm:
        errors: list[BaseException] = []

        def ask(seed: int) -> None:
            try:
                llm.complete(MESSAGES, random.Random(seed))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
        assert len(server.requests) <= 5  # three attempts lose it; no thread retries ten times
    assert len(errors) == 3 and all(isinstance(e, EndpointLost) for e in errors)
    assert any("timed out after 0.3s" in str(e) for e in errors)


def test_any_answer_breaks_the_silence_streak() -> None:
    """A server that answers at all (even 500) is not lost: timeouts must be consecutive."""
    script = [Slow(3.0), Slow(3.0), server_error(), Slow(3.0), Slow(3.0), "made it"]
    with FakeLLMServer(script) as server, client(server, timeout_s=0.3, retries=6, lost_after=3) as llm:
        c = llm.complete(MESSAGES, random.Random(0))
    assert (c.text, c.attempts) == ("made it", 6)


def test_the_model_the_server_reports_is_what_a_completion_carries() -> None:
    events = Events()
    with FakeLLMServer(["a", Reply("b"), Reply("c", model="other-model")], report_model="fake-model-2026") as server, \
            client(server, events) as llm:
        first, second, third = (llm.complete(MESSAGES, random.Random(i)) for i in range(3))
    assert (first.usage.model, second.usage.model, third.usage.model) == ("fake-model-2026", "fake-model-2026", "other-model")
    mismatches = events.named("llm.model_mismatch")
    assert [(e["requested"], e["reported"]) for e in mismatches] == [("fake-model", "fake-model-2026"),
                                                                    ("fake-model", "other-model")]
    assert [e["reported"] for e in events.named("llm.request")] == ["fake-model-2026", "fake-model-2026", "other-model"]


def test_replay_is_exact_with_faults(tmp_path: Path) -> None:
    """A request that failed live fails the same way, with the same message, in the replay."""
    script = [server_error(), server_error(), HTTPFault(400, message="too long"), "third answer"]
    outcomes = []
    with FakeLLMServer(script) as server, client(server, retries=1, cache_dir=tmp_path) as llm:
        rng = random.Random(4)
        for _ in range(3):
            try:
                outcomes.append(llm.complete(MESSAGES, rng).text)
            except (RetriesExhausted, LLMRequestError) as exc:
                outcomes.append(f"{type(exc).__name__}: {exc}")
    events = Events()
    replayed = []
    with LLMClient("http://127.0.0.1:9/v1", [ModelSpec("fake-model")], cache_dir=tmp_path, replay=True,
                   on_event=events) as replay:
        rng = random.Random(4)
        for _ in range(3):
            try:
                replayed.append(replay.complete(MESSAGES, rng).text)
            except (RetriesExhausted, LLMRequestError) as exc:
                replayed.append(f"{type(exc).__name__}: {exc}")
    assert replayed == outcomes
    assert outcomes[0].startswith("RetriesExhausted: ") and outcomes[1].startswith("LLMRequestError: ")
    assert [e["error"] for e in events.named("llm.failed")] == ["retries exhausted", "request rejected"]


def test_a_live_run_asks_again_after_a_recorded_failure(tmp_path: Path) -> None:
    """A transient failure in the cache is for replays; a live (resumed) run retries the request."""
    with FakeLLMServer([server_error(), "now it works"]) as server:
        with client(server, retries=0, cache_dir=tmp_path) as llm, pytest.raises(RetriesExhausted):
            llm.complete(MESSAGES, random.Random(4))
        with client(server, retries=0, cache_dir=tmp_path) as llm:
            assert llm.complete(MESSAGES, random.Random(4)).text == "now it works"
    with LLMClient("http://127.0.0.1:9/v1", [ModelSpec("fake-model")], cache_dir=tmp_path, replay=True) as replay:
        assert replay.complete(MESSAGES, random.Random(4)).text == "now it works"


def test_run_failures_are_not_cached(tmp_path: Path) -> None:
    with FakeLLMServer([unauthorized()]) as server, client(server, cache_dir=tmp_path) as llm:
        with pytest.raises(EndpointRefused):
            llm.complete(MESSAGES, random.Random(4))
    assert not list(tmp_path.rglob("*.json"))


def test_requests_that_keep_exhausting_their_retries_make_the_endpoint_failing() -> None:
    """A server that answers only 500s is alive, but nothing can succeed: after 3 requests in a row
    exhausted their retries the run fails instead of rejecting every child forever."""
    with FakeLLMServer(lambda request: server_error(500)) as server, client(server, retries=1, failing_after=3) as llm:
        for _ in range(2):
            with pytest.raises(RetriesExhausted):
                llm.complete(MESSAGES, random.Random(0))
        with pytest.raises(EndpointFailing) as info:
            llm.complete(MESSAGES, random.Random(0))
        with pytest.raises(EndpointFailing):
            llm.complete(MESSAGES, random.Random(0))
        assert len(server.requests) == 6
    assert "failing: 3 requests in a row failed after all retries (last: LLM request to fake-model" in str(info.value)


def test_a_success_restarts_the_failing_count() -> None:
    script = [server_error(), server_error(), "ok", server_error(), server_error(), "ok"]
    with FakeLLMServer(script) as server, client(server, retries=0, failing_after=3) as llm:
        outcomes = []
        for i in range(6):
            try:
                outcomes.append(llm.complete(MESSAGES, random.Random(i)).text)
            except RetriesExhausted:
                outcomes.append("exhausted")
    assert outcomes == ["exhausted", "exhausted", "ok", "exhausted", "exhausted", "ok"]  # never 3 in a row
