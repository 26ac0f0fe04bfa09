"""A job's room -- its working directory (a tmpfs of the disk quota) and its cgroups -- made ahead.

Making a room took ~0.7 ms of the parent's time per forkserver job on this machine (mkdtemp, the
tmpfs mount, two cgroup mkdirs and their settings), 5 % of a candidate. A sandbox keeps a few rooms
ready, made while a job runs (right after its hand-over, when the parent only waits for it; see
:meth:`Rooms.refill`), so the next job finds its room made. What differs per job is written when a
room is taken: the cgroups' limits; a job whose disk quota differs from the sandbox's gets a new
room. Unused rooms are removed by :meth:`Rooms.close`; a room half made when an exception (Ctrl-C)
strikes is removed at once.

Only trusted code runs here; nothing in a room has been seen by a job before it is taken.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

from . import cgroups, jail
from .job import Limits

Cgroups = dict[str, cgroups.JobCgroup]
#: Rooms kept ready: one for the next job, one for a second thread's (runs may be concurrent).
READY = 2


class Room:
    """One job's working directory and cgroups (limits not yet written while it waits)."""

    def __init__(self, workdir: Path, groups: Cgroups, disk_mb: int | None) -> None:
        self.workdir, self.groups, self.disk_mb = workdir, groups, disk_mb

    def remove(self) -> None:
        for group in self.groups.values():
            group.remove()
        remove_workdir(self.workdir)


class Rooms:
    """The rooms of one sandbox's jobs, under ``root``; thread-safe."""

    def __init__(self, root: Path, layers: dict[str, bool], disk_mb: int | None) -> None:
        self._root, self._layers, self._disk_mb = root, layers, disk_mb
        self._lock = threading.Lock()
        self._ready: list[Room] = []
        self._making = 0
        self._closed = False

    def take(self, limits: Limits) -> Room:
        """A room for a job with ``limits``: a ready one if its disk quota fits, else a new one."""
        with self._lock:
            ready = self._ready if limits.disk_mb == self._disk_mb else []
            room = ready.pop() if ready else None
        if room is None:
            room = self._make(limits.disk_mb)
        try:
            room.groups = limited(room.groups, limits)
        except BaseException:
            room.remove()
            raise
        return room

    def cgroups(self, limits: Limits) -> Cgroups:
        """New cgroups with ``limits`` (for a job run in a working directory of the caller's)."""
        return limited(self._new_cgroups(), limits)

    def refill(self) -> None:
        """Make rooms until :data:`READY` are ready (or being made by another thread). One that cannot
        be made now is not an error here: :meth:`take` makes it, or says why not, for its job."""
        while True:
            with self._lock:
                if self._closed or len(self._ready) + self._making >= READY:
                    return
                self._making += 1
            try:
                room = self._make(self._disk_mb)
            except OSError:
                return
            finally:
                with self._lock:
                    self._making -= 1
            with self._lock:
                if not self._closed:
                    self._ready.append(room)
                    continue
            room.remove()  # the sandbox closed meanwhile
            return

    def close(self) -> None:
        """Remove every ready room; none is made after this."""
        with self._lock:
            self._closed = True
            rooms, self._ready = self._ready, []
        for room in rooms:
            room.remove()

    def new_workdir(self, disk_mb: int | None) -> Path:
        """A fresh private directory under the root: a tmpfs of ``disk_mb`` owned by the job's uid
        where the host allows."""
        path = Path(tempfile.mkdtemp(prefix="job-", dir=self._root))
        if disk_mb and self._layers["disk_quota"]:
            owner = jail.SANDBOX_UID if self._layers["namespaces"] else os.geteuid()  # the job's uid
            if not jail.mount_workdir(str(path), disk_mb, owner):
                path.rmdir()
                raise OSError(f"could not mount the job's {disk_mb} MB working directory at {path}")
        elif self._layers["namespaces"]:
            os.chown(path, jail.SANDBOX_UID, jail.SANDBOX_UID)
        return path

    def _make(self, disk_mb: int | None) -> Room:
        workdir = self.new_workdir(disk_mb)
        try:
            return Room(workdir, self._new_cgroups(), disk_mb)
        except BaseException:
            remove_workdir(workdir)
            raise

    def _new_cgroups(self) -> Cgroups:
        groups: Cgroups = {}
        try:
            for kind in ("pids", "memory"):
                if self._layers[f"{kind}_cgroup"] and (group := cgroups.JobCgroup.create(kind)) is not None:
                    groups[kind] = group
        except BaseException:
            for group in groups.values():
                group.remove()
            raise
        return groups


def limited(groups: Cgroups, limits: Limits) -> Cgroups:
    """The cgroups that serve a job with ``limits``, each given its limit (no process limit: no pids
    cgroup); one whose limit cannot be written is removed, as if the host had none."""
    kept: Cgroups = {}
    for kind, group in groups.items():
        limit = limits.processes if kind == "pids" else limits.memory_mb
        if (kind == "memory" or limit) and group.set_limit(limit):
            kept[kind] = group
        else:
            group.remove()
    return kept


def quota_tmpfs(path: Path) -> bool:
    """Whether ``path`` is a working directory's own tmpfs (a mount point), not a host directory."""
    return os.path.ismount(path) and jail.is_tmpfs(str(path))


def remove_workdir(path: Path) -> None:
    if quota_tmpfs(path):
        jail.unmount(str(path))
    shutil.rmtree(path, ignore_errors=True)
