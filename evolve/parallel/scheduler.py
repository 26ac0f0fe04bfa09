"""The steady-state pipeline (``parallel.mode: async``): no slot waits for a batch.

In batch mode every evaluation slot idles while the LLM writes the batch's children and while the
batch's slowest evaluation runs. Here three stages run at once, each with its own bound:

- **mutating**: up to ``mutations`` children are being written (LLM calls, on ``mutations`` daemon
  threads that live as long as the run: starting a thread per child cost the scheduling thread
  ~9 ms a child in the P6 bench, the new thread's first GIL turn);
  a new child is proposed the moment one of these finishes or is handed on (``mutating + waiting``
  never exceeds ``mutations``, so the strategy never runs further ahead of its results than that);
- **waiting**: mutated children queue for a slot; one starts the moment a slot frees, *before* the
  finished result is filed (filing is an archive commit);
- **evaluating**: up to ``evaluator.slots`` evaluations run.

Every finished evaluation is handed to the host at once (the run files it with its state, written
behind by the archive's writer thread), so a SIGKILL loses at most what was in flight and the few
filings still being written. The host's budget is never overshot: no more children are
in flight than ``room()`` allows. Once ``stop_reason()`` is set nothing new starts; children in
flight are finished and filed (their mutations are paid for). Ctrl-C and an exception from a stage
leave at once: the wait is interruptible, threads are daemons and are abandoned, never joined
(the caller cancels the LLM client and closes the evaluator, see :mod:`evolve.stopping`).

What is reproducible: each child's proposal and RNG are drawn on the calling thread in proposal
order, and each finished child is filed with the run state. What is not: *which* results the
strategy has seen when it proposes depends on when evaluations and LLM answers finish, so two runs
with the same seed (and a resumed run against an uninterrupted one) propose different children
after the first few, and an ``llm.replay`` cache recorded by one run misses on the other. The run
log (``child.start``, ``child.ready`` or ``child.rejected``, ``evaluation.start``, ``evaluation.end``,
``child.filed``) records the order; the run's ``evaluation`` event follows once the archive holds it.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from evolve.evaluation import EvalResult
from evolve.parallel.base import Evaluator

J = TypeVar("J")  # what the host proposes (a parent, a mutator, an RNG)
M = TypeVar("M")  # what a mutation returns
T = TypeVar("T")
Log = Callable[..., None]


class Breeder(Protocol[J, M]):
    """What the pipeline asks of its host. Every method but :meth:`mutate` runs on the calling thread."""

    def stop_reason(self) -> str | None:
        """Why nothing new may start (a budget spent, the target reached), else None."""

    def room(self) -> int | None:
        """How many more evaluations the budget allows (None: no such budget)."""

    def propose(self) -> J:
        """The next child to write (draws from the run's RNG)."""

    def mutate(self, job: J) -> M:
        """Write the child (an LLM call); runs on a worker thread."""

    def mutated(self, job: J, mutation: M) -> str | None:
        """Account for a written child; the source to evaluate, or None (rejected)."""

    def evaluated(self, job: J, mutation: M, result: EvalResult) -> None:
        """File an evaluated child."""


@dataclass
class _Child(Generic[J, M]):
    seq: int
    job: J
    mutation: M | None = None
    source: str = ""


class SteadyState(Generic[J, M]):
    """Runs a :class:`Breeder` until its stop reason is set and nothing is left in flight."""

    def __init__(self, evaluator: Evaluator, *, mutations: int, log: Log | None = None) -> None:
        self.evaluator, self.mutations = evaluator, max(1, mutations)
        self.log: Log = log or (lambda event, **fields: None)
        self._seq = itertools.count()

    def run(self, host: Breeder[J, M]) -> None:
        workers = _Workers(self.mutations)
        try:
            self._run(host, workers)
        finally:
            workers.close()

    def _run(self, host: Breeder[J, M], workers: "_Workers") -> None:
        mutating: dict[Future[M], _Child[J, M]] = {}
        waiting: deque[_Child[J, M]] = deque()
        evaluating: dict[Future[EvalResult], _Child[J, M]] = {}
        while True:
            self._fill_slots(waiting, evaluating)
            if host.stop_reason() is None:
                room = host.room()
                while (len(mutating) + len(waiting) < self.mutations
                       and (room is None or len(mutating) + len(waiting) + len(evaluating) < room)):
                    child: _Child[J, M] = _Child(next(self._seq), host.propose())
                    mutating[workers.submit(host.mutate, child.job)] = child
                    self.log("child.start", child=child.seq)
            if not (mutating or evaluating):
                return  # (nothing waits without a slot: _fill_slots ran)
            pending: list[Future[Any]] = [*mutating, *evaluating]
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            filed, failure = self._collect(done, evaluating)
            if failure is None:
                self._fill_slots(waiting, evaluating)  # before filing: a free slot must not wait for a commit
            for child, result in filed:
                assert child.mutation is not None
                host.evaluated(child.job, child.mutation, result)
                self.log("child.filed", child=child.seq)
            if failure is not None:
                raise failure  # after filing what ended with it: those results are paid for
            for future in sorted((f for f in done if f in mutating), key=lambda f: mutating[f].seq):
                child = mutating.pop(future)
                child.mutation = future.result()  # an LLM run failure leaves here
                source = host.mutated(child.job, child.mutation)
                if source is None:
                    self.log("child.rejected", child=child.seq)
                else:
                    child.source = source
                    waiting.append(child)
                    self.log("child.ready", child=child.seq)
                    self._fill_slots(waiting, evaluating)

    def _collect(self, done: set[Future[Any]], evaluating: dict[Future[EvalResult], _Child[J, M]]
                 ) -> tuple[list[tuple[_Child[J, M], EvalResult]], BaseException | None]:
        """The evaluations in ``done``, in the order their children started, and the first failure
        of the evaluator itself (a lost cluster, a bug: a candidate's own failure is a result)."""
        filed, failure = [], None
        for future in sorted((f for f in done if f in evaluating), key=lambda f: evaluating[f].seq):
            child = evaluating.pop(future)
            self.log("evaluation.end", child=child.seq)
            error = future.exception()
            if error is None:
                filed.append((child, future.result()))
            elif failure is None:
                failure = error
        return filed, failure

    def _fill_slots(self, waiting: deque[_Child[J, M]], evaluating: dict[Future[EvalResult], _Child[J, M]]) -> None:
        while waiting and len(evaluating) < self.evaluator.slots:
            child = waiting.popleft()
            evaluating[self.evaluator.submit(child.source)] = child
            self.log("evaluation.start", child=child.seq)


class _Workers:
    """Up to ``size`` daemon threads running submitted calls; abandoned, never joined, when the run
    stops (an LLM call cannot be interrupted: the caller cancels the client, see
    :mod:`evolve.stopping`). :meth:`close` lets each thread leave once it is idle."""

    def __init__(self, size: int) -> None:
        self.size, self._started = size, 0
        self._calls: queue.SimpleQueue[tuple[Callable[[Any], Any], Any, Future[Any]] | None] = queue.SimpleQueue()

    def submit(self, fn: Callable[[Any], T], arg: Any) -> "Future[T]":
        future: Future[T] = Future()
        future.set_running_or_notify_cancel()
        self._calls.put((fn, arg, future))
        if self._started < self.size:  # never more calls in flight than threads: the pipeline's bound
            self._started += 1
            threading.Thread(target=self._work, name="evolve-mutation", daemon=True).start()
        return future

    def close(self) -> None:
        for _ in range(self._started):
            self._calls.put(None)
        self._started = 0

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            fn, arg, future = call
            try:
                future.set_result(fn(arg))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)
            del call, fn, arg, future  # an idle thread holds nothing of the run
