"""The run against a faulty world: kills before the seeds, dead and refusing endpoints, exact replay
with faults, complete spend, the run log, config changes on resume, Ctrl-C in a real process."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from evolve.archive import Archive
from evolve.config import parse_config
from evolve.run import EvolutionRun, RunError
from evolve.runlog import llm_summary, read_events
from evolve.testing import Die, FakeLLMServer, Slow, server_error, unauthorized
from test_run_llm import config, halfway

ROOT = Path(__file__).resolve().parents[1]


def sources(run: EvolutionRun) -> list[tuple[int, tuple[int, ...], str]]:
    with Archive.open(run.archive_dir) as archive:
        return [(c.id, tuple(c.parents), c.source) for c in archive.candidates()]


def flaky(request: dict[str, Any]) -> Any:
    """A deterministic model with faults: some replies unparseable, some requests never served.
    Keyed on the request itself, so a resumed or replayed run meets the same ones."""
    roll = int(hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:8], 16) % 5
    if roll == 0:
        return "I would not change a thing."  # unparseable: a rejection on a good reply
    if roll == 1:
        return server_error(503)  # every attempt: retries exhausted, the endpoint's fault
    return halfway(request)


def test_a_run_killed_before_its_seeds_were_filed_resumes(tmp_path: Path) -> None:
    """The archive exists with a state-only checkpoint and no candidate: resume evaluates the seeds."""
    data = config(tmp_path, "http://127.0.0.1:9/v1")
    del data["llm"]
    data["mutators"] = [{"name": "numeric"}]
    data["budget"] = {"max_evaluations": 4}
    EvolutionRun(parse_config(data)).archive.close()  # created, then "killed" before execute()
    run = EvolutionRun(parse_config(data), resume=True)
    outcome = run.execute()
    assert outcome.counters.evaluations == 4 and not outcome.interrupted
    assert [c[1] for c in sources(run)][0] == ()  # #0 is the seed


@pytest.mark.parametrize("fault, kind", [(unauthorized(), "refused the API key"), (Die(), "lost")],
                         ids=["revoked-key", "server-died"])
def test_an_endpoint_failure_stops_the_run_and_it_resumes_once_the_endpoint_is_back(
        tmp_path: Path, fault: Any, kind: str) -> None:
    answers: list[Any] = [fault]

    def script(request: dict[str, Any]) -> Any:
        return answers.pop() if answers and len(server.requests) > 3 else halfway(request)

    with FakeLLMServer(script) as server:
        data = config(tmp_path, server.base_url, budget={"max_evaluations": 10})
        data["llm"]["retries"] = 6
        first = EvolutionRun(parse_config(data))
        outcome = first.execute()
        assert outcome.failure is not None and kind in outcome.failure
        assert outcome.counters.rejected == 0  # the endpoint's failure is not the mutator's
        assert outcome.counters.evaluations < 10
        retries = [e for e in read_events(first.log.path) if e["event"] == "llm.retry"]
        assert len(retries) <= 2  # stopped at once (401) or after 3 silent attempts: not 7 per child
        server.revive()
        second = EvolutionRun(parse_config(data), resume=True)
        resumed = second.execute()
    assert resumed.failure is None and resumed.counters.evaluations == 10
    events = [e["event"] for e in read_events(first.log.path)]
    assert events.count("run.start") == 1 and events.count("run.resume") == 1 and events.count("run.stop") == 2


def test_an_agent_run_stops_on_an_endpoint_failure_instead_of_ending_sessions(tmp_path: Path) -> None:
    def script(request: dict[str, Any]) -> Any:
        return unauthorized() if len(server.requests) > 2 else "Let me think about it."

    with FakeLLMServer(script) as server:
        data = config(tmp_path, server.base_url, strategy={"name": "agent", "params": {"turns_per_iteration": 2}},
                      budget={"max_evaluations": 10})
        del data["mutators"]
        outcome = EvolutionRun(parse_config(data)).execute()
        assert len(server.requests) == 3  # no request after the 401
    assert outcome.failure is not None and "refused the API key (HTTP 401" in outcome.failure


def test_the_streak_counts_only_the_mutators_failures_and_restarts_on_resume(tmp_path: Path) -> None:
    import evolve.run as run_module

    with FakeLLMServer(lambda request: "no edit blocks here") as server:
        data = config(tmp_path, server.base_url, budget={"max_evaluations": 10})
        old = run_module.MAX_REJECTED_IN_A_ROW
        run_module.MAX_REJECTED_IN_A_ROW = 4
        try:
            first = EvolutionRun(parse_config(data)).execute()
            assert "4 mutations in a row were rejected" in first.stop_reason
            run = EvolutionRun(parse_config(data), resume=True)
            resumed = run.execute()
        finally:
            run_module.MAX_REJECTED_IN_A_ROW = old
    assert resumed.counters.rejected == 8  # the resumed run got its own 4 tries, not 0
    kinds = {e.get("kind") for e in read_events(run.log.path) if e["event"] == "rejection"}
    assert kinds == {"unparseable"}


def test_replay_with_faults_is_exact_and_spend_is_complete(tmp_path: Path) -> None:
    """Rejections of both kinds, then a replay without the server: same archive, same counters;
    show's totals are the run's, not the candidates' sum."""
    with FakeLLMServer(flaky) as server:
        data = config(tmp_path / "a", server.base_url, budget={"max_evaluations": 8})
        data["llm"]["retries"] = 1
        first = EvolutionRun(parse_config(data))
        live = first.execute()
    assert live.failure is None and live.counters.rejected > 0
    kinds = {e.get("kind") for e in read_events(first.log.path) if e["event"] == "rejection"}
    assert kinds == {"unparseable", "retries exhausted"}
    with Archive.open(first.archive_dir) as archive:
        summary = archive.summary()
    assert summary.spent == live.counters.spent
    assert summary.other_tokens > 0 and summary.rejected == live.counters.rejected
    replay_data = config(tmp_path / "b", server.base_url, budget={"max_evaluations": 8})
    replay_data["llm"].update(retries=1, replay=True)
    second = parse_config(replay_data)
    shutil.copytree(first.config.run_dir / "llm-cache", second.run_dir / "llm-cache")
    replayed_run = EvolutionRun(second)
    replayed = replayed_run.execute()
    assert replayed.failure is None
    assert sources(replayed_run) == sources(first)
    assert (replayed.counters.rejected, replayed.counters.tokens) == (live.counters.rejected, live.counters.tokens)
    summary_line = llm_summary(first.log.path)
    assert summary_line.startswith("LLM: ") and "retries (5xx×" in summary_line and "unparseable" in summary_line


def test_ctrl_c_mid_batch_then_resume_files_what_an_uninterrupted_run_files(tmp_path: Path) -> None:
    """Rejections shape later prompts (the history) and ride in the run state; a Ctrl-C (SIGINT to
    this process) while the 5th request is in flight cancels the batch, and the resumed run files
    the same candidates as a run that was never interrupted."""
    def fewer_retries(data: dict[str, Any]) -> dict[str, Any]:  # each exhausted request backs off ~1 s, not ~11 s
        data["llm"]["retries"] = 1
        return data

    with FakeLLMServer(flaky) as server:
        whole = EvolutionRun(parse_config(fewer_retries(config(tmp_path / "whole", server.base_url,
                                                               budget={"max_evaluations": 8}))))
        whole.execute()
    asked: list[int] = []

    def interrupting(request: dict[str, Any]) -> Any:
        asked.append(1)
        if len(asked) == 5:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does; the run's handler takes it
            time.sleep(0.5)
        return flaky(request)

    data = fewer_retries(config(tmp_path / "part", "http://127.0.0.1:9/v1", budget={"max_evaluations": 8}))
    with FakeLLMServer(interrupting) as server:
        data["llm"]["base_url"] = server.base_url
        first = EvolutionRun(parse_config(data))
        stopped = first.execute()
        assert stopped.interrupted and stopped.counters.evaluations < 8
        part = EvolutionRun(parse_config(data), resume=True)
        assert part.config_notes == []
        part.execute()
    assert sources(part) == sources(whole)


def test_resume_with_another_experiment_needs_force_and_then_remembers_it(tmp_path: Path) -> None:
    with FakeLLMServer(halfway) as server:
        data = config(tmp_path, server.base_url, budget={"max_evaluations": 3})
        EvolutionRun(parse_config(data)).execute()
        data["strategy"] = {"name": "random"}
        with pytest.raises(RunError) as info:
            EvolutionRun(parse_config(data), resume=True)
        assert "strategy.name: 'hillclimb' -> 'random'" in str(info.value) and "--force" in str(info.value)
        forced = EvolutionRun(parse_config(data), resume=True, force=True)
        forced.execute()
        again = EvolutionRun(parse_config(data), resume=True)  # compared with the last session now
        assert again.config_notes == []
        again.archive.close()


def cli_run(tmp_path: Path, base_url: str, strategy: dict[str, Any]) -> subprocess.Popen[str]:
    data = config(tmp_path, base_url, strategy=strategy, budget={"max_evaluations": 20})
    data["llm"].update(timeout_s=120, retries=4)
    if strategy["name"] == "agent":
        del data["mutators"]
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return subprocess.Popen([sys.executable, "-m", "evolve.cli", "run", str(path)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", [{"name": "hillclimb"}, {"name": "islands", "params": {"islands": 2}},
                                      {"name": "agent", "params": {"turns_per_iteration": 3}}],
                         ids=["hillclimb", "islands", "agent"])
def test_ctrl_c_stops_a_real_run_while_its_requests_hang(tmp_path: Path, strategy: dict[str, Any]) -> None:
    """SIGINT while every answer takes 300 s: the run exits 130 long before any answer, sends no
    request afterwards, archives nothing of the batch, and can be resumed."""
    with FakeLLMServer(lambda request: Slow(300, "too late")) as server:
        proc = cli_run(tmp_path, server.base_url, strategy)
        deadline = time.monotonic() + 120
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.requests, "the run never asked the LLM"
        time.sleep(0.3)
        sent = len(server.requests)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)  # a hang guard: an answer would take 300 s
        assert proc.returncode == 130, err
        assert len(server.requests) == sent
    with Archive.open(tmp_path / "runs" / "llm" / "archive") as archive:
        assert len(archive) == 1  # the seed; nothing half of the interrupted batch
    assert "Traceback" not in err
    assert "\nLLM: " in err  # the end-of-run line from the run log
