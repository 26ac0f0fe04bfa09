"""The forkserver zygote: an interpreter that pays for heavy imports once, then forks per job.

Started by :class:`ForkServer` as a fresh interpreter with the scrubbed environment. Its memory is
inherited by every worker, so it must never hold a secret: a warm-up must not touch hidden cases.

It imports the preload modules, pins torch to one thread, runs the trusted warm-up, freezes the GC
(so children do not copy-on-write its heap while collecting), collapses its heap into huge pages
(a fork then copies one page-table entry per 2 MiB instead of 512) and moves into its own network
and IPC namespaces, which its workers share.

Then it serves the parent over a unix socketpair: each request asks for a spare, made ahead of the
job, whose reply carries a pid and the channels through which the parent later hands the job over
directly. With private namespaces (a jail) the spare is a worker the zygote forks and watches itself
(:mod:`watch`: one fork of the zygote per job); without, it is a spare supervisor (:mod:`supervise`)
that forks and sets up its worker, and that the kernel reaps (SIGCHLD ignored). The zygote never
sees a job, never runs job code, and exits when the parent's end of the socket closes (EOF;
deliberately not PR_SET_PDEATHSIG, which fires when the *thread* that started it exits, e.g. a pool
thread that happened to run the first job). Spares, and a watched job, die with the zygote.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from evolve.errors import UserError

from . import (
    child,  # noqa: F401  (loaded before any fork: workers run call jobs with it)
    containment,
    supervise,
    watch,
)

_HELLO_TIMEOUT_S = 900.0  # preloading torch and a warm-up export can take minutes on a busy box
_REPLY_TIMEOUT_S = 60.0
#: Spares asked for ahead: making one (a fork of the zygote, the worker's view and its prepared
#: confinement) can take longer than the job before, on a busy 2-core machine; with two on their
#: way, each has two jobs' time.
SPARES_AHEAD = 2
#: madvise(2): collapse a range into huge pages now (Linux >= 6.1). Unlike MADV_HUGEPAGE it does not
#: mark the range, so a child's own later allocations still fault in 4 KiB pages (fine-grained RSS).
_MADV_COLLAPSE = 25
_HUGE_PAGE = 2 << 20


class ForkServerError(UserError, RuntimeError):
    """The zygote could not start (a preload import or the warm-up failed); one-line message."""


class ForkServerDied(RuntimeError):
    """The zygote went away while a job was being handed to it."""


class _Spare:
    """Parent-side handle of a spare: the pid to kill as a backstop (its supervisor's, or its
    worker's when the zygote watches it) and the channels to its supervisor (None when watched)
    and to its worker."""

    def __init__(self, pid: int, supervisor: socket.socket | None, worker: socket.socket) -> None:
        self.pid, self.supervisor, self.worker = pid, supervisor, worker

    def close(self) -> None:
        if self.supervisor is not None:
            self.supervisor.close()
        self.worker.close()


class ForkServer:
    """Parent-side handle of one zygote: started lazily, restarted transparently when found dead.

    The zygote makes spares (workers already forked and set up) :data:`SPARES_AHEAD` ahead and hands
    the parent a channel to each; the parent gives a job straight to a spare's worker, so no other
    process is a hop on the job's way (each hop is a wake-up, which on a busy 2-core machine costs up
    to a few ms), and then tells whoever watches the worker when it started and where to report.
    """

    def __init__(
        self, preload: Sequence[str], warmup: str | None, python: Sequence[str], env: dict[str, str], cwd: str,
        jail_spec: dict[str, Any] | None = None, *, landlock: dict[str, list[str]] | None = None, scripts: bool = False,
    ) -> None:
        """``landlock``: the Landlock lists every job gets (its workers add them to a ruleset ahead);
        ``scripts``: a script zygote (:func:`bootstrap`; preload and warm-up must be empty)."""
        self._config = {"preload": list(preload), "warmup": warmup, "jail": jail_spec, "landlock": landlock}
        self._command = [*python, *SCRIPT_BOOTSTRAP] if scripts else [*python, "-m", "evolve.sandbox.zygote"]
        self._env, self._cwd = env, cwd
        self._lock = threading.Lock()  # held by the job thread for a whole start-up or hand-over
        self._life = threading.Lock()  # guards _proc and _closed only; never held while waiting
        self._closed = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._pending = 0  # spares asked for, not yet received

    def fork(self, spec_fd: int, report: int, worker_fds: Sequence[int], timeout_s: float) -> int:
        """Give one job to a spare worker (``worker_fds``, in :data:`supervise.TO_WORKER` order) and
        to whoever watches it -- the zygote, or the spare's own supervisor -- (``report`` pipe, the
        job's timeout); returns the pid a backstop kills (:class:`_Spare`)."""
        with self._lock:
            for _ in range(SPARES_AHEAD + 1):  # spares killed while waiting are skipped, then replaced
                if self._proc is None or self._proc.poll() is not None:
                    self._start()
                spare = self._take()
                try:
                    handed = self._hand(spare, spec_fd, report, worker_fds, timeout_s)
                finally:
                    spare.close()
                if handed:
                    self._top_up()
                    return spare.pid
            raise ForkServerDied(f"{SPARES_AHEAD + 1} spares in a row were gone")

    def _hand(self, spare: _Spare, spec_fd: int, report: int, worker_fds: Sequence[int], timeout_s: float) -> bool:
        """Hand the job over; False if the spare had died while it waited."""
        if spare.supervisor is not None:
            try:
                socket.send_fds(spare.supervisor, [b"J"], [spec_fd, report])
            except OSError:
                return False
            supervise.hand_job(spare.worker, spec_fd, worker_fds)
            return True
        assert self._sock is not None
        start = time.monotonic()
        try:
            socket.send_fds(spare.worker, [b"J"], [spec_fd, *worker_fds])
        except OSError:
            self._tell(b"X" + json.dumps({"pid": spare.pid}).encode(), [])
            return False
        self._tell(watch.Handed(spare.pid, start, timeout_s).message(), [report])
        return True

    def _tell(self, message: bytes, fds: list[int]) -> None:
        """Send the zygote a message of the watch's (:mod:`watch`); its death here is the job's."""
        assert self._sock is not None
        try:
            socket.send_fds(self._sock, [message], fds)
        except OSError as exc:
            self._stop()
            raise ForkServerDied(f"{type(exc).__name__}: {exc}") from None

    @property
    def watches(self) -> bool:
        """Whether the zygote watches its workers itself (jailed: :mod:`watch`) rather than giving
        each a supervisor; then a job does not outlive the zygote."""
        return self._config["jail"] is not None

    def alive(self) -> bool:
        """Whether the current zygote is running."""
        with self._life:
            proc = self._proc
        return proc is not None and proc.poll() is None

    def _take(self) -> _Spare:
        """The spare asked for last time (asking now if none was), waiting for it if need be."""
        assert self._sock is not None
        try:
            if not self._pending:
                self._ask()
            message, fds, _, _ = socket.recv_fds(self._sock, 4096, 2)
            self._pending -= 1
        except OSError as exc:
            self._stop()
            raise ForkServerDied(f"{type(exc).__name__}: {exc}") from None
        if not message:
            self._stop()
            raise ForkServerDied("the zygote exited")
        reply = json.loads(message)
        if "error" in reply or len(fds) not in (1, 2):
            for fd in fds:
                os.close(fd)
            raise ForkServerDied(reply.get("error", "the zygote sent no channels"))
        channels = [socket.socket(fileno=fd) for fd in fds]
        if len(channels) == 1:  # a worker the zygote watches (:mod:`watch`)
            return _Spare(int(reply["pid"]), None, channels[0])
        return _Spare(int(reply["pid"]), channels[0], channels[1])

    def _top_up(self) -> None:
        """Ask for spares until :data:`SPARES_AHEAD` are on their way, once the job is handed over
        (asked before, the zygote's fork took a core just as the worker woke for its job). A zygote
        found gone here is stopped, and restarted by the next job; this one has its spare."""
        try:
            while self._pending < SPARES_AHEAD:
                self._ask()
        except OSError:
            self._stop()

    def _ask(self) -> None:
        """Ask the zygote for the next spare (made while the current job runs)."""
        assert self._sock is not None
        self._sock.send(b"S")
        self._pending += 1

    def close(self) -> None:
        """Stop the zygote for good. One still starting (importing torch) is killed before the job
        lock is taken: that lock is held by the thread waiting for its hello (up to 15 minutes).
        ``_life`` makes the kill certain: a zygote whose Popen has not yet returned when close()
        looks is killed by :meth:`_start` itself, which finds the server closed."""
        with self._life:
            self._closed = True
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        with self._lock:
            self._stop()

    def _start(self) -> None:
        self._stop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs, self._life:
            if self._closed:
                ours.close()
                raise ForkServerDied("the sandbox is closing")
            self._proc = subprocess.Popen(
                [*self._command, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                env=self._env,
                cwd=self._cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C meant for the parent must not reach it
            )
        self._sock = ours
        ours.settimeout(_HELLO_TIMEOUT_S)
        try:
            ours.send(json.dumps(self._config).encode())
            hello = json.loads(ours.recv(65536) or b'{"error": "the zygote exited during start-up"}')
        except (OSError, ValueError) as exc:
            hello = {"error": f"{type(exc).__name__}: {exc}"}
        if "error" in hello:
            self._stop()
            raise ForkServerError(f"forkserver start-up failed: {hello['error']}")
        ours.settimeout(_REPLY_TIMEOUT_S)

    def _stop(self) -> None:
        self._pending = 0
        if self._sock is not None:
            self._sock.close()  # EOF: an idle zygote exits on its own, and its spares with it
            self._sock = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._proc = None


# --- the zygote process --------------------------------------------------------------------------
def _prepare(preload: list[str], warmup: str | None) -> None:
    for name in preload:
        importlib.import_module(name)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
        _warm_torch(torch)
    if warmup:
        module, _, function = warmup.partition(":")
        getattr(importlib.import_module(module), function)()
    gc.collect()
    gc.freeze()
    _collapse_heap()
    containment.isolate_namespaces()


def _warm_torch(torch: Any) -> None:
    """Run one tiny layer forward and backward, so that torch's lazy one-time set-up (CPU feature
    detection, which parses /proc/cpuinfo, the matmul kernels' dispatch) happens once here rather
    than in every worker."""
    layer = torch.nn.Linear(8, 4)
    layer(torch.ones(2, 8)).sum().backward()
    with torch.no_grad():
        layer(torch.ones(1, 8))


def _collapse_heap() -> None:
    """Back the writable anonymous mappings with transparent huge pages, where the kernel can."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            if "w" not in fields[1] or (len(fields) > 5 and fields[5] != "[heap]"):
                continue  # read-only or file-backed: not copied at fork anyway
            low, high = (int(x, 16) for x in fields[0].split("-"))
            start = -(-low // _HUGE_PAGE) * _HUGE_PAGE
            end = high // _HUGE_PAGE * _HUGE_PAGE
            if end > start:
                libc.madvise(start, end - start, _MADV_COLLAPSE)  # failure only costs speed


def _make_spare(parent: socket.socket, landlock: dict[str, list[str]] | None) -> tuple[dict[str, Any], list[int]]:
    """Fork a spare supervisor (unjailed workers only: :mod:`watch` has the jailed ones), which forks
    and sets up its worker and waits for its job; returns the reply for the parent and the two
    channels it gets (to the supervisor, to the worker).

    Forked ahead of time, the spare's and the worker's forks and set-up happen between jobs instead
    of on a job's critical path. A spare dies with the zygote (PR_SET_PDEATHSIG; the zygote is
    single-threaded) and exits when the parent closes its channel.
    """
    zygote = os.getpid()
    to_super, super_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    to_worker, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        pid = os.fork()
    except OSError as exc:
        for s in (to_super, super_end, to_worker, worker_end):
            s.close()
        return {"error": f"fork failed: {exc}"}, []
    if pid == 0:
        parent.close()
        to_super.close()
        to_worker.close()
        containment.prctl(containment.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != zygote:
            os._exit(0)
        os.setsid()
        containment.set_process_name("evolve-spare")
        _spare(super_end, worker_end, landlock)
    super_end.close()
    worker_end.close()
    return {"pid": pid}, [to_super.detach(), to_worker.detach()]


def _spare(channel: socket.socket, worker_channel: socket.socket, landlock: dict[str, list[str]] | None) -> NoReturn:
    worker: supervise.Worker | BaseException
    try:  # set up before its job is known
        worker = supervise.Worker(None, worker_channel, supervisor_only=(channel,), landlock=landlock)
    except supervise.RunScript:
        raise  # in the worker of a script zygote: on its way up to bootstrap()
    except BaseException as exc:  # reported when the job comes
        worker = exc
    try:
        message, fds, _, _ = socket.recv_fds(channel, 16, 2)
    except OSError:
        message, fds = b"", []
    if not message or len(fds) != 2:
        os._exit(0)  # the parent went away (or the zygote is closing) before a job came
    containment.prctl(containment.PR_SET_PDEATHSIG, 0)  # with its job, it no longer needs the zygote
    channel.close()
    supervise.serve_forked(fds, worker)


def _serve(sock: socket.socket, jail_spec: dict[str, Any] | None, landlock: dict[str, list[str]] | None) -> None:
    """Answer each request for a spare with one; exit at EOF (the parent closed its end or died).
    Jailed workers are forked and watched by the zygote itself (:mod:`watch`); an unjailed one gets
    a spare supervisor of its own (:func:`_make_spare`)."""
    if jail_spec is not None:
        watch.Watch(sock, jail_spec, landlock).serve()
        return
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished supervisors
    while True:
        try:
            message = sock.recv(16)
        except OSError:
            return
        if not message:
            return
        reply, fds = _make_spare(sock, landlock)
        try:
            socket.send_fds(sock, [json.dumps(reply).encode()], fds)
        except OSError:
            return  # the parent is gone
        finally:
            for fd in fds:
                os.close(fd)


def main(argv: list[str]) -> int:
    """Prepare, say hello, serve. A parent that died meanwhile (killed while we imported torch) ends
    the zygote quietly: a traceback on the user's terminal would blame the wrong process."""
    sock = socket.socket(fileno=int(argv[0]))
    containment.set_process_name("evolve-zygote")
    try:
        config = json.loads(sock.recv(65536))
    except (OSError, ValueError):
        return 0  # the parent went away before sending the configuration
    try:
        _prepare(config["preload"], config["warmup"])
    except BaseException as exc:  # told to the parent, which raises ForkServerError
        _tell(sock, {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]})
        return 1
    if not _tell(sock, {"pid": os.getpid()}):
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    _serve(sock, config["jail"], config["landlock"])
    return 0


def _tell(sock: socket.socket, message: dict[str, Any]) -> bool:
    """Send ``message`` to the parent; False if it is gone."""
    try:
        sock.send(json.dumps(message).encode())
        return True
    except OSError:
        return False


#: How the script zygote starts: ``python -s`` like a fresh script, with no module of its own as
#: ``__main__`` (runpy's frames would hold the zygote module's globals under the script).
SCRIPT_BOOTSTRAP = ("-s", "-c", "from evolve.sandbox.zygote import bootstrap; bootstrap()")


def bootstrap() -> None:
    """Entry point of the script zygote: a zygote that preloads nothing, whose workers run script
    jobs in-process instead of exec'ing a new interpreter (~1 ms instead of ~20 ms of start-up).

    A worker leaves :func:`main` by :class:`supervise.RunScript` once confined, so every trusted frame
    (the zygote's configuration, the job's spec, its channels) is unwound and freed before the script
    runs; then evolve's own modules leave ``sys.modules`` (:func:`script.run`).
    """
    try:
        code = main(sys.argv[1:])
    except supervise.RunScript as run:
        argv = run.argv
        run.__traceback__ = None  # the unwound frames go with it
    else:
        sys.exit(code)
    from . import script

    script.run(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
