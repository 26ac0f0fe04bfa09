"""The forkserver zygote: an interpreter that pays for heavy imports once, then forks per job.

Started by :class:`ForkServer` as a fresh interpreter with the scrubbed environment. Its memory is
inherited by every worker, so it must never hold a secret: a warm-up must not touch hidden cases.

It imports the preload modules, pins torch to one thread, runs the trusted warm-up, freezes the GC
(so children do not copy-on-write its heap while collecting), collapses its heap into huge pages
(a fork then copies one page-table entry per 2 MiB instead of 512; the zygote is forked twice per
job) and moves into its own network and IPC namespaces, which its workers share.

Then it serves the parent over a unix socketpair: each request is a spec memfd plus the job's pipe
ends. The zygote hands them to a supervisor (:mod:`supervise`) it forked ahead of time (a spare),
replies with its pid, and forks the next spare while the job runs. It never runs job code, lets the
kernel reap its supervisors (SIGCHLD ignored), and exits when the parent's end of the socket closes
(EOF; deliberately not PR_SET_PDEATHSIG, which fires when the *thread* that started it exits, e.g. a
pool thread that happened to run the first job). A waiting spare exits when the zygote does.
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
from collections.abc import Sequence
from typing import Any, NoReturn

from evolve.errors import UserError

from . import (
    child,  # noqa: F401  (loaded before any fork: workers run call jobs with it)
    containment,
    supervise,
)

_HELLO_TIMEOUT_S = 900.0  # preloading torch and a warm-up export can take minutes on a busy box
_REPLY_TIMEOUT_S = 60.0
_MAX_FDS = 8
#: madvise(2): collapse a range into huge pages now (Linux >= 6.1). Unlike MADV_HUGEPAGE it does not
#: mark the range, so a child's own later allocations still fault in 4 KiB pages (fine-grained RSS).
_MADV_COLLAPSE = 25
_HUGE_PAGE = 2 << 20


class ForkServerError(UserError, RuntimeError):
    """The zygote could not start (a preload import or the warm-up failed); one-line message."""


class ForkServerDied(RuntimeError):
    """The zygote went away while a job was being handed to it."""


class ForkServer:
    """Parent-side handle of one zygote: started lazily, restarted transparently when found dead."""

    def __init__(
        self, preload: Sequence[str], warmup: str | None, python: Sequence[str], env: dict[str, str], cwd: str
    ) -> None:
        self._config = {"preload": list(preload), "warmup": warmup}
        self._python, self._env, self._cwd = list(python), env, cwd
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None

    def fork(self, spec_fd: int, fds: Sequence[int]) -> int:
        """Have the zygote fork a supervisor for one job; returns the supervisor's pid."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            assert self._sock is not None
            try:
                socket.send_fds(self._sock, [b"J"], [spec_fd, *fds])
                reply = self._sock.recv(4096)
            except OSError as exc:
                self._stop()
                raise ForkServerDied(f"{type(exc).__name__}: {exc}") from None
            if not reply:
                self._stop()
                raise ForkServerDied("the zygote exited")
            message = json.loads(reply)
            if "error" in message:
                raise ForkServerDied(message["error"])
            return int(message["pid"])

    def close(self) -> None:
        """Stop the zygote. One still starting (importing torch) is killed before the lock is taken:
        the lock is held by the thread waiting for its hello, which made Ctrl-C wait ~10 s."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        with self._lock:
            self._stop()

    def _start(self) -> None:
        self._stop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self._proc = subprocess.Popen(
                [*self._python, "-m", "evolve.sandbox.zygote", str(theirs.fileno())],
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
        if self._sock is not None:
            self._sock.close()  # EOF: an idle zygote exits on its own
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
    if warmup:
        module, _, function = warmup.partition(":")
        getattr(importlib.import_module(module), function)()
    gc.collect()
    gc.freeze()
    _collapse_heap()
    containment.isolate_namespaces()


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


class _Spare:
    """A supervisor forked ahead of time, waiting for its job: the fork and the supervisor's start-up
    (about 4 ms here) happen between jobs instead of on a job's critical path."""

    def __init__(self, parent_channel: socket.socket) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.pid = os.fork()
        if self.pid == 0:
            parent_channel.close()
            ours.close()
            self._wait_for_job(theirs)
        theirs.close()
        self._channel = ours

    def hand_over(self, fds: list[int]) -> bool:
        """Give the spare its job's descriptors; False if it is gone (it then exits or is dead)."""
        try:
            socket.send_fds(self._channel, [b"J"], fds)
            return True
        except OSError:
            return False
        finally:
            self._channel.close()

    @staticmethod
    def _wait_for_job(channel: socket.socket) -> NoReturn:
        containment.set_process_name("evolve-spare")
        try:
            message, fds, _, _ = socket.recv_fds(channel, 16, _MAX_FDS)
        except OSError:
            message = b""
        if not message:
            os._exit(0)  # the zygote went away before a job came
        channel.close()
        supervise.serve_forked(fds)


def _serve(sock: socket.socket) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished supervisors
    spare: _Spare | None = None
    while True:
        if spare is None:
            spare = _Spare(sock)  # forked while the previous job runs, ready for the next
        try:
            message, fds, _, _ = socket.recv_fds(sock, 16, _MAX_FDS)
        except OSError:
            return
        if not message:
            return  # the parent closed its end (or died)
        reply = _dispatch(sock, spare, fds)
        spare = None
        for fd in fds:
            os.close(fd)
        try:
            sock.send(json.dumps(reply).encode())
        except OSError:
            return  # the parent is gone


def _dispatch(sock: socket.socket, spare: _Spare, fds: list[int]) -> dict[str, Any]:
    """Hand a job to the spare (or, if it died, to a fresh one); the reply for the parent."""
    expected = 1 + len(supervise.FD_ROLES)
    if len(fds) != expected:
        return {"error": f"expected {expected} descriptors, got {len(fds)}"}
    try:
        if spare.hand_over(fds) or (spare := _Spare(sock)).hand_over(fds):
            return {"pid": spare.pid}
    except OSError as exc:
        return {"error": f"fork failed: {exc}"}
    return {"error": "the supervisor died before its job was handed over"}


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
    _serve(sock)
    return 0


def _tell(sock: socket.socket, message: dict[str, Any]) -> bool:
    """Send ``message`` to the parent; False if it is gone."""
    try:
        sock.send(json.dumps(message).encode())
        return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
