"""Which containment layers this host allows: probed once per process, each missing one said once.

A host without user namespaces, root or cgroups (some containers, a laptop) still runs jobs, with
fewer walls; nothing degrades silently. ``evolve doctor`` prints the same table plus what a job
actually sees (:func:`evolve.sandbox.doctor.report`).
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from dataclasses import dataclass

from . import cgroups, containment, jail


@dataclass(frozen=True)
class Layer:
    name: str
    what: str  # what the layer does
    without: str  # what its absence means for a job


LAYERS = (
    Layer("namespaces", "private pid, mount, uts namespaces; a minimal read-only root; uid 65534",
          "jobs see the host's processes and files (Landlock still limits which) and run as evolve's uid"),
    Layer("disk_quota", "the working directory is a tmpfs of limits.disk_mb",
          "a job can fill the host disk (only each file is capped, by RLIMIT_FSIZE)"),
    Layer("memory_cgroup", "a per-job memory cgroup: the limit and the peak count every page",
          "memory is capped by RLIMIT_AS only; the memory figure is peak RSS + working-directory size, "
          "and memfd_create is refused"),
    Layer("pids_cgroup", "a per-job pids cgroup caps the process count",
          "the process count is capped by RLIMIT_NPROC only, which uid 0 ignores"),
    Layer("landlock", "filesystem allowlist, no TCP, no signals or abstract sockets outside the job",
          "no allowlist below the namespaces: files are guarded by the private view and permissions only"),
    Layer("seccomp", "no new user namespaces; memfd_create refused where no memory cgroup counts it",
          "jobs may create user namespaces, and memfd pages go uncounted where there is no memory cgroup"),
)

_probed: dict[str, tuple[bool, str]] = {}
_announced: set[str] = set()


def probe() -> dict[str, tuple[bool, str]]:
    """Each layer -> (available, detail); probed once per process."""
    if not _probed:
        _probed.update(
            namespaces=_probe_namespaces(),
            disk_quota=_probe_tmpfs(),
            memory_cgroup=_cgroup("memory"),
            pids_cgroup=_cgroup("pids"),
            landlock=(containment.landlock_abi() >= 1, f"Landlock ABI {containment.landlock_abi()}"),
            seccomp=_in_child(_try_seccomp, "seccomp filter refuses user namespaces (and memfd_create)"),
        )
    return dict(_probed)


def active(private_namespaces: bool = True) -> dict[str, bool]:
    """The layers a sandbox uses here (the namespaces and the quota'd tmpfs go together)."""
    found = {name: ok for name, (ok, _) in probe().items()}
    found["namespaces"] = found["namespaces"] and private_namespaces
    return found


def announce(state: dict[str, bool]) -> None:
    """One stderr line per missing layer, once per process."""
    details = probe()
    for layer in LAYERS:
        if not details[layer.name][0]:
            say_once(layer.name, f"no {layer.name} ({details[layer.name][1]}): {layer.without}")


def say_once(key: str, text: str) -> None:
    """``evolve sandbox: text`` on stderr, once per process for ``key``: a guarantee this host
    cannot give is said, never silently dropped, and never repeated per sandbox."""
    if key not in _announced:
        _announced.add(key)
        print(f"evolve sandbox: {text}", file=sys.stderr)


def _cgroup(controller: str) -> tuple[bool, str]:
    base = cgroups.base_dir(controller)
    if base is None:
        return False, f"no writable {controller} cgroup" + ("" if os.geteuid() == 0 else " (not root)")
    return True, f"per-job cgroups under {base}"


def _probe_namespaces() -> tuple[bool, str]:
    reason = jail.available()
    if reason is not None:
        return False, reason
    return _in_child(_try_namespaces, "new pid, mount and uts namespaces")


def _try_namespaces() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.unshare(0x00020000 | 0x04000000 | 0x20000000) == 0)  # CLONE_NEWNS | NEWUTS | NEWPID


def _try_seccomp() -> bool:
    containment.prctl(38, 1)  # no_new_privs
    if not containment.install_seccomp(deny_memfd=True):
        return False
    try:
        os.close(os.memfd_create("probe"))
    except PermissionError:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.unshare(0x10000000) != 0 and ctypes.get_errno() == 1  # CLONE_NEWUSER -> EPERM
    return False


def _in_child(check, detail: str) -> tuple[bool, str]:  # type: ignore[no-untyped-def]
    """Run ``check`` in a forked child (it may change process state for good); (ok, detail)."""
    pid = os.fork()
    if pid == 0:
        try:
            code = 0 if check() else 1
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return ok, detail if ok else f"refused: {detail}"


def _probe_tmpfs() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "mounting a tmpfs needs root"
    with tempfile.TemporaryDirectory(prefix="evolve-probe-") as path:
        if not jail.mount_workdir(path, 1):
            return False, "mounting a tmpfs was refused"
        jail.unmount(path)
    return True, "tmpfs working directories"
