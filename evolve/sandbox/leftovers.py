"""What a sandbox killed with SIGKILL leaves behind, found and removed by the next sandbox.

A sandbox cleans up in :meth:`Sandbox.close` (or its finalizer); a process killed outright runs
neither, and leaves its jobs' working directories *mounted* (a tmpfs each, two more with the rooms
made ahead) and its root under the temp directory. The mounts are not only clutter: every worker's
private mount namespace starts as a copy of the host's, so each leftover mount is copied into every
later job (on this machine 137 leftovers from killed test runs made each worker's namespace ~5x
larger than it needs to be).

Each sandbox writes an owner file in its root (:func:`claim`): its pid, the start time of that
process and its pid namespace. A root whose owner is gone -- that pid is not running, or runs a
process started at another time (the pid was reused) -- is a leftover; a root owned by a process
of another pid namespace (another container sharing /tmp) is never touched, since its pids mean
nothing here. :func:`sweep` unmounts a dead root's job directories and removes the root if the
sandbox had made it; a root that was given to the sandbox keeps everything but the job directories.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

from . import rooms

OWNER_FILE = "owner.json"
#: Own roots are ``<tmp>/evolve-sandbox-XXXX`` (:func:`tempfile.mkdtemp`).
ROOT_PREFIX = "evolve-sandbox-"
_swept = False
_lock = threading.Lock()


def claim(root: Path, *, made: bool) -> None:
    """Mark ``root`` as this process's (``made``: the sandbox created it, so it may go whole)."""
    owner = {"pid": os.getpid(), "start": _start_time(os.getpid()), "pidns": _pid_namespace(), "made": made}
    (root / OWNER_FILE).write_text(json.dumps(owner))


def sweep_once() -> None:
    """:func:`sweep`, the first time a process makes a sandbox (it costs ~1 ms: one read of
    mountinfo and of the temp directory)."""
    global _swept
    with _lock:
        if _swept:
            return
        _swept = True
    sweep()


def sweep(temp_dir: str | None = None) -> list[Path]:
    """Unmount and remove what sandboxes of dead processes left; returns the roots found dead."""
    dead = {root for root in _mounted_roots() if _is_dead(root)}
    temp = Path(temp_dir or tempfile.gettempdir())
    try:
        entries = [p for p in temp.iterdir() if p.name.startswith(ROOT_PREFIX)]
    except OSError:
        entries = []
    dead |= {root for root in entries if _is_dead(root)}
    for root in sorted(dead):
        for job in root.glob("job-*"):
            rooms.remove_workdir(job)
        if _owner(root).get("made"):
            shutil.rmtree(root, ignore_errors=True)
    return sorted(dead)


def _mounted_roots() -> set[Path]:
    """Parents of mounted job directories (``.../job-*``) in this mount namespace."""
    roots: set[Path] = set()
    try:
        with open("/proc/self/mountinfo") as f:
            points = [_unescape(line.split()[4]) for line in f]
    except OSError:
        return roots
    for point in points:
        path = Path(point)
        if path.name.startswith("job-") and (path.parent / OWNER_FILE).exists():
            roots.add(path.parent)
    return roots


def _is_dead(root: Path) -> bool:
    owner = _owner(root)
    if not owner or owner.get("pidns") != _pid_namespace():
        return False  # not ours to judge (no owner file, or another container's)
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    start = _start_time(pid)
    return start is None or start != owner.get("start")


def _owner(root: Path) -> dict[str, object]:
    try:
        data = json.loads((root / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), None if no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
    except OSError:
        return None
    return int(fields[19])  # field 22 of stat(5); fields[0] is field 3


def _pid_namespace() -> int:
    return os.stat("/proc/self/ns/pid").st_ino


def _unescape(point: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), point)
