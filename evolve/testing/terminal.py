"""Run the ``evolve`` CLI on a real pseudo-terminal, as a user's terminal would show it.

Tests of what a person sees (the live bar, tables that must fit 80 columns) need a terminal, not
a pipe: rich draws differently, and only a pty shows each re-draw of the bar.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

#: Colour and cursor escapes, and terminal title sequences.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
ROOT = Path(__file__).resolve().parents[2]


def run_in_pty(argv: list[str], *, columns: int = 80, cwd: Path | None = None, timeout: float = 300) -> str:
    """What ``evolve ARGV`` writes to a ``columns``-wide terminal, colours removed (``\\r`` kept:
    each re-draw of a live line starts with one). Raises AssertionError on a non-zero exit."""
    controller, terminal = os.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "50", "TERM": "xterm-256color",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "evolve.cli", *argv], stdout=terminal, stderr=terminal,
                            stdin=subprocess.DEVNULL, env=env, cwd=cwd, close_fds=True)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    code = proc.wait(timeout=timeout)
    screen = ANSI.sub("", b"".join(chunks).decode(errors="replace"))
    assert code == 0, f"evolve {' '.join(argv)} exited {code}:\n{screen[-2000:]}"
    return screen
