"""Prompt stopping: the abandoning parallel map and the two-step Ctrl-C."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from evolve.stopping import parallel

ROOT = Path(__file__).resolve().parents[1]


def test_parallel_keeps_the_order_and_bounds_the_threads() -> None:
    lock, inside, peak = threading.Lock(), [0], [0]

    def square(x: int) -> int:
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        threading.Event().wait(0.01)
        with lock:
            inside[0] -= 1
        return x * x

    assert parallel(square, range(12), 3) == [x * x for x in range(12)]
    assert 1 <= peak[0] <= 3
    assert parallel(square, [], 4) == []


def test_the_first_failure_is_raised_without_waiting_for_stragglers() -> None:
    """A worker stuck for good (an LLM answer that never comes) does not keep the caller waiting."""
    stuck = threading.Event()

    def work(x: int) -> int:
        if x == 0:
            stuck.wait()  # never set while the caller waits
        if x == 1:
            raise ValueError("bad child")
        return x

    with pytest.raises(ValueError, match="bad child"):
        parallel(work, [0, 1, 2], 2)
    stuck.set()


def test_a_second_ctrl_c_exits_at_once() -> None:
    script = (
        "import os, signal, sys, time\n"
        "from evolve.stopping import install_ctrl_c\n"
        "install_ctrl_c()\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGINT); time.sleep(5)\n"
        "except KeyboardInterrupt:\n"
        "    print('first: clean stop begins', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGINT); time.sleep(5)\n"
        "print('not reached')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 130
    assert done.stdout == "first: clean stop begins\n"
    assert done.stderr.startswith("evolve: interrupted again: exiting now")
