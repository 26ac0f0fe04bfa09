"""Private namespaces for one worker: its own pid, mount and uts namespaces, a minimal read-only
root, and an unprivileged uid.

Why by hand (ctypes) and not bubblewrap: a forkserver worker is a *fork* of a zygote that already
imported torch; bubblewrap can only wrap a new program (exec), which would throw the preloaded
interpreter away. Done in-process after the fork, the whole view costs about a millisecond.

The worker (root, still holding its capabilities) builds the view right after the fork:

- the supervisor has unshared the pid namespace, so the worker is pid 2 of its own, beside a
  trusted idle pid 1 (:func:`~evolve.sandbox.supervise.Worker`): it sees only its own processes in
  its own ``/proc``, and when the supervisor kills that pid 1 the kernel kills every process left in
  it. The job is not pid 1 itself because a namespace's pid 1 ignores the fatal signals it raises on
  itself (``abort()``, ``raise(SIGSEGV)``, ``kill(getpid(), SIGKILL)``) and would go on running;
- a tmpfs becomes the new root (chroot; :func:`prepare` builds it before the job is known,
  :func:`finish` adds the job's working directory), holding read-only binds of exactly what the
  Landlock read list grants (the Python installation, the project's packages, system libraries, a few /etc files,
  harmless devices) and, read-write, the job's working directory (a size-limited tmpfs the parent
  mounted: the disk quota). No host /tmp, /dev/shm, /run or socket file exists in it;
- then it becomes :data:`SANDBOX_UID`: Python lives under /root (mode 0700), but in this root every
  directory on the way to the installation is a 0755 tmpfs directory, so another uid reaches it.

Only the standard library may be imported here (see :mod:`containment`).
"""

from __future__ import annotations

import ctypes
import os
import platform
import select
import stat
from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

#: The uid and gid jobs run as ("nobody"): owns nothing on the host, reaches nothing outside the view.
SANDBOX_UID = 65534
_CLONE_NEWNS, _CLONE_NEWUTS, _CLONE_NEWPID = 0x00020000, 0x04000000, 0x20000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 16384, 1 << 18
_MNT_DETACH = 2
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY, _MOUNT_ATTR_NOSUID = 0x1, 0x2
_SYS = {arch: {"open_tree": 428, "move_mount": 429, "mount_setattr": 442} for arch in ("x86_64", "aarch64")}
_OPEN_TREE_CLONE, _MOVE_MOUNT_F_EMPTY_PATH, _AT_FDCWD = 1, 0x4, -100
#: Mounted fresh, never bound from the host.
_FRESH = ("/proc",)
#: sysfs without its submounts (the host's cgroup trees): CPU topology is all Python and torch read.
_FLAT = ("/sys",)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def available() -> str | None:
    """None when private namespaces can be built here, else why not (one short clause)."""
    if os.geteuid() != 0:
        return "evolve is not running as root (mount and pid namespaces need CAP_SYS_ADMIN)"
    if platform.machine() not in _SYS:
        return f"no syscall table for {platform.machine()}"
    return None


def new_pid_namespace() -> bool:
    """Make the caller's next child pid 1 of a new pid namespace (called by the supervisor)."""
    return bool(_libc.unshare(_CLONE_NEWPID) == 0)


def plan(readable: list[str], etc: str, dev: str, links_dir: str,
         hidden: list[str] | tuple[str, ...] = (), blanks: tuple[str, str] = ("", "")) -> dict[str, list[list[str]]]:
    """What the worker's root holds, worked out once by the parent: symlinks recreated as symlinks
    (their targets are placed on their own), directories and files bound read-only. Fewer mounts
    make a cheaper job, so the allowed /etc files arrive as one directory ``etc`` and the devices as
    one directory ``dev`` (copies the parent made), and ``links_dir`` (a directory of symlinks: the
    PYTHONPATH entry) is recreated link by link. Each ``hidden`` path, inside something bound, is
    covered by the blank of its kind (``blanks``: an empty directory, an empty file; see
    :func:`make_blanks`): stdlib-only jobs, :func:`~evolve.sandbox.containment.beyond_stdlib`."""
    links, dirs, files = [], [], []
    for name in sorted(os.listdir(links_dir)):
        path = os.path.join(links_dir, name)
        links.append([os.readlink(path), path])
    for path in _roots([p for p in readable if not p.startswith(("/etc/", "/dev/")) and p != links_dir]):
        if os.path.islink(path):
            links.append([os.readlink(path), path])
        elif os.path.isdir(path):
            dirs.append([path, path])
        else:
            files.append([path, path])
    dirs += [[etc, "/etc"], [dev, "/dev"]]
    # /etc's allowed directories are bound onto the copy's empty ones: copying /etc/alternatives
    # (~400 symlinks) took a second per sandbox on this machine's disk.
    dirs += [[p, p] for p in sorted(readable) if p.startswith("/etc/") and os.path.isdir(p) and not os.path.islink(p)]
    empty_dir, empty_file = blanks
    covered = [[empty_dir if os.path.isdir(p) else empty_file, p] for p in hidden]
    return {"links": links, "dirs": dirs, "files": files, "hidden": covered}


def make_blanks(directory: str) -> tuple[str, str]:
    """An empty directory and an empty file (0755, 0644) in ``directory``, to cover hidden paths."""
    empty_dir, empty_file = os.path.join(directory, "empty"), os.path.join(directory, "empty-file")
    os.makedirs(empty_dir, 0o755, exist_ok=True)
    os.chmod(directory, 0o755)
    os.chmod(empty_dir, 0o755)
    with open(empty_file, "w"):
        pass
    os.chmod(empty_file, 0o644)
    return empty_dir, empty_file


def make_dev(devices: list[str] | tuple[str, ...], directory: str) -> str:
    """Recreate the allowed character devices (same numbers, mode 0666) in ``directory``."""
    os.makedirs(directory, 0o755, exist_ok=True)
    os.chmod(directory, 0o755)
    for device in devices:
        target = os.path.join(directory, os.path.basename(device))
        if os.path.exists(device) and not os.path.exists(target):
            os.mknod(target, 0o666 | stat.S_IFCHR, os.stat(device).st_rdev)
            os.chmod(target, 0o666)
    return directory


def copy_etc(names: list[str] | tuple[str, ...], directory: str) -> str:
    """Copy the allowed /etc files (symlinks as symlinks) into ``directory`` (created 0755); the
    allowed directories become empty mount points."""
    import shutil

    os.makedirs(directory, 0o755, exist_ok=True)
    os.chmod(directory, 0o755)
    for name in names:
        target = os.path.join(directory, os.path.relpath(name, "/etc"))
        if not os.path.lexists(name) or os.path.lexists(target):
            continue
        if os.path.isdir(name) and not os.path.islink(name):
            os.makedirs(target, 0o755)  # a mount point: the directory itself is bound (see plan)
        else:
            shutil.copy2(name, target, follow_symlinks=False)
    return directory


def prepare(stage: str, view: dict[str, list[list[str]]]) -> None:
    """The job-independent part of the view, done before the job is known (a forkserver worker does
    it ahead of time, off the job's clock): private mount and uts namespaces whose root-to-be is
    ``view`` (see :func:`plan`), assembled on the empty directory ``stage`` (mounted over in the
    private namespace only). Raises OSError when a step fails: a job never runs with half a view."""
    _check(_libc.unshare(_CLONE_NEWNS | _CLONE_NEWUTS), "unshare")
    _check(_libc.sethostname(b"sandbox", 7), "sethostname")
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing done here propagates back to the host
    _mount(b"tmpfs", stage, b"tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=0755,size=1m")
    for target, path in view["links"]:
        os.makedirs(os.path.dirname(stage + path), 0o755, exist_ok=True)
        os.symlink(target, stage + path)
    for source, path in view["dirs"]:
        os.makedirs(stage + path, 0o755, exist_ok=True)
        _mount(source, stage + path, None, _MS_BIND | (0 if path in _FLAT else _MS_REC))
    _bind_files(stage, view["files"])
    for blank, path in view.get("hidden", []):  # after what they lie in: a blank covers its path
        _mount(blank, stage + path, None, _MS_BIND)
    os.makedirs(stage + "/proc", 0o555, exist_ok=True)
    _mount(b"proc", stage + "/proc", b"proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)


def finish(stage: str, extra_files: list[list[str]], workdir: str, tree: int) -> None:
    """The job's part: its extra read-only files (a script outside the working directory), the whole
    view made read-only, the working directory attached read-write, then chroot into the view.

    ``tree`` is the working directory as a detached mount (:func:`detach_tree`, made by the parent):
    a worker prepared before its job has a private copy of the mount table from before the job's
    tmpfs was mounted, where the directory is still the empty mount point."""
    _bind_files(stage, extra_files)
    os.makedirs(stage + workdir, 0o755, exist_ok=True)
    _read_only(stage)
    # after the read-only pass: the one writable place
    _syscall("move_mount", tree, b"", _AT_FDCWD, (stage + workdir).encode(), _MOVE_MOUNT_F_EMPTY_PATH)
    # chroot, not pivot_root: detaching the old root waits for an RCU grace period (measured here:
    # 8.7 ms median on a loaded 2-core box, a third of a forkserver job). The host's mounts stay in
    # this private namespace but out of reach: escaping a chroot needs CAP_SYS_CHROOT or a
    # descriptor outside it, and the worker keeps neither; /proc/self/mountinfo omits them.
    os.chdir(stage)
    os.chroot(".")
    os.chdir(workdir)


def _bind_files(stage: str, files: list[list[str]]) -> None:
    for source, path in files:
        os.makedirs(os.path.dirname(stage + path), 0o755, exist_ok=True)
        os.close(os.open(stage + path, os.O_CREAT | os.O_WRONLY, 0o644))
        _mount(source, stage + path, None, _MS_BIND)


# --- the parent's side: the job's working directory is a size-limited tmpfs (the disk quota) -----
def mount_workdir(path: str, size_mb: int, owner: int = SANDBOX_UID) -> bool:
    """Mount a tmpfs of ``size_mb`` owned by ``owner`` (the job's uid) on the empty directory ``path``.

    ``noexec``: nothing the job writes there can be executed or mapped as code -- a shared library
    smuggled in as bytes and loaded with ctypes would run native code in a task that times Python
    (rule ``exec-only-python``; Landlock already refuses execve there, not mmap)."""
    options = f"size={size_mb}m,mode=0700,uid={owner},gid={owner}".encode()
    return bool(_libc.mount(b"tmpfs", path.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, options) == 0)


def detach_tree(path: str) -> int:
    """A descriptor holding a detached copy of the mount at ``path`` (open_tree(OPEN_TREE_CLONE),
    Linux >= 5.2), which a worker in another mount namespace can attach (:func:`finish`)."""
    number = _SYS[platform.machine()]["open_tree"]
    fd = int(_libc.syscall(ctypes.c_long(number), _AT_FDCWD, path.encode(), _OPEN_TREE_CLONE | os.O_CLOEXEC))
    if fd < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"open_tree {path}: {os.strerror(errno)}")
    return fd


_TMPFS_MAGIC = 0x01021994


def is_tmpfs(path: str) -> bool:
    """Whether ``path`` lies on a tmpfs (statfs f_type; os.statvfs does not report it)."""
    buf = ctypes.create_string_buffer(256)
    if _libc.statfs(path.encode(), buf) != 0:
        return False
    return ctypes.c_long.from_buffer(buf).value == _TMPFS_MAGIC


def unmount(path: str) -> None:
    """Detach a working directory's tmpfs (its pages are freed with it)."""
    _libc.umount2(path.encode(), _MNT_DETACH)


def become_unprivileged() -> bool:
    """Switch to :data:`SANDBOX_UID` for good (drops every capability); True on success."""
    try:
        os.setgroups([])
        os.setresgid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
        os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
    except OSError:
        return False
    return os.getuid() == SANDBOX_UID


def supervisor_alive(fd: int) -> bool:
    """Whether the reader of pipe ``fd`` (the supervisor) still exists; pid 1 of a new pid namespace
    cannot ask through getppid(), which is 0 there."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return not any(event & select.POLLERR for _, event in poller.poll(0))


# --- building the view ---------------------------------------------------------------------------
def _roots(paths: list[str]) -> list[str]:
    """The paths to place, without those already inside another one, /proc skipped (mounted fresh)."""
    chosen: list[str] = []
    for path in sorted({os.path.normpath(p) for p in paths}):
        if path in _FRESH or any(path.startswith(root.rstrip("/") + "/") for root in chosen):
            continue
        if os.path.lexists(path):
            chosen.append(path)
    return chosen


def _read_only(root: str) -> None:
    """Every mount under ``root`` read-only and nosuid, in one call (mount_setattr, Linux >= 5.12)."""
    attr = _MountAttr(_MOUNT_ATTR_RDONLY | _MOUNT_ATTR_NOSUID, 0, 0, 0)
    _syscall("mount_setattr", -100, root.encode(), _AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr))


def _mount(source: str | bytes | None, target: str, fstype: bytes | None, flags: int, data: bytes | None = None) -> None:
    src = source.encode() if isinstance(source, str) else source
    if _libc.mount(src, target.encode(), fstype, flags, data) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source!r} on {target}: {os.strerror(errno)}")


def _syscall(name: str, *args: Any) -> None:
    number = _SYS[platform.machine()][name]
    _check(_libc.syscall(ctypes.c_long(number), *args), name)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")

