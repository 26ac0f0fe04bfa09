"""Run an external command in its own process group, under a wall-clock limit, and leave nothing behind.

The command starts in a new session (so it is its own process group and a Ctrl-C meant for evolve
does not reach it). One loop polls its stdout, its stderr and a pidfd: stdout lines go to a callback
as they arrive (event streams are accounted live, and the callback may ask for a stop), stderr keeps
a tail. When the leader exits, when the deadline passes, when the callback asks, or when evolve
itself is interrupted, the *whole group* gets SIGKILL while the leader is still unreaped, so the group
id cannot have been reused by then. If evolve itself dies without a chance to do that (SIGKILL, the
OOM killer), the command's launcher (:mod:`evolve.agents.leash`) kills the group. Limitation: a
process that leaves the group with ``setsid`` is not followed (the sandbox's supervisor does that
for candidates; an agent CLI is trusted more).
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

LEASH = Path(__file__).with_name("leash.py")
STDERR_TAIL_BYTES = 8192
DRAIN_GRACE_S = 1.0  # reading what the group wrote before it was killed


@dataclass
class GroupResult:
    exit_code: int | None
    signal: int | None
    timed_out: bool
    stopped: str | None  # why the callback stopped the command, if it did
    wall_s: float
    stderr_tail: str

    def describe(self) -> str:
        """How the command ended, in a few words."""
        if self.timed_out:
            return "timed out"
        if self.stopped:
            return f"stopped ({self.stopped})"
        return f"exit code {self.exit_code}" if self.exit_code is not None else f"signal {self.signal}"


def run_group(argv: list[str], *, cwd: Path, env: dict[str, str], stdin: IO[bytes] | None, timeout_s: float,
              on_line: Callable[[str], str | None]) -> GroupResult:
    """Run ``argv`` to its end or its deadline. ``on_line`` gets every stdout line and returns a
    reason to stop the command now, or None."""
    if not _runnable(argv[0], cwd, env):
        raise FileNotFoundError(f"command not found: {argv[0]!r}")
    start = time.monotonic()
    leashed = [sys.executable, "-I", "-S", str(LEASH), str(os.getpid()), *argv]
    proc = subprocess.Popen(leashed, cwd=cwd, env=env, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stderr is not None
    pidfd = os.pidfd_open(proc.pid)
    watch = _Watch(proc, on_line)
    try:
        watch.loop(pidfd, start + timeout_s)
    finally:
        _kill_group(proc.pid)  # the leader is at worst a zombie here: its pid is still the group's
        proc.wait()
        os.close(pidfd)
        proc.stdout.close()
        proc.stderr.close()
    code = proc.returncode
    return GroupResult(exit_code=code if code >= 0 else None, signal=-code if code < 0 else None,
                       timed_out=watch.timed_out, stopped=watch.stopped, wall_s=time.monotonic() - start,
                       stderr_tail=watch.stderr[-STDERR_TAIL_BYTES:].decode("utf-8", "replace"))


def _runnable(program: str, cwd: Path, env: dict[str, str]) -> bool:
    """Whether exec would find ``program`` (the leash would only report it as exit code 127)."""
    if "/" in program:
        path = Path(cwd, program)
        return path.is_file() and os.access(path, os.X_OK)
    return shutil.which(program, path=env.get("PATH", os.defpath)) is not None


class _Watch:
    def __init__(self, proc: subprocess.Popen[bytes], on_line: Callable[[str], str | None]) -> None:
        self.proc, self.on_line = proc, on_line
        self.timed_out = False
        self.stopped: str | None = None
        self.stdout, self.stderr = b"", b""

    def loop(self, pidfd: int, deadline: float) -> None:
        sel = selectors.DefaultSelector()
        for f in (self.proc.stdout, self.proc.stderr):
            assert f is not None, "started with stdout and stderr pipes"
            os.set_blocking(f.fileno(), False)
            sel.register(f, selectors.EVENT_READ)
        sel.register(pidfd, selectors.EVENT_READ)
        drain_until: float | None = None  # set once the group is dead or killed
        try:
            while True:
                now = time.monotonic()
                if drain_until is None and (now >= deadline or self.stopped is not None):
                    self.timed_out = self.stopped is None
                    drain_until = self._end(sel, pidfd)
                pipes_open = any(k.fileobj != pidfd for k in sel.get_map().values())
                if drain_until is not None and (now >= drain_until or not pipes_open):
                    break
                for key, _ in sel.select(max(0.0, (drain_until or deadline) - now)):
                    if key.fileobj == pidfd:
                        drain_until = self._end(sel, pidfd)
                    else:
                        self._read(sel, cast(IO[bytes], key.fileobj))  # registered: our two pipes
        finally:
            sel.close()
        if self.stdout:
            self._line(self.stdout)

    def _end(self, sel: selectors.BaseSelector, pidfd: int) -> float:
        """The leader exited or must go: kill the group, then read what is left for a short while."""
        _kill_group(self.proc.pid)
        if pidfd in (k.fileobj for k in sel.get_map().values()):
            sel.unregister(pidfd)
        return time.monotonic() + DRAIN_GRACE_S

    def _read(self, sel: selectors.BaseSelector, f: IO[bytes]) -> None:
        try:
            data = os.read(f.fileno(), 65536)
        except BlockingIOError:
            return
        if not data:
            sel.unregister(f)
            return
        if f is self.proc.stderr:
            self.stderr = (self.stderr + data)[-STDERR_TAIL_BYTES:]
            return
        self.stdout += data
        *lines, self.stdout = self.stdout.split(b"\n")
        for line in lines:
            self._line(line)

    def _line(self, raw: bytes) -> None:
        reason = self.on_line(raw.decode("utf-8", "replace"))
        if reason is not None and self.stopped is None:
            self.stopped = reason


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
