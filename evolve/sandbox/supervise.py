"""The per-job supervisor: a small trusted process between the parent and the worker.

It becomes a child subreaper, forks the worker, enforces the wall-clock deadline, and once the
worker has ended (or been killed) kills every process the worker left behind -- double-forked,
``setsid`` escapees included, since orphans are reparented to the subreaper -- reaps them, and
writes one JSON report with the worker's ``wait4`` figures on its report pipe.

Fresh mode runs this file as ``python -I -S supervise.py`` with the job spec on stdin: a fresh
interpreter, so that the worker it forks and execs does not inherit the large parent's high-water
RSS (Linux folds the old mm's peak into ``ru_maxrss`` on exec). It imports only the standard library
and :mod:`containment` and peaks at ~11.7 MiB here, below the 13.1 MiB of a bare ``python -c pass``,
so it never raises a script's figure. Forkserver mode forks it from the zygote
(:func:`serve_forked`). It never runs job code itself.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import sys
import time
from typing import Any, NoReturn

if __package__:
    from . import containment, jail
else:  # run as a plain file by ``python -I -S``: neither site-packages nor the package exist
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import containment  # type: ignore[no-redef]
    import jail  # type: ignore[no-redef]

#: Order of the descriptors the parent hands over (after the spec in forkserver mode).
FD_ROLES = ("stdin", "stdout", "stderr", "result", "report")
# The worker's descriptors besides 0-2:
RESULT_FD = 3  # call jobs: the result message
SPEC_FD = 4  # exec'd call jobs: the job itself
_SETUP_FD = 5  # worker -> supervisor: what containment is active, or why setup failed
_REAP_GIVE_UP_S = 10.0


def supervise(spec: dict[str, Any], fds: dict[str, int]) -> None:
    """Run the job's worker to its end and write the report on ``fds["report"]``."""
    containment.prctl(containment.PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the zygote ignores it, which would auto-reap
    setup_r, setup_w = os.pipe()
    spec_fd = _memfd(spec["job"]) if spec["exec"] and spec["job"]["kind"] == "call" else None
    me = os.getpid()
    if spec["jail"] is not None and not jail.new_pid_namespace():
        raise OSError("could not create the job's pid namespace")
    start = time.monotonic()
    pid = os.fork()  # with a jail: pid 1 of its own pid namespace
    if pid == 0:
        _worker(spec, fds, setup_w, spec_fd, supervisor=me)
    for fd in (setup_w, spec_fd, fds["stdin"], fds["stdout"], fds["stderr"], fds["result"]):
        if fd is not None:
            os.close(fd)
    setup, timed_out, held = _watch(pid, setup_r, start + spec["limits"]["timeout_s"], spec["jail"] is not None)
    _kill_group(pid)  # the worker is at worst a zombie here, so its pid (= pgid) cannot be reused
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - start
    _kill_descendants()
    report = {
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "timed_out": timed_out,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "maxrss_kb": usage.ru_maxrss,
        **setup,
    }
    _write_all(fds["report"], json.dumps(report).encode())
    os.close(fds["report"])
    if held is not None:
        os.close(held)  # the job's mount namespace is torn down now, after the parent has its report


def serve_forked(received: list[int]) -> NoReturn:
    """Body of a supervisor forked by the zygote: ``received`` = [spec memfd, *FD_ROLES]."""
    code = 1
    try:
        os.setsid()
        containment.set_process_name("evolve-super")
        with os.fdopen(received[0], "rb") as f:
            spec = json.load(f)
        supervise(spec, dict(zip(FD_ROLES, received[1:], strict=True)))
        code = 0
    except BaseException:  # a supervisor bug: say so on the zygote's stderr (the parent's)
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def _memfd(job: dict[str, Any]) -> int:
    """The call job for an exec'd worker, in memory: no size limit, no file in the workdir."""
    fd = os.memfd_create("evolve-job", os.MFD_CLOEXEC)
    _write_all(fd, json.dumps(job).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _watch(pid: int, setup_r: int, deadline: float, hold: bool) -> tuple[dict[str, Any], bool, int | None]:
    """Collect the worker's setup message and wait for its end; returns (setup, timed_out, held).

    ``hold``: once the worker is set up, open its mount namespace (``held``), so that tearing it
    down -- an RCU grace period, ~8 ms on a loaded box -- happens after the report, not before.
    """
    held = None
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(setup_r, select.POLLIN)
    chunks: list[bytes] = []
    timed_out = False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                timed_out = True
                break
            ready = {fd for fd, _ in poller.poll(remaining * 1000)}
            if setup_r in ready:
                data = os.read(setup_r, 65536)
                chunks.append(data)
                if not data:
                    poller.unregister(setup_r)
                elif hold and held is None:
                    held = _open_namespace(pid)
            if pidfd in ready:
                break
        os.set_blocking(setup_r, False)
        try:
            chunks.append(os.read(setup_r, 65536))
        except BlockingIOError:
            pass
    finally:
        os.close(pidfd)
        os.close(setup_r)
    setup: dict[str, Any] = {}
    for line in b"".join(chunks).splitlines():
        setup.update(json.loads(line))
    return setup, timed_out, held


def _open_namespace(pid: int) -> int | None:
    try:
        return os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # it has already ended: its teardown is on this job's clock, nothing worse


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_descendants() -> None:
    """SIGKILL and reap every remaining descendant until this subreaper has no child left."""
    give_up = time.monotonic() + _REAP_GIVE_UP_S
    while time.monotonic() < give_up:
        for pid in _descendants(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            return
        time.sleep(0.002)


def _descendants(root: int) -> list[int]:
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            found.extend(kids)
            stack.extend(kids)
    return found


# --- the worker (runs in the forked child, before and instead of job code) ---------------------
def _worker(spec: dict[str, Any], fds: dict[str, int], setup_w: int, spec_fd: int | None, supervisor: int) -> NoReturn:
    setup_fd = setup_w
    try:
        os.setsid()
        _die_with_supervisor(supervisor, setup_w)
        wanted = {0: fds["stdin"], 1: fds["stdout"], 2: fds["stderr"], _SETUP_FD: setup_w}
        if spec["job"]["kind"] == "call":
            wanted[RESULT_FD] = fds["result"]
        if spec_fd is not None:
            wanted[SPEC_FD] = spec_fd
        _install_fds(wanted)
        setup_fd = _SETUP_FD
        setup: dict[str, Any] = {"containment": containment.apply(spec)}
        if not spec["exec"]:
            # A forked worker starts with the zygote's heap; what the job adds is measured from here.
            # (Not from the zygote's own RSS: file-backed pages are not copied at fork, so a worker
            # can peak below its zygote's RSS.)
            setup["baseline_rss_kb"] = _rss_kb()
        _write_all(_SETUP_FD, json.dumps(setup).encode() + b"\n")
        if spec["exec"]:
            for sig in (signal.SIGPIPE, signal.SIGXFSZ):
                signal.signal(sig, signal.SIG_DFL)
            os.execve(spec["argv"][0], spec["argv"], spec["env"])
        os.close(_SETUP_FD)
        containment.set_process_name("evolve-job")
    except BaseException as exc:  # reported, never raised past the fork
        _write_all(setup_fd, json.dumps({"setup_error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n")
        os._exit(127)
    from . import child  # forkserver only (already loaded by the zygote); keeps the fresh supervisor small

    _adopt_env(spec["env"])
    code = 1
    try:
        code = child.execute(spec["job"])
    finally:
        os._exit(code)


def _die_with_supervisor(supervisor: int, setup_w: int) -> None:
    """SIGKILL when the supervisor dies; exit now if it already has. As pid 1 of a new pid
    namespace the worker's getppid() is 0, so it asks the pipe whose reader the supervisor is."""
    containment.prctl(containment.PR_SET_PDEATHSIG, 9)
    parent = os.getppid()
    if parent != supervisor and not (parent == 0 and jail.supervisor_alive(setup_w)):
        os._exit(125)


def _install_fds(wanted: dict[int, int]) -> None:
    """Put each source fd at its target number and close every other descriptor.

    Sources are first copied above any target so that a dup2 never clobbers a later source.
    """
    staged = {target: fcntl.fcntl(src, fcntl.F_DUPFD_CLOEXEC, 100) for target, src in wanted.items()}
    for target, src in staged.items():
        os.dup2(src, target, inheritable=target != _SETUP_FD)  # the setup pipe must close on exec
    for name in os.listdir("/proc/self/fd"):
        if int(name) not in wanted:
            try:
                os.close(int(name))
            except OSError:
                pass


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _adopt_env(env: dict[str, str]) -> None:
    """A forked (not exec'd) worker takes the job's environment: its own HOME and TMPDIR."""
    os.environ.clear()
    os.environ.update(env)
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile.tempdir = None  # type: ignore[attr-defined]  # forget a temp dir the zygote cached


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BrokenPipeError:
            return  # the reader is gone (parent died); nobody is left to tell


def main() -> None:
    """Fresh-mode entry point: the spec arrives on stdin, never in argv (/proc/PID/cmdline is public)."""
    spec = json.loads(sys.stdin.buffer.read())
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    supervise(spec, spec["fds"])


if __name__ == "__main__":
    main()
