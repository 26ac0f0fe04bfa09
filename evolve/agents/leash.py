"""A tiny launcher that takes an external command's whole process group down when evolve dies.

:func:`evolve.agents.process.run_group` kills the group itself whenever it can: at the deadline, on
a stop request, on Ctrl-C. It cannot when evolve is killed with SIGKILL (or the machine's OOM killer
picks it), and an agent CLI left running would go on editing a worktree nobody reads. So the command
is started through this file, run as ``python -I -S leash.py PARENT_PID ARGV...`` (standard library
only, ~10 ms): it asks the kernel for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), answers
that signal by SIGKILLing its own process group (the command and everything it started in the
group), then forks and execs the command in the same group and ends the way the command ended
(same exit code, or the same signal), so callers see the command's own status.

``PR_SET_PDEATHSIG`` fires when the parent *thread* exits; ``run_group`` blocks in the thread that
started the leash until the group is gone, so the signal comes only when evolve itself is gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def _kill_my_group(_signum: int = 0, _frame: object = None) -> None:
    os.killpg(0, signal.SIGKILL)


def main(argv: list[str]) -> None:
    parent, command = int(argv[0]), argv[1:]
    signal.signal(signal.SIGTERM, _kill_my_group)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request above took effect
        _kill_my_group()
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            os.execvp(command[0], command)
        except OSError as exc:
            os.write(2, f"evolve: cannot run {command[0]!r}: {exc.strerror}\n".encode())
            os._exit(127)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main(sys.argv[1:])
