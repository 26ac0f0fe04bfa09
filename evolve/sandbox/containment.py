"""Kernel-level containment of one sandboxed worker, and the trusted set-up it needs.

Candidate code is untrusted LLM output and evolve runs as root here, so rlimits alone are not
enough. The parent (trusted) prepares a scrubbed environment, the Landlock path lists, the private
view (:mod:`jail`) and per-job cgroups (:mod:`cgroups`); :func:`apply` then runs inside the freshly
forked worker, before any job code, and confines it as far as the kernel allows -- cgroups, rlimits,
namespaces and the view, uid 65534, no_new_privs, seccomp, Landlock, no capabilities -- reporting
what it managed to switch on.

Only the standard library may be imported here: fresh mode runs the supervisor (which imports this
module) as ``python -I -S supervise.py``, where neither site-packages nor ``evolve`` is importable.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import resource
import stat
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__:
    from . import cgroups, jail
else:  # imported by the plain-file supervisor (see supervise.py)
    import cgroups  # type: ignore[no-redef]
    import jail  # type: ignore[no-redef]

_libc = ctypes.CDLL(None, use_errno=True)

# prctl(2) options
PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_NAME = 15
_PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CLONE_NEWIPC, _CLONE_NEWNET = 0x08000000, 0x40000000
#: Per-IPC-namespace limits that make SysV shared memory, queues, semaphores and POSIX queues
#: impossible to create.
_NO_IPC = (
    ("/proc/sys/kernel/shmmni", "0"),
    ("/proc/sys/kernel/msgmni", "0"),
    ("/proc/sys/kernel/sem", "0 0 0 0"),
    ("/proc/sys/fs/mqueue/queues_max", "0"),
)

# Landlock (include/uapi/linux/landlock.h); syscall numbers are shared by x86-64 and asm-generic.
_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FS_FILE_ONLY = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
_FS_READ = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1

#: Outside the Python installation, what an interpreter (and torch) needs to read. Not all of /dev:
#: /dev/shm holds other processes' shared memory (torch tensors among them).
_SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/proc", "/sys")
#: Of /etc only what the dynamic loader, libc and Python's stdlib read; never shadow, ssh keys,
#: pip or git configuration (which may hold tokens), or anything else the host keeps there.
ETC_READ = (
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/timezone",
    "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/host.conf", "/etc/hosts", "/etc/mime.types",
    "/etc/alternatives", "/etc/os-release",
)
#: Device nodes a sandboxed process may open for reading and writing.
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
_ENV_PASS = ("PATH", "LANG", "LANGUAGE", "TZ")


def prctl(option: int, arg: int = 0) -> bool:
    return bool(_libc.prctl(option, ctypes.c_ulong(arg), 0, 0, 0) == 0)


def set_process_name(name: str) -> None:
    """Name this process in ps/top (``comm``): forked helpers otherwise all look like the zygote."""
    _libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


# --- parent side --------------------------------------------------------------------------------
def scrubbed_env(home: str, pythonpath: str | None = None) -> dict[str, str]:
    """An allowlisted environment: no API keys, tokens or proxies can reach a sandboxed process."""
    env = {k: v for k, v in os.environ.items() if k in _ENV_PASS or k.startswith("LC_")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    env.update(
        HOME=home,
        TMPDIR=home,
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


PACKAGES = ("evolve", "evaluators")


def package_dirs() -> dict[str, str]:
    """Where this process imported the project's packages from."""
    import importlib.util

    found = {}
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            found[package] = list(spec.submodule_search_locations)[0]
    return found


def pin_packages(directory: Path) -> str:
    """Make ``directory`` a PYTHONPATH entry holding only links to this process's project packages.

    Sandboxed interpreters then import the very ``evolve`` and ``evaluators`` the parent runs,
    whichever copy (a clone, an editable or a plain install) site-packages would otherwise offer,
    without the repository root (and its ``runs/``) becoming readable.
    """
    directory.mkdir(mode=0o755, exist_ok=True)
    directory.chmod(0o755)  # bound into the job's view, where the job's uid must traverse it
    for package, path in package_dirs().items():
        link = directory / package
        if not link.is_symlink():
            link.symlink_to(path, target_is_directory=True)
    return str(directory)


def readable_paths() -> list[str]:
    """Directories a sandboxed Python may read: the installation, the two packages, system dirs.

    The repository root is deliberately absent (``runs/`` holds archives and caches); the editable
    install's finder maps ``evolve`` and ``evaluators`` straight to their package directories.
    """
    import site
    import sysconfig

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths.update(sysconfig.get_paths().values())
    paths.update(site.getsitepackages())
    paths.update(package_dirs().values())
    paths.update(_SYSTEM_READ)
    paths.update(ETC_READ)
    return sorted(p for p in paths if os.path.exists(p))


#: Standard-library extension modules a stdlib-only job does not get: a foreign-function interface
#: (ctypes: call any native library the job can read, or jump into machine code it wrote into
#: memory) and CPython's own test hooks (raw memory and interpreter internals).
NATIVE_DOORS = ("_ctypes", "_ctypes_test", "_test", "_xx")


def beyond_stdlib() -> list[str]:
    """What a stdlib-only job must not see (rule ``stdlib-only``): every site-packages directory
    (numpy, torch and every other installed package, which would let a task that times a Python
    program time native code instead) and the :data:`NATIVE_DOORS` among the standard library's
    extension modules. Hidden from the job's view (:func:`jail.plan`), which needs the namespaces."""
    import site
    import sysconfig

    hidden = {p for p in site.getsitepackages() if os.path.isdir(p)}
    dynload = os.path.join(sysconfig.get_path("platstdlib"), "lib-dynload")
    if os.path.isdir(dynload):
        hidden.update(os.path.join(dynload, name) for name in os.listdir(dynload)
                      if name.endswith(".so") and name.startswith(NATIVE_DOORS))
    return sorted(hidden)


def blank(path: str) -> bool:
    """Whether ``path``, as the job sees it, is an empty directory or an empty file (hidden)."""
    try:
        return not os.listdir(path) if os.path.isdir(path) else os.path.getsize(path) == 0
    except OSError:
        return True  # not there at all: hidden too


def executables() -> list[str]:
    """The only files a job may execute: this Python and its ELF program interpreter (the dynamic
    loader, which the kernel opens for execution too).

    A job that may exec whatever it can read can hand its work to another language -- compile C with
    the host's gcc, or run awk, perl or node -- and a task that times "the program" would time
    something that is not the Python program it archives (rule ``exec-only-python``). The job's own
    working directory grants no execution either, so a binary written or copied there cannot run.
    Python starting Python (multiprocessing's spawn, ``subprocess.run([sys.executable, ...])``) works.
    """
    python = os.path.realpath(sys.executable)
    loader = _elf_interpreter(python)
    return [python] + ([os.path.realpath(loader)] if loader else [])


def _elf_interpreter(path: str) -> str | None:
    """The PT_INTERP path of an ELF executable (None for a static or non-ELF file)."""
    try:
        with open(path, "rb") as f:
            header = f.read(64)
            if header[:4] != b"\x7fELF":
                return None
            wide, order = header[4] == 2, "<" if header[5] == 1 else ">"
            table = struct.unpack_from(order + ("Q" if wide else "I"), header, 0x20 if wide else 0x1C)[0]
            size, count = struct.unpack_from(order + "HH", header, 0x36 if wide else 0x2A)
            f.seek(table)
            entries = f.read(size * count)
            for i in range(count):
                entry = entries[i * size:(i + 1) * size]
                if struct.unpack_from(order + "I", entry, 0)[0] == 3:  # PT_INTERP
                    field = order + ("Q" if wide else "I")
                    offset = struct.unpack_from(field, entry, 8 if wide else 4)[0]
                    length = struct.unpack_from(field, entry, 32 if wide else 16)[0]
                    f.seek(offset)
                    return f.read(length).rstrip(b"\0").decode()
    except (OSError, struct.error, UnicodeDecodeError):
        return None
    return None


# --- worker side --------------------------------------------------------------------------------
@dataclass
class Prepared:
    """What :func:`apply` needs that does not depend on the job, made by a worker before its job is
    known (:func:`prepare`), so that it is off the job's clock: the Landlock ruleset with the rules
    every job gets, the seccomp filters, the highest capability number. Nothing here confines yet;
    :func:`apply` still takes every step, in its order, when the job comes.

    Measured in the first job of a fresh fork of the torch zygote, where every first touch of a page
    is a copy-on-write fault: Landlock's ~20 rules took 0.7 ms, assembling the seccomp program 0.4 ms.
    """

    granted: dict[str, list[str]] = field(default_factory=dict)  # what ``ruleset`` grants: read, devices, exec
    ruleset: int = -1  # a Landlock ruleset descriptor (not yet enforced), -1 for none
    seccomp: dict[bool, Any] = field(default_factory=dict)  # deny_memfd -> (filter, its array)
    last_cap: int = 63

    def take_ruleset(self, landlock: dict[str, list[str]]) -> int:
        """The ruleset, if it grants no more than ``landlock`` (the job's lists) does; else -1
        (and it is closed: a job is never given a path it was not meant to have)."""
        ruleset, self.ruleset = self.ruleset, -1
        if ruleset >= 0 and any(not set(paths) <= set(landlock.get(kind, ())) for kind, paths in self.granted.items()):
            os.close(ruleset)
            return -1
        return ruleset


def prepare(landlock: dict[str, list[str]] | None, root: str | None) -> Prepared:
    """The job-independent part of the confinement (see :class:`Prepared`). ``landlock``: the read
    and device lists every job gets; ``root``: the directory that becomes the worker's root (its
    view), where the paths are looked up as the job will see them, or None for the host's root."""
    prepared = Prepared(seccomp={deny: _seccomp_filter(deny) for deny in (False, True)}, last_cap=_last_cap())
    if landlock is not None and landlock_abi() >= 1:
        wanted = {kind: list(landlock.get(kind, ())) for kind in ("read", "devices", "exec")}
        prepared.ruleset = _ruleset_ahead(wanted, root)
        prepared.granted = wanted if prepared.ruleset >= 0 else {}
    return prepared


def _ruleset_ahead(wanted: dict[str, list[str]], root: str | None) -> int:
    """A ruleset holding ``wanted``'s rules, paths resolved under ``root``; -1 if it cannot be made."""
    try:
        directory = None if root is None else os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return -1
    try:
        if directory is not None:
            os.close(_open_path("/", directory))  # openat2 (Linux >= 5.6) works here
        ruleset = _new_ruleset(landlock_abi())
        _add_rules(ruleset, landlock_abi(), wanted, directory)  # a rule that fails only grants less
        return ruleset
    except OSError:
        return -1
    finally:
        if directory is not None:
            os.close(directory)


def apply(spec: dict[str, Any], *, tree: int = -1, prepared: Prepared | None = None) -> dict[str, bool]:
    """Confine the calling (freshly forked, single-threaded) worker; return what is active.

    ``tree``: with a jail, a descriptor of the working directory's detached mount (closed here).
    ``prepared``: the job-independent parts, made ahead (:func:`prepare`); None makes them here.
    Order matters: joining cgroups, creating namespaces, building the view and dropping the
    capability bounding set need root and come first; then the worker becomes the sandbox uid;
    seccomp and Landlock need no_new_privs.
    """
    if prepared is None:
        prepared = prepare(None, None)
    limits = spec["limits"]
    os.chdir(spec["workdir"])
    joined = {kind: bool(path) and cgroups.join(path) for kind, path in spec["cgroups"].items()}
    state = {"pids_cgroup": joined.get("pids", False), "memory_cgroup": joined.get("memory", False)}
    jailed = spec["jail"] is not None
    nproc = not state["pids_cgroup"]
    state["rlimit_nproc"] = _set_rlimits(limits, relative_memory=spec["relative_memory"], nproc=nproc, jailed=jailed)
    # no interfaces, no abstract unix sockets; no SysV shared memory or POSIX queues of others
    host = spec["host_namespaces"]
    state["netns"] = _namespace("net") != host["net"] or _libc.unshare(_CLONE_NEWNET) == 0
    state["ipcns"] = _namespace("ipc") != host["ipc"] or _new_ipc_namespace()
    if jailed:
        jail.finish(spec["jail"]["stage"], spec["jail"]["extra"], spec["workdir"], tree)  # prepared: see supervise.Worker
        os.close(tree)
    state["private_view"] = jailed
    if spec.get("stdlib_only"):  # checked in the job's own view, not taken on trust
        state["stdlib_only"] = jailed and all(blank(path) for path in spec["stdlib_only"])
    state["capabilities_dropped"] = _drop_bounding_set(prepared.last_cap)
    state["unprivileged_uid"] = jailed and jail.become_unprivileged()
    state["no_new_privs"] = prctl(_PR_SET_NO_NEW_PRIVS, 1)
    state["seccomp"] = _install_filter(prepared.seccomp[spec["deny_memfd"]])
    state["memfd_denied"] = spec["deny_memfd"] and state["seccomp"]
    state["landlock"], state["landlock_scoped"] = _landlock(spec["landlock"], prepared)
    state["capabilities_dropped"] = _clear_capabilities() and state["capabilities_dropped"]
    state["not_dumpable"] = make_undumpable()
    return state


def _new_ipc_namespace() -> bool:
    if _libc.unshare(_CLONE_NEWIPC) != 0:
        return False
    _disable_ipc()
    return True


def namespaces() -> dict[str, int]:
    """This process's network and IPC namespaces (inode numbers)."""
    return {kind: _namespace(kind) for kind in ("net", "ipc")}


def _namespace(kind: str) -> int:
    return os.stat(f"/proc/self/ns/{kind}").st_ino


def isolate_namespaces() -> None:
    """Move the calling zygote into new network and IPC namespaces with IPC objects disabled.

    Its workers inherit both, which saves each job the ~4 ms (measured here) of creating and
    tearing down namespaces of its own; with no IPC object creatable, jobs sharing the namespace
    cannot leave SysV segments or queues behind for one another.
    """
    if _libc.unshare(_CLONE_NEWNET | _CLONE_NEWIPC) != 0:
        return  # not permitted: every worker then tries on its own
    _disable_ipc()


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _disable_ipc() -> None:
    for path, value in _NO_IPC:
        with contextlib.suppress(OSError):
            _write(path, value)


def make_undumpable() -> bool:
    """Hide this process's memory from other same-uid processes (/proc/PID/mem, ptrace)."""
    return prctl(_PR_SET_DUMPABLE, 0)


def die_with_parent(parent: int, signum: int = 9) -> None:
    """Send this process ``signum`` (SIGKILL) when ``parent`` dies; exit now if it already has."""
    prctl(PR_SET_PDEATHSIG, signum)
    if os.getppid() != parent:
        os._exit(125)


def _set_rlimits(limits: dict[str, Any], *, relative_memory: bool, nproc: bool, jailed: bool) -> bool:
    """Apply the job's rlimits; returns whether RLIMIT_NPROC was set (it never binds uid 0, so only
    for a worker that is or will become another uid)."""
    mib = 1 << 20
    cpu = limits["cpu_s"]  # resolved by the parent
    wanted = {resource.RLIMIT_CPU: (cpu, cpu + 1), resource.RLIMIT_CORE: (0, 0)}
    if limits["memory_mb"]:
        # forkserver workers start with the zygote's mappings: the budget is on top of those.
        base = _vm_size() if relative_memory else 0
        wanted[resource.RLIMIT_AS] = (base + limits["memory_mb"] * mib,) * 2
    if limits["file_size_mb"]:
        wanted[resource.RLIMIT_FSIZE] = (limits["file_size_mb"] * mib,) * 2
    if limits["open_files"]:
        wanted[resource.RLIMIT_NOFILE] = (limits["open_files"],) * 2
    use_nproc = nproc and bool(limits["processes"]) and (os.geteuid() != 0 or jailed)
    if use_nproc:
        wanted[resource.RLIMIT_NPROC] = (limits["processes"],) * 2
    for which, (soft, hard) in wanted.items():
        _, old_hard = resource.getrlimit(which)
        if old_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, old_hard), min(hard, old_hard)
        resource.setrlimit(which, (soft, hard))
    return use_nproc


def _vm_size() -> int:
    """VmSize in bytes, from /proc/self/statm (the same counter; status costs more to make and read)."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def _syscall(number: int, *args: Any) -> int:
    result = _libc.syscall(ctypes.c_long(number), *args)
    if result < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return int(result)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is unavailable."""
    try:
        flags = ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION)
        return _syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), flags)
    except OSError:
        return 0


def _landlock(paths: dict[str, list[str]], prepared: Prepared) -> tuple[bool, bool]:
    """Restrict the filesystem to the allowlists, forbid TCP and (ABI >= 6) outside signals and
    abstract unix sockets. Returns (restricted, scoped). The rules ``prepared`` holds already are
    not added again."""
    abi = landlock_abi()
    if abi < 1:
        return False, False
    ruleset = prepared.take_ruleset(paths)
    granted = prepared.granted if ruleset >= 0 else {}
    try:
        ruleset = ruleset if ruleset >= 0 else _new_ruleset(abi)
    except OSError:
        return False, False
    try:
        _add_rules(ruleset, abi, {kind: [p for p in paths[kind] if p not in granted.get(kind, ())] for kind in paths})
        _syscall(_SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    except OSError:
        return False, False
    finally:
        os.close(ruleset)
    return True, abi >= 6


def _handled(abi: int) -> tuple[int, int, int]:
    """What a ruleset of this ABI handles (denies unless a rule grants it): filesystem, TCP, scopes."""
    fs = (1 << 13) - 1 | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    fs |= _FS_IOCTL_DEV if abi >= 5 else 0
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    return fs, net, scoped


def _new_ruleset(abi: int) -> int:
    attr = struct.pack("=QQQ", *_handled(abi))[: 24 if abi >= 6 else 16 if abi >= 4 else 8]
    return _syscall(_SYS_LANDLOCK_CREATE_RULESET, attr, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))


def _add_rules(ruleset: int, abi: int, paths: dict[str, list[str]], root: int | None = None) -> None:
    """Grant reading (``read``), everything but executing (``write``), reading and writing a device
    (``devices``) or executing (``exec``: the interpreter and its loader only, see :func:`executables`)."""
    fs = _handled(abi)[0]
    access = {"read": _FS_READ & fs & ~_FS_EXECUTE, "write": fs & ~_FS_EXECUTE,
              "devices": _FS_FILE_ONLY & fs & ~_FS_EXECUTE, "exec": (_FS_EXECUTE | _FS_READ_FILE) & fs}
    for kind, listed in paths.items():
        for path in listed:
            _allow(ruleset, path, access[kind], root)


#: openat2(2) and its RESOLVE_IN_ROOT: look a path up as if the directory were the root (chroot).
_SYS_OPENAT2, _RESOLVE_IN_ROOT = 437, 0x10


def _open_path(path: str, root: int | None) -> int:
    """An O_PATH descriptor of ``path``, looked up under the directory ``root`` (absolute symlinks
    included) as the job will see it once the view is its root; None: under the host's root."""
    if root is None:
        return os.open(path, os.O_PATH | os.O_CLOEXEC)
    how = struct.pack("=QQQ", os.O_PATH | os.O_CLOEXEC, 0, _RESOLVE_IN_ROOT)
    return _syscall(_SYS_OPENAT2, ctypes.c_int(root), path.encode(), how, ctypes.c_size_t(len(how)))


def _allow(ruleset: int, path: str, access: int, root: int | None = None) -> None:
    try:
        fd = _open_path(path, root)
    except OSError:
        return  # an absent optional path (e.g. /lib32) is simply not granted
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            access &= _FS_FILE_ONLY
        rule = ctypes.create_string_buffer(struct.pack("=Qi", access, fd), 12)
        # A rule that cannot be added only grants less: Landlock denies whatever is not granted.
        kind = ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH)
        _syscall(_SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), kind, rule, ctypes.c_uint32(0))
    except OSError:
        pass
    finally:
        os.close(fd)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63


def _drop_bounding_set(last: int) -> bool:
    """Empty the bounding and ambient sets (needs CAP_SETPCAP, so before leaving uid 0): no
    capability can come back, even through exec of a file with capabilities."""
    dropped = all(prctl(_PR_CAPBSET_DROP, cap) for cap in range(last + 1))
    _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    return dropped


def _clear_capabilities() -> bool:
    """Empty the effective, permitted and inheritable sets: uid 0 without any capability cannot
    load modules, mount, change sysctls or bypass file permissions."""
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    return bool(_libc.capset(ctypes.byref(header), data) == 0)


# --- seccomp: no new user namespaces, no kernel key store; memfd_create refused where no memory
# cgroup counts it -----------------------------------------------------------------------------
#: (AUDIT_ARCH, memfd_create, unshare, clone, clone3)
_SECCOMP_ARCH = {"x86_64": (0xC000003E, 319, 272, 56, 435), "aarch64": (0xC00000B7, 279, 97, 220, 435)}
#: add_key, request_key, keyctl: the kernel key store belongs to the uid, and every job runs as uid
#: 65534, so a key outlives its job (the red team carried 20 KB of trained output from one
#: evaluation to the next: microgpt's wall_s 2.27 s -> 0.06 s). No job needs it.
KEY_SYSCALLS = {"x86_64": (248, 249, 250), "aarch64": (217, 218, 219)}
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_X32_BIT, _CLONE_NEWUSER = 0x40000000, 0x10000000
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_KILL, _ALLOW, _EPERM, _ENOSYS = 0x80000000, 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def seccomp_program(deny_memfd: bool) -> list[tuple[int, int, int, int]]:
    """The BPF filter: a foreign architecture is killed; the x32 ABI, unshare/clone asking for a new
    user namespace (where a job would hold every capability again), the key store's calls and, if
    asked, memfd_create fail with EPERM; clone3, whose flags live in memory BPF cannot read, fails
    with ENOSYS (libc then falls back to clone). Everything else is allowed.

    Written with labels (BPF jumps are relative offsets, resolved by :func:`_assemble`)."""
    arch, memfd, unshare, clone, clone3 = _SECCOMP_ARCH[platform.machine()]
    refused = (*KEY_SYSCALLS[platform.machine()], *((memfd,) if deny_memfd else ()))
    return _assemble([
        (_LD_W_ABS, 4), (_JEQ, arch, "nr", "kill"),  # seccomp_data.arch
        (_LD_W_ABS, 0, "nr"),  # seccomp_data.nr
        (_JGE, _X32_BIT, "eperm", None),
        (_JEQ, clone3, "enosys", None),
        (_JEQ, unshare, "flags", None), (_JEQ, clone, "flags", None),
        *((_JEQ, nr, "eperm", None) for nr in refused),
        (_RET, _ALLOW),
        (_LD_W_ABS, 16, "flags"), (_JSET, _CLONE_NEWUSER, "eperm", None),  # low half of args[0]
        (_RET, _ALLOW),
        (_RET, _KILL, "kill"), (_RET, _EPERM, "eperm"), (_RET, _ENOSYS, "enosys"),
    ])


def _assemble(lines: list[tuple[Any, ...]]) -> list[tuple[int, int, int, int]]:
    """BPF from ``(code, k[, label])`` and ``(jump, k, if_true, if_false)`` lines, where a jump's
    targets are labels (None: the next line)."""
    labels: dict[str, int] = {}
    for i, line in enumerate(lines):
        if line[0] not in (_JEQ, _JGE, _JSET) and len(line) == 3:
            labels[line[2]] = i

    def offset(i: int, target: str | None) -> int:
        return 0 if target is None else labels[target] - i - 1

    program = []
    for i, line in enumerate(lines):
        if line[0] in (_JEQ, _JGE, _JSET):
            code, k, if_true, if_false = line
            program.append((code, offset(i, if_true), offset(i, if_false), k))
        else:
            program.append((line[0], 0, 0, line[1]))
    return program


def install_seccomp(deny_memfd: bool) -> bool:
    """Install :func:`seccomp_program` on the calling process (needs no_new_privs); True if installed."""
    return _install_filter(_seccomp_filter(deny_memfd))


def _seccomp_filter(deny_memfd: bool) -> tuple[_SockFprog, Any] | None:
    """:func:`seccomp_program` ready for prctl (with the array it points to, kept alive), or None
    on an architecture without a table."""
    if platform.machine() not in _SECCOMP_ARCH:
        return None
    program = seccomp_program(deny_memfd)
    filters = (_SockFilter * len(program))(*(_SockFilter(*op) for op in program))
    return _SockFprog(len(program), filters), filters


def _install_filter(prepared: tuple[_SockFprog, Any] | None) -> bool:
    if prepared is None:
        return False
    return bool(_libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prepared[0]), 0, 0) == 0)
