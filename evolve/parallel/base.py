"""The evaluator interface: submit a source, get a future of its :class:`EvalResult`.

An evaluator owns its slots (evaluations in flight) and everything needed to run the task's check
there (the sandbox, its zygote, scratch files). Futures are plain :class:`concurrent.futures.Future`
objects so the run can wait on several at once; waiting is interruptible by Ctrl-C, and an evaluator
never joins its workers on close (a closed sandbox kills their jobs; the results are dropped).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, wait

from evolve.evaluation import EvalResult


class Evaluator(ABC):
    """Evaluates candidate sources for one task, ``slots`` at a time."""

    slots: int = 1
    #: Evaluations started again because the worker under them was lost (a cluster's node; never
    #: locally). The run adds them to its ``evaluations_retried`` counter.
    retried: int = 0

    @abstractmethod
    def submit(self, source: str) -> "Future[EvalResult]":
        """Start evaluating ``source`` (queued when every slot is busy); never blocks."""

    @abstractmethod
    def close(self) -> None:
        """Stop: running jobs are killed, queued ones never start; idempotent."""

    def evaluate_all(self, sources: Sequence[str]) -> list[EvalResult]:
        """Evaluate ``sources`` concurrently; results in order (the first failure is raised)."""
        return gather([self.submit(source) for source in sources])

    def __enter__(self) -> "Evaluator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def gather(futures: Sequence["Future[EvalResult]"]) -> list[EvalResult]:
    """The futures' results in order; the first exception is raised as soon as it happens.

    The wait is on an event that Ctrl-C interrupts at once (the caller then closes the evaluator).
    """
    if futures:
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            if future in done and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
    return [future.result() for future in futures]
