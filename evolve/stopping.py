"""How a run stops promptly: a parallel map that abandons its stragglers, and a two-step Ctrl-C.

Ctrl-C used to wait 10-31 s (minutes with the default timeout and retries) because the run's thread
pools joined their workers, which were blocked in LLM requests or sandbox jobs. Here the caller
waits on an event that a signal interrupts at once; workers still running are daemon threads the
run abandons after cancelling the LLM client and closing the sandbox behind them (measured by
``bench/ctrl_c.py``: 0.2 s against a server answering after 30 s). A second Ctrl-C exits at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def parallel(fn: Callable[[Any], T], items: Iterable[Any], workers: int) -> list[T]:
    """``[fn(x) for x in items]`` on up to ``workers`` daemon threads, results in order; the first
    exception (by position) is raised as soon as it happens.

    The caller waits on an event, which Ctrl-C interrupts at once; threads still running are then
    abandoned, not joined (a thread pool's exit joined them: Ctrl-C waited 10-31 s for LLM answers).
    The run cancels the LLM client and closes the sandbox behind them; their results are dropped.
    """
    todo = list(items)
    results: list[Any] = [None] * len(todo)
    errors: list[BaseException | None] = [None] * len(todo)
    if not todo:
        return []
    lock, done = threading.Lock(), threading.Event()
    state = {"next": 0, "left": len(todo)}

    def work() -> None:
        while True:
            with lock:
                i = state["next"]
                if i >= len(todo) or done.is_set():
                    return
                state["next"] = i + 1
            try:
                results[i] = fn(todo[i])
            except BaseException as exc:  # handed to the waiting caller
                errors[i] = exc
            with lock:
                state["left"] -= 1
                if state["left"] == 0 or errors[i] is not None:
                    done.set()

    for _ in range(min(max(1, workers), len(todo))):
        threading.Thread(target=work, name="evolve-worker", daemon=True).start()
    done.wait()
    failed = next((e for e in errors if e is not None), None)
    if failed is not None:
        raise failed
    return results


def install_ctrl_c() -> Any:
    """First Ctrl-C: KeyboardInterrupt (the run cancels its requests and stops cleanly, resumable);
    a second one exits at once. Only the main thread may set handlers; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return None
    pressed = [0]

    def handler(signum: int, frame: Any) -> None:
        pressed[0] += 1
        if pressed[0] == 1:
            raise KeyboardInterrupt
        sys.stderr.write("evolve: interrupted again: exiting now (the archive is consistent; resume with --resume)\n")
        sys.stderr.flush()
        os._exit(130)

    return signal.signal(signal.SIGINT, handler)


def restore_ctrl_c(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)
