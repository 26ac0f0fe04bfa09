"""The run log: whole lines from many threads, torn lines survived, the end-of-run summary."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest

from evolve.llm import LLMClient, LLMRequestError, ModelSpec, RetriesExhausted
from evolve.runlog import LLMTally, RunLog, llm_summary, read_events
from evolve.testing import FakeLLMServer, Garbage, HTTPFault, Slow, rate_limited, server_error

MESSAGES = [{"role": "user", "content": "improve it"}]


def test_many_threads_write_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "run" / "run.log"
    with RunLog(path) as log:
        def burst(i: int) -> None:
            for j in range(200):
                log.write("evaluation", thread=i, n=j, text="x" * 500)

        threads = [threading.Thread(target=burst, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 1600
    events = [json.loads(line) for line in lines]  # every line parses: none interleaved
    assert all(e["event"] == "evaluation" and isinstance(e["t"], float) for e in events)
    for i in range(8):
        assert [e["n"] for e in events if e["thread"] == i] == list(range(200))


def test_a_torn_last_line_is_skipped_and_never_glued_to_the_next(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    with RunLog(path) as log:
        log.write("run.start", seed=1)
    with path.open("a") as f:
        f.write('{"t": 1.0, "event": "rejec')  # SIGKILL mid-write
    with RunLog(path) as log:
        log.write("run.resume")
    assert [e["event"] for e in read_events(path)] == ["run.start", "run.resume"]
    assert list(read_events(tmp_path / "missing.log")) == []


def test_writes_after_close_are_dropped(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "run.log")
    log.write("run.start")
    log.close()
    log.write("llm.request")  # a late event of an abandoned request: no error, nothing written
    assert [e["event"] for e in read_events(tmp_path / "run.log")] == ["run.start"]


def test_summary_line_counts_retries_by_kind_and_rejections_by_reason() -> None:
    events = ([{"event": "llm.request", "cached": False}] * 50 + [{"event": "llm.request", "cached": True}] * 3
              + [{"event": "llm.retry", "cause": c} for c in ["429"] * 5 + ["5xx"] * 6 + ["timeout"] * 4 + ["bad body"] * 5]
              + [{"event": "rejection", "kind": "unparseable"}] * 2 + [{"event": "rejection", "kind": "retries exhausted"}] * 2
              + [{"event": "llm.cancelled"}, {"event": "llm.failed", "error": "cancelled"}])
    assert LLMTally.from_events(events).summary() == (
        "LLM: 53 requests (3 from cache), 20 retries (429×5, 5xx×6, timeout×4, bad body×5); "
        "4 rejected (2 unparseable, 2 retries exhausted)")
    assert LLMTally().summary() == "LLM: 0 requests, 0 retries; 0 rejected"


def test_the_clients_events_reach_the_log_and_the_summary(tmp_path: Path) -> None:
    """Against the real fake server: each retry with its cause and wait, each failure, in the summary."""
    path = tmp_path / "run.log"
    script = [rate_limited(0.0), "one", server_error(), Garbage(), Slow(2.0), Slow(2.0), HTTPFault(400, message="too long")]
    with RunLog(path) as log, FakeLLMServer(script) as server, \
            LLMClient(server.base_url, [ModelSpec("m")], backoff_s=0.01, timeout_s=0.3, retries=1, on_event=log.write) as llm:
        rng = random.Random(0)
        assert llm.complete(MESSAGES, rng).text == "one"  # after a 429
        for expected in (RetriesExhausted, RetriesExhausted, LLMRequestError):  # 5xx+garbage, 2 timeouts, 400
            with pytest.raises(expected):
                llm.complete(MESSAGES, rng)
        log.write("rejection", kind="retries exhausted", reason="...")
    events = list(read_events(path))
    retries = [e for e in events if e["event"] == "llm.retry"]
    assert [r["cause"] for r in retries] == ["429", "5xx", "timeout"]
    assert all("wait_s" in r and r["model"] == "m" and len(r["key"]) == 12 for r in retries)
    failed = [e["error"] for e in events if e["event"] == "llm.failed"]
    assert failed == ["retries exhausted", "retries exhausted", "request rejected"]
    assert llm_summary(path) == ("LLM: 4 requests, 3 retries (429×1, 5xx×1, timeout×1); "
                                 "1 rejected (1 retries exhausted)")
