"""A tiny launcher that takes an external command's whole process group down when evolve dies.

:func:`evolve.agents.process.run_group` kills the group itself whenever it can: at the deadline, on
a stop request, on Ctrl-C. It cannot when evolve is killed with SIGKILL (or the machine's OOM killer
picks it), and an agent CLI left running would go on editing a worktree nobody reads. So the command
is started through this file, run as ``python -I -S leash.py PARENT_PID ARGV...`` (standard library
and the sandbox's stdlib-only :mod:`containment`, ~10 ms): it asks the kernel for SIGTERM when its
parent dies (``PR_SET_PDEATHSIG``), answers
that signal by SIGKILLing its own process group (the command and everything it started in the
group), then forks and execs the command in the same group and ends the way the command ended
(same exit code, or the same signal), so callers see the command's own status.

``PR_SET_PDEATHSIG`` fires when the parent *thread* exits; ``run_group`` blocks in the thread that
started the leash until the group is gone, so the signal comes only when evolve itself is gone.
"""

from __future__ import annotations

import os
import signal
import sys

if __package__:
    from evolve.sandbox import containment
else:  # run as a plain file by ``python -I -S``: neither site-packages nor the package are importable
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sandbox"))
    import containment  # type: ignore[no-redef]


def _kill_my_group(_signum: int = 0, _frame: object = None) -> None:
    os.killpg(0, signal.SIGKILL)


def main(argv: list[str]) -> None:
    parent, command = int(argv[0]), argv[1:]
    signal.signal(signal.SIGTERM, _kill_my_group)
    containment.die_with_parent(parent, signal.SIGTERM)  # alone in the group yet: exiting is enough
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            os.execvp(command[0], command)
        except OSError as exc:
            os.write(2, f"evolve: cannot run {command[0]!r}: {exc.strerror}\n".encode())
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main(sys.argv[1:])
