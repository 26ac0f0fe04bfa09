"""``parallel.mode``: the steady state (async) against a real loopback LLM with latency and a task
whose evaluations sleep, and batch mode's archive pinned to the semantics it had before async existed.

The async checks read the run log, which records the scheduler's decisions in order
(``child.start``, ``child.ready``/``child.rejected``, ``evaluation.start``, ``evaluation.end``): no wall-time thresholds.
"""

from __future__ import annotations

import hashlib
import json
import os
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
from evolve.run import EvolutionRun
from evolve.runlog import read_events
from evolve.testing import FakeLLMServer, Slow, unauthorized
from test_run_llm import config, halfway

ROOT = Path(__file__).resolve().parents[1]

#: A file task whose evaluation sleeps 0.05-0.35 s (by a hash of the source, so evaluations finish
#: out of order) and scores the toy's ``values`` line read as data.
SLEEPY_TASK = '''
import hashlib, math, re, time
from evolve.evaluation import EvalResult
from evolve.tasks import Objective, Task

TARGET = (3.0, -1.5, 0.25, 8.0)
VALUES = re.compile(r"^values = \\[([^\\]\\n]*)\\]$", re.MULTILINE)


class SleepyTask(Task):
    name = "sleepy"
    description = "the toy's vector, judged slowly"
    objectives = (Objective("error", "min"),)

    def evaluate(self, program, sandbox):
        text = program.read_text()
        time.sleep(0.05 + 0.3 * (int(hashlib.sha256(text.encode()).hexdigest()[:6], 16) % 101) / 100)
        found = VALUES.search(text)
        if not found:
            return EvalResult(status="error", error="no values line")
        values = [float(v) for v in found.group(1).split(",")]
        return EvalResult(status="ok", metrics={"error": sum((v - t) ** 2 for v, t in zip(values, TARGET))})


TASK = SleepyTask
'''


def sleepy_config(tmp_path: Path, base_url: str, **over: Any) -> dict[str, Any]:
    task = tmp_path / "sleepy.py"
    task.write_text(SLEEPY_TASK)
    data = config(tmp_path, base_url, task={"file": str(task)})
    data["parallel"] = {"evaluations": 2, "llm_requests": 3, "mode": "async"}
    data.update(over)
    return data


def slow_halfway(latency: float) -> Any:
    return lambda request: Slow(latency, halfway(request))


def replay_schedule(events: list[dict[str, Any]], slots: int, budget: int, filed_before: int) -> dict[str, int]:
    """Walk the scheduler's log; assert that no mutated child waits while a slot is free and that
    children in flight never exceed what the budget has left. Returns counts of what overlapped.

    The slot rule is checked before every event but the ends and starts of evaluations: evaluations
    that finish together are noticed together, then their slots are filled, before anything else
    (filing a result, proposing a child) may happen."""
    mutating: set[int] = set()
    waiting: set[int] = set()
    running: set[int] = set()
    filed = filed_before
    overlap = {"mutations_started_during_evaluations": 0, "max_running": 0}
    for event in events:
        kind, child = event["event"], event.get("child")
        if kind not in ("evaluation.start", "evaluation.end"):
            assert not (waiting and len(running) < slots), f"a slot idles while {waiting} wait (before {event})"
        if kind == "child.start":
            mutating.add(child)
            overlap["mutations_started_during_evaluations"] += bool(running)
        elif kind == "child.ready":
            mutating.remove(child)
            waiting.add(child)
        elif kind == "child.rejected":
            mutating.remove(child)
        elif kind == "evaluation.start":
            waiting.remove(child)
            running.add(child)
        elif kind == "evaluation.end":
            running.remove(child)
        elif kind == "child.filed":  # counted by the run ("evaluation": once the archive holds it)
            filed += 1
        assert filed + len(mutating) + len(waiting) + len(running) <= budget, f"budget overshot at {event}"
        overlap["max_running"] = max(overlap["max_running"], len(running))
    return overlap


def test_async_overlaps_llm_calls_with_evaluations_and_never_idles_a_slot(tmp_path: Path) -> None:
    with FakeLLMServer(slow_halfway(0.3)) as server:
        run = EvolutionRun(parse_config(sleepy_config(tmp_path, server.base_url,
                                                      budget={"max_evaluations": 13})))
        outcome = run.execute()
    assert outcome.counters.evaluations == 13 and outcome.stop_reason == "evaluation budget spent (13)"
    assert len(server.requests) == 12  # one per child: none started beyond the budget
    events = [e for e in read_events(run.log.path) if e["event"] in
              {"child.start", "child.ready", "child.rejected", "evaluation.start", "evaluation.end", "child.filed"}]
    overlap = replay_schedule(events, slots=2, budget=13, filed_before=1)  # the seed was filed first
    assert overlap["max_running"] == 2
    # LLM calls overlap evaluations: most children were asked for while others were evaluated.
    assert overlap["mutations_started_during_evaluations"] >= 6
    with Archive.open(run.archive_dir) as archive:
        cands = archive.candidates()
    assert [c.id for c in cands] == list(range(13))
    assert min(c.result.metrics["error"] for c in cands[1:]) < cands[0].result.metrics["error"] / 3


def test_async_never_overshoots_the_budget_with_rejections_and_a_wide_pipeline(tmp_path: Path) -> None:
    """Rejected children free their place; with 6 mutations in flight and 2 evaluations left, at
    most 2 children are ever in flight."""
    served = [0]

    def sometimes_unparseable(request: dict[str, Any]) -> Any:
        served[0] += 1
        return Slow(0.1, "no change today" if served[0] % 3 == 0 else halfway(request))

    with FakeLLMServer(sometimes_unparseable) as server:
        data = sleepy_config(tmp_path, server.base_url, budget={"max_evaluations": 9})
        data["parallel"] = {"evaluations": 2, "llm_requests": 6, "mode": "async"}
        run = EvolutionRun(parse_config(data))
        outcome = run.execute()
    assert outcome.counters.evaluations == 9 and outcome.counters.rejected >= 1
    events = [e for e in read_events(run.log.path) if e["event"] in
              {"child.start", "child.ready", "child.rejected", "evaluation.start", "evaluation.end", "child.filed"}]
    replay_schedule(events, slots=2, budget=9, filed_before=1)
    with Archive.open(run.archive_dir) as archive:
        assert len(archive) == 9


def test_an_llm_failure_in_async_stops_the_run(tmp_path: Path) -> None:
    """A revoked key mid-run (LLMRunFailure) stops the run (the CLI's exit code 3), as in batch."""
    served = [0]

    def revoked_after_three(request: dict[str, Any]) -> Any:
        served[0] += 1
        return halfway(request) if served[0] <= 3 else unauthorized()

    with FakeLLMServer(revoked_after_three) as server:
        run = EvolutionRun(parse_config(sleepy_config(tmp_path, server.base_url, budget={"max_evaluations": 20})))
        outcome = run.execute()
    assert outcome.failure is not None and "API key" in outcome.failure
    assert outcome.counters.evaluations <= 4


def test_ctrl_c_during_async_is_prompt_and_files_nothing_in_flight(tmp_path: Path) -> None:
    """SIGINT while evaluations run and the 5th answer would take 300 s: execute returns at once,
    interrupted; the archive holds only what was filed; resume completes the budget."""
    asked = [0]

    def interrupting(request: dict[str, Any]) -> Any:
        asked[0] += 1
        if asked[0] == 5:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does; the run's handler takes it
            return Slow(300, halfway(request))
        return Slow(0.2, halfway(request))

    with FakeLLMServer(interrupting) as server:
        data = sleepy_config(tmp_path, server.base_url, budget={"max_evaluations": 10})
        run = EvolutionRun(parse_config(data))
        started = time.monotonic()
        outcome = run.execute()
        took = time.monotonic() - started
        assert outcome.interrupted and took < 60  # a hang guard: the answer in flight takes 300 s
        with Archive.open(run.archive_dir) as archive:
            filed = len(archive)
        assert filed == outcome.counters.evaluations < 10
        resumed = EvolutionRun(parse_config(data), resume=True).execute()
    assert resumed.counters.evaluations == 10 and not resumed.interrupted


@pytest.mark.slow
def test_sigkill_mid_async_run_then_resume_completes_without_loss_or_duplicates(tmp_path: Path) -> None:
    with FakeLLMServer(slow_halfway(0.2)) as server:
        data = sleepy_config(tmp_path, server.base_url, budget={"max_evaluations": 14})
        path = tmp_path / "run.yaml"
        path.write_text(yaml.safe_dump(data))
        command = [sys.executable, "-m", "evolve.cli", "run", str(path)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        log = tmp_path / "runs" / "llm" / "run.log"
        deadline = time.monotonic() + 120
        while sum(e["event"] == "evaluation" for e in read_events(log)) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.kill()  # SIGKILL: no clean-up at all
        proc.wait(timeout=30)
        with Archive.open(tmp_path / "runs" / "llm" / "archive") as archive:
            before = archive.candidates()
            state = archive.state() or {}
        assert 5 <= len(before) < 14 and state["counters"]["evaluations"] == len(before)
        done = subprocess.run([*command, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    with Archive.open(tmp_path / "runs" / "llm" / "archive") as archive:
        after = archive.candidates()
        assert archive.state()["counters"]["evaluations"] == 14
    assert [c.id for c in after] == list(range(14))
    assert [(c.source, c.parents) for c in after[:len(before)]] == [(c.source, c.parents) for c in before]
    assert any(e["event"] == "run.resume" for e in read_events(log))


# --- batch mode: exactly the semantics it had before the steady state existed ---------------------
def archive_digest(run_dir: Path) -> str:
    with Archive.open(run_dir / "archive") as archive:
        rows = [[c.id, list(c.parents), c.mutator, c.source, c.result.status, c.result.metrics]
                for c in archive.candidates()]
        counters = (archive.state() or {})["counters"]
    rows.append([counters["evaluations"], counters["rejected"], counters["prompt_tokens"], counters["batches"]])
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]


def batch_runs(tmp_path: Path, base_url: str) -> list[str]:
    """Two batch runs: islands with numeric mutations, hill climbing with the LLM (3 children a batch)."""
    numeric = config(tmp_path / "numeric", base_url, strategy={"name": "islands", "params": {"islands": 2}},
                     mutators=[{"name": "numeric"}], llm=None, budget={"max_evaluations": 10})
    llm = config(tmp_path / "llm", base_url, budget={"max_evaluations": 10})
    numeric["parallel"] = llm["parallel"] = {"evaluations": 3, "llm_requests": 2}
    digests = []
    for data in (numeric, llm):
        run = EvolutionRun(parse_config(data))
        run.execute()
        digests.append(archive_digest(run.run_dir))
    return digests


#: Computed on main before ``parallel.mode`` existed (commit f930866), and twice since.
PINNED_BATCH = ["d71635d908eccadc", "8820881a8119aa43"]


def test_batch_mode_files_what_it_filed_before_async_existed(tmp_path: Path) -> None:
    with FakeLLMServer(halfway) as server:
        assert batch_runs(tmp_path, server.base_url) == PINNED_BATCH
