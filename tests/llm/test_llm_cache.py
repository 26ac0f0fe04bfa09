"""The response cache: hits, misses, exact replay without the endpoint, concurrent writers."""

from __future__ import annotations

import json
import random
import re
import threading
from pathlib import Path

import pytest

from evolve.llm import LLMClient, LLMError, ModelSpec, ReplayMiss, ResponseCache, request_key
from evolve.testing import FakeLLMServer

MESSAGES = [{"role": "user", "content": "shrink the model"}]
MODELS = [ModelSpec("a", 1.0, 1.0, 1.0), ModelSpec("b", 1.0, 10.0, 10.0)]


def client(url: str, cache: Path, **kw) -> LLMClient:
    return LLMClient(url, MODELS, cache_dir=cache, backoff_s=0.01, **kw)


def test_same_rng_state_hits_the_cache_and_reports_the_same_cost(tmp_path: Path) -> None:
    with FakeLLMServer(["first answer", "second answer"]) as server, client(server.base_url, tmp_path) as llm:
        live = llm.complete(MESSAGES, random.Random(3))
        again = llm.complete(MESSAGES, random.Random(3))
        other = llm.complete(MESSAGES, random.Random(4))
        assert len(server.requests) == 2
    assert (live.cached, again.cached, other.cached) == (False, True, False)
    assert again.text == live.text == "first answer" and other.text == "second answer"
    assert again.usage == live.usage
    assert llm.totals.cache_hits == 1 and llm.totals.requests == 3


def test_a_resumed_run_replays_without_the_server(tmp_path: Path) -> None:
    """Same RNG stream -> same model choices and seeds -> every answer comes from the cache."""
    with FakeLLMServer(lambda request: f"answer to seed {request['seed']}") as server, client(server.base_url, tmp_path) as llm:
        rng = random.Random(11)
        original = [llm.complete(MESSAGES, rng) for _ in range(5)]
    url = server.base_url  # closed now: nothing listens there
    with client(url, tmp_path, replay=True, api_key_env="EVOLVE_UNSET_KEY") as replay:
        replay.check_reachable()  # nothing to check in replay mode
        rng = random.Random(11)
        replayed = [replay.complete(MESSAGES, rng) for _ in range(5)]
        assert [(c.text, c.usage.model) for c in replayed] == [(c.text, c.usage.model) for c in original]
        assert all(c.cached for c in replayed)
        with pytest.raises(ReplayMiss) as info:
            replay.complete(MESSAGES, random.Random(999))
        with pytest.raises(ReplayMiss):  # a replay miss stops the run: every later request says so too
            replay.complete(MESSAGES, random.Random(11))
    message = str(info.value)
    assert message.startswith("replay: no cached answer for model ") and "'shrink the model'" in message
    assert re.search(r"request [0-9a-f]{12} ", message) and "\n" not in message


def test_replay_needs_a_cache_dir() -> None:
    with pytest.raises(LLMError, match="replay needs a cache_dir"):
        LLMClient("http://127.0.0.1:1/v1", MODELS, replay=True)


def test_the_key_covers_model_messages_and_params() -> None:
    base = request_key("a", MESSAGES, {"temperature": 0.7, "seed": 1})
    assert base == request_key("a", [dict(m) for m in MESSAGES], {"seed": 1, "temperature": 0.7})
    assert base != request_key("b", MESSAGES, {"temperature": 0.7, "seed": 1})
    assert base != request_key("a", MESSAGES + [{"role": "user", "content": "x"}], {"temperature": 0.7, "seed": 1})
    assert base != request_key("a", MESSAGES, {"temperature": 0.7, "seed": 2})
    assert base != request_key("a", MESSAGES, {"temperature": 0.7, "seed": 1, "tools": [{"type": "function"}]})


def test_tools_are_part_of_the_cached_request(tmp_path: Path) -> None:
    tool = [{"type": "function", "function": {"name": "t", "parameters": {}}}]
    with FakeLLMServer(["plain", "with tools"]) as server, client(server.base_url, tmp_path) as llm:
        assert llm.complete(MESSAGES, random.Random(1)).text == "plain"
        assert llm.complete(MESSAGES, random.Random(1), tools=tool).text == "with tools"


def test_entries_are_readable_json_and_corrupt_ones_are_misses(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    key = request_key("a", MESSAGES, {})
    cache.put(key, {"model": "a"}, {"text": "hello"})
    path = tmp_path / key[:2] / f"{key}.json"
    assert json.loads(path.read_text())["response"] == {"text": "hello"}
    assert cache.get(key) == {"text": "hello"} and len(cache) == 1
    path.write_text("{torn")
    assert cache.get(key) is None
    assert cache.get("0" * 64) is None


def test_concurrent_writers_never_leave_torn_or_temporary_files(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    keys = [request_key("a", MESSAGES, {"seed": i % 5}) for i in range(40)]
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            for _ in range(10):
                cache.put(keys[i], {"i": i}, {"text": "x" * 5000 + str(i % 5)})
                assert cache.get(keys[i]) is not None
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(cache) == 5
    assert not list(tmp_path.rglob("*.tmp"))
    for i, key in enumerate(keys):
        assert cache.get(key)["text"].endswith(str(i % 5))
