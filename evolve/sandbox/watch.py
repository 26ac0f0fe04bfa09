"""The zygote's watch over its jailed workers: one event loop in place of a supervisor process per job.

A jailed worker is pid 2 of its own pid namespace beside an idle init (:func:`supervise.spawn_init`):
whatever the job leaves behind stays in that namespace, and killing the init kills it. So a jailed
job needs no subreaper of its own, and the zygote forks the worker itself and watches it from one
loop. The torch-sized zygote is forked once per job instead of twice (a spare supervisor, then its
worker): the supervisor's fork, copy-on-write faults and exit were a fifth of a candidate's CPU
(``bench/p1_forkserver_overhead.py``). Unjailed workers, whose orphans would reach the zygote with
no way to tell whose they are, keep a supervisor each (:func:`evolve.sandbox.zygote._make_spare`).

The zygote still never sees a job: the parent hands the job to the worker directly, then tells the
zygote only the worker's pid, when it handed the job over, the timeout and the report pipe
(:class:`Handed`). For each job the watch collects the worker's setup messages, kills it at its
deadline and, once it has ended, does what a supervisor does (:func:`supervise.supervise`): kills
its process group, reaps it with ``wait4`` (exit, CPU, ``ru_maxrss``), ends its namespace's init --
before the report when the job left a process behind, so that nothing of the job outlives its
report -- and writes the same report.

Messages from the parent, one SOCK_SEQPACKET datagram each: ``S`` (make a spare; the reply is
``{"pid": worker}`` and the parent's end of the worker's channel), ``J`` + JSON (:class:`Handed`;
the report pipe attached) and ``X`` + JSON ``{"pid": ...}`` (a spare the parent gave up: it had
died before its job). Nothing here may block on a job: a slow job must never delay another's report.
"""

from __future__ import annotations

import ctypes
import json
import math
import os
import select
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

from . import containment, supervise

_CLONE_NEWPID = 0x20000000
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass
class Handed:
    """What the parent tells the zygote about a job it handed to a spare worker."""

    pid: int
    start: float  #: time.monotonic() just before the hand-over (CLOCK_MONOTONIC is system-wide)
    timeout_s: float

    def message(self) -> bytes:
        return b"J" + json.dumps({"pid": self.pid, "start": self.start, "timeout_s": self.timeout_s}).encode()


@dataclass
class _Watched:
    """One worker, from its fork until it has been reported and its init reaped."""

    pid: int
    pidfd: int
    setup_r: int
    init: int
    init_pipe: int
    setup: bytearray = field(default_factory=bytearray)
    held: int | None = None  # its mount namespace, whose teardown must not be on the job's clock
    report_fd: int | None = None  # set when its job came (-1: the parent gave it up, nobody reads)
    start: float = 0.0
    deadline: float = math.inf
    timed_out: bool = False
    ended: tuple[int, Any, float] | None = None  # wait4's status and usage, and when
    orphans: bool = False  # it left processes behind: the report waits for its init's end
    init_pidfd: int = -1  # set once the init has been killed
    init_gone: bool = False
    reported: bool = False


class Watch:
    """The jailed zygote's loop: makes spare workers on request and watches each to its report."""

    def __init__(self, parent: socket.socket, jail_spec: dict[str, Any], landlock: dict[str, list[str]] | None) -> None:
        self._parent, self._jail, self._landlock = parent, jail_spec, landlock
        self._own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self._poll = select.poll()
        self._poll.register(parent, select.POLLIN)
        self._by_fd: dict[int, _Watched] = {}  # pidfd, setup pipe and init pidfd -> their worker
        self._workers: dict[int, _Watched] = {}  # pid -> worker, until reported and its init reaped
        self._dropped: set[int] = set()  # closed during this round of events: theirs are stale

    def serve(self) -> None:
        """Answer the parent until it closes its end (EOF); the workers die with the zygote then."""
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # workers and inits are reaped here, with wait4
        while True:
            self._dropped.clear()
            for fd, _ in self._poll.poll(self._next_deadline_ms()):
                if fd in self._dropped:
                    continue  # its number may already be another descriptor's, with events to come
                if fd == self._parent.fileno():
                    if not self._message():
                        return
                elif (worker := self._by_fd.get(fd)) is not None:
                    self._event(worker, fd)
            self._expire()

    # --- the parent's messages -------------------------------------------------------------------
    def _message(self) -> bool:
        try:
            message, fds, _, _ = socket.recv_fds(self._parent, 4096, 1)
        except OSError:
            return False
        if not message:
            return False
        kind, body = message[:1], message[1:]
        if kind == b"S":
            return self._reply(*self._spare())
        if kind == b"J" and fds:
            self._handed(json.loads(body), fds[0])
        elif kind == b"X":
            self._forget(json.loads(body)["pid"])
        for fd in fds[1:]:
            os.close(fd)
        return True

    def _reply(self, reply: dict[str, Any], fds: list[int]) -> bool:
        try:
            socket.send_fds(self._parent, [json.dumps(reply).encode()], fds)
        except OSError:
            return False  # the parent is gone
        finally:
            for fd in fds:
                os.close(fd)
        return True

    def _handed(self, handed: dict[str, Any], report_fd: int) -> None:
        worker = self._workers.get(handed["pid"])
        if worker is None or worker.report_fd is not None:
            os.close(report_fd)  # not a spare of ours: no report comes, the parent reads a crash
            return
        worker.report_fd, worker.start = report_fd, float(handed["start"])
        worker.deadline = worker.start + float(handed["timeout_s"])
        self._settle(worker)  # it may have ended already

    def _forget(self, pid: int) -> None:
        """A spare the parent gave up (it had died before its job could be handed over)."""
        worker = self._workers.get(pid)
        if worker is not None and worker.report_fd is None:
            worker.report_fd = -1
            self._settle(worker)

    # --- making a spare ----------------------------------------------------------------------------
    def _spare(self) -> tuple[dict[str, Any], list[int]]:
        """Fork a worker as pid 2 of a new pid namespace, beside its init; it sets itself up and
        waits for its job on the channel whose other end goes to the parent."""
        if _libc.unshare(_CLONE_NEWPID) != 0:
            return {"error": f"could not create the job's pid namespace: {os.strerror(ctypes.get_errno())}"}, []
        try:
            init, init_pipe = supervise.spawn_init(reap=False)
        except OSError as exc:
            self._leave_pid_namespace()
            return {"error": f"could not start the namespace's init: {exc}"}, []
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        setup_r, setup_w = os.pipe()
        zygote = os.getpid()
        try:
            pid = os.fork()
        except OSError as exc:
            pid, error = -1, exc
        if pid == 0:
            self._become_worker(zygote, ours, theirs, setup_w)
        self._leave_pid_namespace()
        theirs.close()
        os.close(setup_w)
        if pid < 0:
            ours.close()
            os.close(setup_r)
            supervise.kill(init)
            os.waitpid(init, 0)
            os.close(init_pipe)
            return {"error": f"fork failed: {error}"}, []
        worker = _Watched(pid, os.pidfd_open(pid), setup_r, init, init_pipe)
        self._workers[pid] = worker
        for fd in (worker.pidfd, worker.setup_r):
            self._by_fd[fd] = worker
            self._poll.register(fd, select.POLLIN)
        return {"pid": pid}, [ours.detach()]

    def _become_worker(self, zygote: int, ours: socket.socket, theirs: socket.socket, setup_w: int) -> NoReturn:
        """In the forked worker: keep only its channel, its setup pipe and 0-2 (not the parent's
        socket, nor another worker's pipes and pidfds), then set up and wait for the job. A script
        worker leaves by :class:`supervise.RunScript`: nothing on its way up may clean anything."""
        try:
            ours.close()
            keep = sorted({0, 1, 2, theirs.fileno(), setup_w})
            for low, high in zip(keep, [*keep[1:], 1 << 20]):
                os.closerange(low + 1, high)
            containment.set_process_name("evolve-spare")
        except Exception:
            os._exit(126)  # never back into the zygote's loop
        supervise.worker_main(self._jail, theirs, setup_w, supervisor=zygote, landlock=self._landlock, rehearse=True)

    def _leave_pid_namespace(self) -> None:
        """Fork into the zygote's own pid namespace again (the next unshare needs it)."""
        if _libc.setns(self._own_pid_ns, _CLONE_NEWPID) != 0:
            raise OSError(ctypes.get_errno(), "setns back into the zygote's pid namespace")

    # --- a worker's events -------------------------------------------------------------------------
    def _event(self, worker: _Watched, fd: int) -> None:
        if fd == worker.setup_r:
            self._read_setup(worker)
        elif fd == worker.pidfd:
            self._ended(worker)
        elif fd == worker.init_pidfd:
            self._reap_init(worker)

    def _read_setup(self, worker: _Watched) -> None:
        try:
            data = os.read(worker.setup_r, 65536)
        except BlockingIOError:
            return
        if not data:
            self._drop(worker.setup_r)
            worker.setup_r = -1
            return
        worker.setup += data
        if worker.held is None and b"\n" in worker.setup and b"setup_error" not in worker.setup:
            # prepared: holding its mount namespace puts the namespace's teardown (an RCU grace
            # period, ~8 ms on a loaded box) after the report instead of on the job's clock
            worker.held = supervise.open_namespace(worker.pid)

    def _ended(self, worker: _Watched) -> None:
        """The worker has ended (or was killed): reap it, end its namespace, report when it can."""
        if worker.setup_r >= 0:  # what it wrote before it ended, if not yet read
            os.set_blocking(worker.setup_r, False)
            while worker.setup_r >= 0:
                before = len(worker.setup)
                self._read_setup(worker)
                if len(worker.setup) == before:
                    break
            if worker.setup_r >= 0:
                self._drop(worker.setup_r)
                worker.setup_r = -1
        supervise.kill(-worker.pid)  # its group; it is at worst a zombie, so the pgid cannot be reused
        _, status, usage = os.wait4(worker.pid, 0)
        worker.ended = (status, usage, time.monotonic())
        self._drop(worker.pidfd)
        worker.pidfd = -1  # its number may be the init's pidfd next
        worker.orphans = bool(supervise.children(worker.init))
        self._end_init(worker)
        self._settle(worker)

    def _end_init(self, worker: _Watched) -> None:
        """Kill the namespace's init: the kernel then kills whatever is left in the namespace, and
        the init's pidfd reads ready once all of it is gone."""
        supervise.kill(worker.init)
        worker.init_pidfd = os.pidfd_open(worker.init)
        self._by_fd[worker.init_pidfd] = worker
        self._poll.register(worker.init_pidfd, select.POLLIN)

    def _reap_init(self, worker: _Watched) -> None:
        os.waitpid(worker.init, 0)
        self._drop(worker.init_pidfd)
        worker.init_pidfd = -1
        os.close(worker.init_pipe)
        worker.init_gone = True
        self._settle(worker)

    def _settle(self, worker: _Watched) -> None:
        """Report once the worker has ended and its job came (and, if it left processes behind,
        once its namespace is gone); forget it once reported and its init reaped."""
        ready = worker.ended is not None and worker.report_fd is not None and (worker.init_gone or not worker.orphans)
        if ready and not worker.reported:
            assert worker.ended is not None and worker.report_fd is not None
            status, usage, ended_at = worker.ended
            if worker.report_fd >= 0:
                supervise.write_all(worker.report_fd, supervise.report(
                    status, usage, max(0.0, ended_at - worker.start), worker.timed_out, _setup(worker)))
                os.close(worker.report_fd)
            worker.reported = True
            if worker.held is not None:
                os.close(worker.held)  # its mount namespace is torn down now, after the report
                worker.held = None
        if worker.reported and worker.init_gone:
            del self._workers[worker.pid]

    def _expire(self) -> None:
        """SIGKILL every worker whose job is past its deadline."""
        now = time.monotonic()
        for worker in self._workers.values():
            if worker.ended is None and worker.deadline <= now:
                supervise.kill(worker.pid)
                worker.timed_out, worker.deadline = True, math.inf

    def _next_deadline_ms(self) -> int:
        deadline = min((w.deadline for w in self._workers.values() if w.ended is None), default=math.inf)
        if deadline == math.inf:
            return -1
        return max(0, math.ceil((deadline - time.monotonic()) * 1000))

    def _drop(self, fd: int) -> None:
        self._poll.unregister(fd)
        del self._by_fd[fd]
        os.close(fd)
        self._dropped.add(fd)


def _setup(worker: _Watched) -> dict[str, Any]:
    """The worker's setup messages; a line cut short (the worker killed while writing it) fails
    that job's report, never the loop that watches every job."""
    try:
        return supervise.parse_setup(bytes(worker.setup)) or json.loads(supervise.DIED_IN_SETUP)
    except ValueError:
        return {"setup_error": "the worker's setup message was cut short"}
