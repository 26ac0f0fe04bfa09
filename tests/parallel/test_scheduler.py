"""The steady-state pipeline on its own: bounds, draining, failures, against a real evaluator whose
evaluations sleep on daemon threads (the interface's contract, no run around it)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import pytest

from evolve.evaluation import EvalResult
from evolve.parallel.base import Evaluator
from evolve.parallel.scheduler import SteadyState


class SleepingEvaluator(Evaluator):
    """Evaluates ``"<seconds>"`` by sleeping that long on a daemon thread per submission."""

    def __init__(self, slots: int) -> None:
        self.slots, self.running, self.peak = slots, 0, 0
        self._lock = threading.Lock()

    def submit(self, source: str) -> "Future[EvalResult]":
        future: Future[EvalResult] = Future()
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)

        def work() -> None:
            time.sleep(float(source))
            with self._lock:
                self.running -= 1
            future.set_result(EvalResult(status="ok", metrics={"slept": float(source)}))

        threading.Thread(target=work, daemon=True).start()
        return future

    def close(self) -> None:
        pass


@dataclass
class Host:
    """A breeder with a budget of ``budget`` evaluations; mutations take ``latency`` seconds."""

    budget: int
    latency: float = 0.01
    sleeps: tuple[float, ...] = (0.02,)
    reject_every: int = 0
    fail_on: int = -1
    proposed: int = 0
    filed: list[int] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0
    stop_after: int | None = None

    def stop_reason(self) -> str | None:
        if len(self.filed) >= self.budget:
            return "budget"
        if self.stop_after is not None and len(self.filed) >= self.stop_after:
            return "target"
        return None

    def room(self) -> int:
        return self.budget - len(self.filed)

    def propose(self) -> int:
        self.proposed += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return self.proposed

    def mutate(self, job: int) -> Any:
        if job == self.fail_on:
            raise RuntimeError("the endpoint is gone")
        time.sleep(self.latency)
        return None if self.reject_every and job % self.reject_every == 0 else job

    def mutated(self, job: int, mutation: Any) -> str | None:
        if mutation is None:
            self.in_flight -= 1
            return None
        return str(self.sleeps[job % len(self.sleeps)])

    def evaluated(self, job: int, mutation: Any, result: EvalResult) -> None:
        self.in_flight -= 1
        self.filed.append(job)


def test_the_budget_bounds_children_in_flight_and_every_slot_is_used() -> None:
    host, evaluator = Host(budget=7, reject_every=3), SleepingEvaluator(slots=3)
    SteadyState(evaluator, mutations=8).run(host)
    assert len(host.filed) == 7 and host.peak_in_flight <= 7
    assert evaluator.peak == 3  # never more than the slots, and all of them used


def test_mutations_in_flight_plus_waiting_children_never_exceed_the_setting() -> None:
    """Evaluations are the bottleneck (0.3 s against 1 ms mutations): the strategy runs at most
    ``mutations`` children ahead of the evaluations."""
    host, evaluator = Host(budget=12, latency=0.001, sleeps=(0.3,)), SleepingEvaluator(slots=2)
    SteadyState(evaluator, mutations=3).run(host)
    assert len(host.filed) == 12 and host.peak_in_flight == 2 + 3


def test_once_a_stop_reason_is_set_nothing_starts_and_what_is_in_flight_is_filed() -> None:
    host = Host(budget=100, stop_after=2, sleeps=(0.05,))
    SteadyState(SleepingEvaluator(slots=2), mutations=4).run(host)
    assert 2 <= len(host.filed) == host.proposed < 100 and host.in_flight == 0


def test_a_failing_mutation_leaves_at_once_without_waiting_for_evaluations() -> None:
    """Job 3's mutation raises while jobs 1 and 2 are evaluated for 30 s: the error surfaces now."""
    host = Host(budget=10, sleeps=(30.0,), fail_on=3, latency=0.05)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="endpoint is gone"):
        SteadyState(SleepingEvaluator(slots=2), mutations=3).run(host)
    assert time.monotonic() - started < 20  # a hang guard: the evaluations take 30 s
    assert host.filed == []


class PairEvaluator(Evaluator):
    """Holds the first evaluation until the second is submitted, then ends both at once: the first
    with a result, the second with a failure of the evaluator itself (a cluster gone)."""

    slots = 2

    def __init__(self) -> None:
        self.first: Future[EvalResult] | None = None

    def submit(self, source: str) -> "Future[EvalResult]":
        future: Future[EvalResult] = Future()
        if self.first is None:
            self.first = future
            return future
        self.first.set_result(EvalResult(status="ok", metrics={}))
        future.set_exception(RuntimeError("the cluster is gone"))
        return future

    def close(self) -> None:
        pass


def test_an_evaluator_failure_still_files_the_results_that_ended_with_it() -> None:
    """Two evaluations end in the same wait, one of them with the evaluator's own error: the run
    stops with that error, and the other child's result is filed first, not dropped."""
    host = Host(budget=10)
    with pytest.raises(RuntimeError, match="cluster is gone"):
        SteadyState(PairEvaluator(), mutations=2).run(host)
    assert host.filed == [1]
