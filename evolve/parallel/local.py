"""Evaluations on this machine: one :class:`~evolve.sandbox.Sandbox`, ``slots`` daemon workers.

Workers are daemon threads, never joined: Ctrl-C must not wait for a job (see
:mod:`evolve.stopping`); closing the sandbox kills the jobs behind them. Each evaluation gets a
scratch folder of its own (``slot<i>``, reused once free), so concurrent candidates never share a
file and the paths a task sees repeat from run to run.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from pathlib import Path

from evolve.evaluation import EvalResult, evaluate, task_sandbox
from evolve.parallel.base import Evaluator
from evolve.sandbox import Limits
from evolve.tasks import Task

PROGRAM_NAME = "program.py"
_STOP = None


class LocalEvaluator(Evaluator):
    """Runs ``task``'s evaluation of each submitted source in this machine's sandbox."""

    def __init__(self, task: Task, scratch: Path, *, slots: int = 1, limits: Limits | None = None,
                 program_name: str = PROGRAM_NAME) -> None:
        self.task, self.scratch, self.slots, self.program_name = task, scratch, max(1, slots), program_name
        self.sandbox = task_sandbox(task, limits)
        self._queue: queue.SimpleQueue[tuple[str, Future[EvalResult]] | None] = queue.SimpleQueue()
        self._free = queue.SimpleQueue[int]()
        for i in range(self.slots):
            self._free.put(i)
        self._closed = False
        for _ in range(self.slots):
            threading.Thread(target=self._work, name="evolve-evaluator", daemon=True).start()

    def submit(self, source: str) -> "Future[EvalResult]":
        if self._closed:
            raise RuntimeError("the evaluator is closed")
        future: Future[EvalResult] = Future()
        self._queue.put((source, future))
        return future

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for _ in range(self.slots):
            self._queue.put(_STOP)
        self.sandbox.close()

    def _work(self) -> None:
        while (item := self._queue.get()) is not _STOP and not self._closed:
            source, future = item
            if not future.set_running_or_notify_cancel():
                continue
            slot = self._free.get()
            try:
                future.set_result(self._evaluate(source, slot))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)
            finally:
                self._free.put(slot)

    def _evaluate(self, source: str, slot: int) -> EvalResult:
        path = self.scratch / f"slot{slot}" / self.program_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
        return evaluate(self.task, path, self.sandbox)
