"""Hostile programs, one per attack class, and the trusted verdict on each: is it contained?

The same catalogue drives the containment tests (``tests/sandbox/test_sandbox_hostile.py``),
``bench/containment.py`` (class, outcome, time to contain) and ``evolve doctor``. The functions at
the top run *inside* the sandbox as call jobs (``evolve.sandbox.hostile:NAME``); :data:`CASES` and
everything below them run in the parent, which sets up the bait (a listener, a secret, a host
process) and judges from what it observes itself, never from the job's word alone where that matters.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import platform
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .containment import KEY_SYSCALLS
from .job import Job, Limits, ProcessResult

if TYPE_CHECKING:  # pragma: no cover
    from .sandbox import Sandbox

_MIB = 1 << 20


# --- inside the sandbox -------------------------------------------------------------------------
def _attempt(action: Callable[[], Any]) -> str:
    try:
        action()
        return "done"
    except OSError as exc:
        return type(exc).__name__


def connect_unix(path: str) -> str:
    def go() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(path)
            s.recv(16)

    return _attempt(go)


def memfd_fill(mb: int) -> str:
    """Write ``mb`` MiB into a memfd without ever mapping it: invisible to RLIMIT_AS and ru_maxrss."""
    fd = os.memfd_create("hide")
    chunk = b"\1" * _MIB
    for _ in range(mb):
        os.write(fd, chunk)
    return "held"


def write_file(path: str, mb: int) -> str:
    chunk = b"\1" * _MIB
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(chunk)
    return "written"


def write_files(paths: list[str]) -> dict[str, str]:
    return {p: _attempt(functools.partial(Path(p).write_text, "escaped")) for p in paths}


def read_files(paths: list[str]) -> dict[str, str]:
    def read(p: str) -> None:
        if os.path.isdir(p):
            os.listdir(p)
        else:
            Path(p).read_bytes()

    return {p: _attempt(functools.partial(read, p)) for p in paths}


def proc_view(host_pid: int) -> dict[str, Any]:
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    return {"pids": pids, "host": _attempt(lambda: Path(f"/proc/{host_pid}/cmdline").read_bytes())}


def environment() -> dict[str, str]:
    return dict(os.environ)


def tcp_connect(port: int) -> str:
    return _attempt(lambda: socket.create_connection(("127.0.0.1", port), timeout=2).close())


def udp_send() -> str:
    def go() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"x", ("8.8.8.8", 53))

    return _attempt(go)


def kill_everyone(host_pid: int) -> dict[str, str]:
    return {
        "host_pid": _attempt(lambda: os.kill(host_pid, signal.SIGKILL)),
        "minus_one": _attempt(lambda: os.kill(-1, signal.SIGKILL)),
    }


def ptrace(host_pid: int) -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, host_pid, None, None) == 0:  # PTRACE_ATTACH
        return "attached"
    return errno.errorcode.get(ctypes.get_errno(), "error")


def fork_bomb() -> str:
    while True:
        try:
            os.fork()
        except OSError:
            time.sleep(0.01)


def setsid_daemon() -> str:
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(3600)
        os._exit(0)
    return "left a daemon"


def flood() -> str:
    chunk = "x" * 65536
    for _ in range(1600):  # 100 MiB
        print(chunk)
    return "flooded"


def plant(marker: str) -> dict[str, str]:
    """Leave traces for the next job: a module attribute, a file in HOME and one in /tmp."""
    import json

    json.evolve_planted = marker  # type: ignore[attr-defined]
    results = {}
    for path in (os.path.join(os.environ.get("HOME", "."), "planted"), "/tmp/evolve-planted", "/var/tmp/evolve-planted"):
        results[path] = _attempt(functools.partial(Path(path).write_text, marker))
    return results


def find_planted(paths: list[str]) -> list[str]:
    import json

    found = [p for p in paths if os.path.exists(p)]
    if hasattr(json, "evolve_planted"):
        found.append("json.evolve_planted")
    return found


def identity() -> dict[str, Any]:
    with open("/proc/self/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    return {"uid": os.getuid(), "euid": os.geteuid(), "cap_eff": status["CapEff"], "cap_bnd": status["CapBnd"],
            "no_new_privs": status["NoNewPrivs"]}


def mounts() -> dict[str, str]:
    libc = ctypes.CDLL(None, use_errno=True)

    def result(rc: int) -> str:
        return "done" if rc == 0 else errno.errorcode.get(ctypes.get_errno(), "error")

    return {
        "mount_tmpfs": result(libc.mount(b"tmpfs", os.getcwd().encode(), b"tmpfs", 0, None)),
        "remount_rw": result(libc.mount(None, b"/usr", None, 32 | 4096, None)),  # MS_REMOUNT | MS_BIND
        "umount_proc": result(libc.umount2(b"/proc", 2)),
        "chroot": _attempt(lambda: os.chroot("/usr")),
    }


def sysv_shm(key: int) -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    return "found" if libc.shmget(key, 0, 0) >= 0 else errno.errorcode.get(ctypes.get_errno(), "error")


def key_store(action: str, description: str) -> str:
    """``plant`` a key in the uid's kernel keyring, or ``find`` it: keys belong to the uid, not the job."""
    libc = ctypes.CDLL(None, use_errno=True)
    add_key, _, keyctl = KEY_SYSCALLS.get(platform.machine(), (248, 249, 250))
    user_keyring, search = -4, 10
    if action == "plant":
        result = libc.syscall(add_key, b"user", description.encode(), b"weights", 7, user_keyring)
    else:
        result = libc.syscall(keyctl, search, user_keyring, b"user", description.encode(), 0)
    return "done" if result >= 0 else errno.errorcode.get(ctypes.get_errno(), "error")


def hostname() -> str:
    return _attempt(lambda: socket.sethostname("pwned"))


def cgroup_escape() -> dict[str, str]:
    return write_files(["/sys/fs/cgroup/memory/tasks", "/sys/fs/cgroup/pids/tasks", "/sys/fs/cgroup/cgroup.procs"])


def other_programs() -> dict[str, str]:
    """Hand the work to another program: compile C with the host's gcc, run perl, a shell, and a
    binary copied into the working directory (a timed task would time something that is not Python)."""
    import shutil
    import subprocess

    outcome: dict[str, str] = {}
    with open("fast.c", "w") as f:
        f.write("int main(void) { return 0; }\n")
    try:
        shutil.copyfile("/bin/true", "true")
        os.chmod("true", 0o755)
    except OSError as exc:
        outcome["copy"] = type(exc).__name__
    for argv in (["gcc", "fast.c", "-o", "fast"], ["perl", "-e", "1"], ["/bin/sh", "-c", "true"], ["./true"]):
        try:
            done = subprocess.run(argv, capture_output=True, timeout=30)
            outcome[argv[0]] = "done" if done.returncode == 0 else f"exit {done.returncode}"
        except OSError as exc:
            outcome[argv[0]] = type(exc).__name__
    return outcome


def user_namespace() -> dict[str, str]:
    """Try to regain every capability in a user namespace of one's own, then use them."""
    libc = ctypes.CDLL(None, use_errno=True)

    def result(rc: int) -> str:
        return "done" if rc == 0 else errno.errorcode.get(ctypes.get_errno(), "error")

    outcome = {"unshare": result(libc.unshare(0x10000000 | 0x00020000))}  # CLONE_NEWUSER | CLONE_NEWNS
    try:
        import subprocess

        done = subprocess.run(["unshare", "--user", "--map-root-user", "id", "-u"], capture_output=True, timeout=10)
        outcome["unshare(1)"] = "done" if done.returncode == 0 else f"exit {done.returncode}"
    except OSError as exc:
        outcome["unshare(1)"] = type(exc).__name__
    return outcome


def leave_root() -> dict[str, Any]:
    """Climb out of the private root: '..' past /, /proc/1/root, and what mountinfo gives away."""
    def listing(path: str) -> list[str] | str:
        try:
            return sorted(os.listdir(path))
        except OSError as exc:
            return type(exc).__name__

    os.chdir("/")
    for _ in range(8):
        os.chdir("..")
    with open("/proc/self/mountinfo") as f:
        mount_points = sorted({line.split()[4] for line in f})
    return {"after_dotdot": listing("."), "proc_1_root": listing("/proc/1/root"), "root": listing("/"),
            "tmp": listing("/tmp"), "mount_points": mount_points}


def neighbours() -> list[str]:
    return os.listdir(os.path.dirname(os.getcwd()))


#: Script jobs (a forked script worker must hold no more than a fresh interpreter does).
LEFTOVERS_SCRIPT = """
import gc, json, os, sys
frames, f = [], sys._getframe()
while f is not None:
    frames.append(sorted(f.f_locals))
    f = f.f_back
trusted = sorted(m for m in sys.modules if m.split(".")[0] in ("evolve", "evaluators"))
specs = sum(1 for o in gc.get_objects() if isinstance(o, dict) and {"landlock", "preload", "cgroups"} & set(o))
print(json.dumps({"modules": trusted, "fds": sorted(os.listdir("/proc/self/fd")), "specs": specs, "frames": frames}))
"""
#: Scans its own memory (ctypes: a forked worker is not dumpable, so /proc/self/mem is closed to it)
#: for the marker of the parent's secret; prints hashes of what follows each occurrence.
MEMORY_SCRIPT = """
import ctypes, hashlib, json
marker, found = b"EVOLVE-" + b"CANARY-", set()
with open("/proc/self/maps") as maps:
    regions = [line.split() for line in maps]
for fields in regions:  # anonymous memory, heap and stack: where an inherited secret would be
    if "r" not in fields[1] or (len(fields) > 5 and fields[5] not in ("[heap]", "[stack]")):
        continue
    low, high = (int(x, 16) for x in fields[0].split("-"))
    data = ctypes.string_at(low, high - low)
    at = data.find(marker)
    while at >= 0:
        found.add(hashlib.sha256(data[at + len(marker): at + len(marker) + 32]).hexdigest())
        at = data.find(marker, at + 1)
print(json.dumps(sorted(found)))
"""


# --- in the parent: the catalogue and its verdicts --------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    contained: bool
    outcome: str  # what happened, in a few words
    seconds: float  # the job's wall time: how long until the sandbox had it contained


@dataclass(frozen=True)
class Case:
    cls: str  # attack class
    attack: str
    layer: str  # the layer or rule that stops it
    needs: tuple[str, ...]  # layers (see layers.py) that must be active for the verdict to hold
    check: Callable[[Sandbox], Verdict]


def _call(name: str, **args: Any) -> Job:
    return Job.call(f"evolve.sandbox.hostile:{name}", **args)


def _run(sandbox: Sandbox, job: Job, limits: Limits | None = None) -> ProcessResult:
    return sandbox.run(job, limits=limits or Limits(timeout_s=30))


def _verdict(result: ProcessResult, contained: bool, outcome: str) -> Verdict:
    return Verdict(contained, f"{result.status}: {outcome}", result.wall_s)


@contextmanager
def _unix_listener(path: str | None) -> Iterator[str]:
    """A host service answering on a unix socket (a pathname, or abstract when ``path`` is None)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    address = path or f"\0evolve-bait-{os.getpid()}-{time.monotonic_ns()}"
    server.bind(address)
    if path:
        os.chmod(path, 0o777)  # reachable by any uid that can see it
    server.listen(4)
    server.settimeout(0.2)
    stop = False

    def answer() -> None:
        while not stop:
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.sendall(b"hello")

    import threading

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield address
    finally:
        stop = True
        thread.join()
        server.close()
        if path:
            Path(path).unlink(missing_ok=True)


def _unix_pathname(sandbox: Sandbox) -> Verdict:
    path = f"/tmp/evolve-bait-{os.getpid()}-{time.monotonic_ns()}.sock"
    with _unix_listener(path) as address:
        result = _run(sandbox, _call("connect_unix", path=address))
    return _verdict(result, result.value != "done", f"connect -> {result.value}")


def _unix_abstract(sandbox: Sandbox) -> Verdict:
    with _unix_listener(None) as address:
        result = _run(sandbox, _call("connect_unix", path=address))
    return _verdict(result, result.value != "done", f"connect -> {result.value}")


def _memfd_over_limit(sandbox: Sandbox) -> Verdict:
    result = _run(sandbox, _call("memfd_fill", mb=400), Limits(timeout_s=60, memory_mb=256, file_size_mb=1024))
    contained = (result.status, result.limit) == ("limit", "memory")
    return _verdict(result, contained, f"400 MiB memfd under a 256 MB limit, limit={result.limit}")


def _memfd_counted(sandbox: Sandbox) -> Verdict:
    result = _run(sandbox, _call("memfd_fill", mb=120), Limits(timeout_s=60, memory_mb=1024, file_size_mb=1024))
    counted = result.ok and result.peak_memory_mib >= 120
    refused = result.status == "error" and "PermissionError" in (result.error or "")
    outcome = f"peak_memory {result.peak_memory_mib:.0f} MiB vs RSS {result.peak_rss_delta_mib:.0f} MiB"
    return _verdict(result, counted or refused, outcome if result.ok else str(result.error))


def _tmpfs_counted(sandbox: Sandbox) -> Verdict:
    limits = Limits(timeout_s=60, memory_mb=1024, disk_mb=256, file_size_mb=1024)
    result = _run(sandbox, _call("write_file", path="hidden.bin", mb=120), limits)
    counted = result.ok and result.peak_memory_mib >= 120
    return _verdict(result, counted, f"120 MiB file: peak_memory {result.peak_memory_mib:.0f} MiB, "
                    f"RSS {result.peak_rss_delta_mib:.0f} MiB")


def _disk_fill(sandbox: Sandbox) -> Verdict:
    result = _run(sandbox, _call("write_file", path="fill.bin", mb=600), Limits(timeout_s=60, disk_mb=64, file_size_mb=1024))
    return _verdict(result, (result.status, result.limit) == ("limit", "disk"), f"600 MiB into a 64 MB quota, limit={result.limit}")


def _host_tmp(sandbox: Sandbox) -> Verdict:
    marker = f"/tmp/evolve-escape-{os.getpid()}-{time.monotonic_ns()}"
    targets = [marker, "/dev/shm/evolve-escape", "/var/tmp/evolve-escape"]
    result = _run(sandbox, _call("write_files", paths=targets))
    escaped = [t for t in targets if os.path.exists(t)]
    for t in escaped:
        os.unlink(t)
    return _verdict(result, result.ok and not escaped, f"{sorted(set((result.value or {}).values()))}")


def _proc_snoop(sandbox: Sandbox) -> Verdict:
    result = _run(sandbox, _call("proc_view", host_pid=os.getpid()))
    pids = (result.value or {}).get("pids", [])
    contained = result.ok and len(pids) <= 3 and result.value["host"] != "done"
    return _verdict(result, contained, f"/proc lists {len(pids)} pid(s); host cmdline -> {(result.value or {}).get('host')}")


def _env(sandbox: Sandbox) -> Verdict:
    os.environ["EVOLVE_BAIT_API_KEY"] = "sk-bait"
    try:
        result = _run(sandbox, _call("environment"))
    finally:
        del os.environ["EVOLVE_BAIT_API_KEY"]
    leaked = "sk-bait" in str(result.value)
    return _verdict(result, result.ok and not leaked, f"{len(result.value or {})} variables, bait {'leaked' if leaked else 'absent'}")


def _read_outside(sandbox: Sandbox) -> Verdict:
    targets = ["/etc/shadow", "/root", str(Path.home()), str(sandbox.root), f"/proc/{os.getpid()}/environ",
               "/var/log", "/run"]
    result = _run(sandbox, _call("read_files", paths=targets))
    read = [p for p, v in (result.value or {}).items() if v == "done"]
    return _verdict(result, result.ok and not read, f"read {read}" if read else "every read refused")


def _write_outside(sandbox: Sandbox) -> Verdict:
    import evolve

    package = Path(evolve.__file__).parent
    targets = [str(package / "planted.py"), "/usr/lib/evolve-planted", "/etc/evolve-planted", f"{Path.home()}/planted"]
    result = _run(sandbox, _call("write_files", paths=targets))
    escaped = [t for t in targets if os.path.exists(t)]
    for t in escaped:
        os.unlink(t)
    return _verdict(result, result.ok and not escaped, f"written {escaped}" if escaped else "every write refused")


def _tcp(sandbox: Sandbox) -> Verdict:
    with socket.create_server(("127.0.0.1", 0)) as server:
        result = _run(sandbox, _call("tcp_connect", port=server.getsockname()[1]))
    return _verdict(result, result.ok and result.value != "done", f"connect -> {result.value}")


def _udp(sandbox: Sandbox) -> Verdict:
    result = _run(sandbox, _call("udp_send"))
    return _verdict(result, result.ok and result.value != "done", f"sendto -> {result.value}")


def _signals(sandbox: Sandbox) -> Verdict:
    import subprocess
    import sys

    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        result = _run(sandbox, _call("kill_everyone", host_pid=bystander.pid))
        time.sleep(0.1)
        alive = bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
    return _verdict(result, alive, f"kill(pid) -> {(result.value or {}).get('host_pid')}, bystander {'alive' if alive else 'killed'}")


def _ptrace(sandbox: Sandbox) -> Verdict:
    result = _run(sandbox, _call("ptrace", host_pid=os.getpid()))
    return _verdict(result, result.ok and result.value != "attached", f"PTRACE_ATTACH -> {result.value}")


def _fork_bomb(sandbox: Sandbox) -> Verdict:
    result = _run(sandbox, _call("fork_bomb"), Limits(timeout_s=3, processes=16))
    after = _run(sandbox, _call("environment")).ok
    contained = result.status in ("limit", "timeout") and after
    return _verdict(result, contained, f"limit={result.limit}; next job {'ran' if after else 'failed'}")


def _setsid(sandbox: Sandbox) -> Verdict:
    with sandbox.workdir() as workdir:
        result = sandbox.run(_call("setsid_daemon"), workdir=workdir, limits=Limits(timeout_s=30))
        time.sleep(0.2)
        left = _processes_in(workdir)
    return _verdict(result, result.ok and not left, f"{len(left)} process(es) left behind")


def _processes_in(workdir: Path) -> list[int]:
    """Live processes whose working directory is ``workdir`` (as the host sees it)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/cwd") == str(workdir) and _state(pid) != "Z":
                found.append(int(pid))
        except OSError:
            continue
    return found


def _state(pid: str) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _flood(sandbox: Sandbox) -> Verdict:
    result = _run(sandbox, _call("flood"), Limits(timeout_s=60, output_bytes=64_000))
    contained = result.stdout_truncated and len(result.stdout) <= 64_000
    return _verdict(result, contained, f"kept {len(result.stdout)} bytes of 100 MiB")


def _persistence(sandbox: Sandbox) -> Verdict:
    marker = f"planted-{time.monotonic_ns()}"
    first = _run(sandbox, _call("plant", marker=marker))
    paths = [p for p, v in (first.value or {}).items() if v == "done"] + ["/tmp/evolve-planted", "/var/tmp/evolve-planted"]
    second = _run(sandbox, _call("find_planted", paths=paths))
    host = [p for p in ("/tmp/evolve-planted", "/var/tmp/evolve-planted") if os.path.exists(p)]
    return _verdict(second, second.ok and second.value == [] and not host, f"next job found {second.value}")


def _key_store(sandbox: Sandbox) -> Verdict:
    marker = f"evolve-planted-{time.monotonic_ns()}"
    planted = _run(sandbox, _call("key_store", action="plant", description=marker))
    found = _run(sandbox, _call("key_store", action="find", description=marker))
    contained = planted.ok and found.ok and found.value != "done"
    return _verdict(found, contained, f"plant: {planted.value}, next job's search: {found.value}")


def _identity(sandbox: Sandbox) -> Verdict:
    result = _run(sandbox, _call("identity"))
    v = result.value or {}
    contained = v.get("uid") == 65534 and set(v.get("cap_eff", "1")) == {"0"} and set(v.get("cap_bnd", "1")) == {"0"}
    return _verdict(result, contained, f"uid {v.get('uid')}, CapEff {v.get('cap_eff')}, no_new_privs {v.get('no_new_privs')}")


def _mounts(sandbox: Sandbox) -> Verdict:
    result = _run(sandbox, _call("mounts"))
    done = [k for k, v in (result.value or {}).items() if v == "done"]
    return _verdict(result, result.ok and not done, f"{result.value}")


def _sysv(sandbox: Sandbox) -> Verdict:
    libc = ctypes.CDLL(None, use_errno=True)
    key = 0x5EB1 + os.getpid() % 1000
    segment = libc.shmget(key, 4096, 0o1600)
    try:
        result = _run(sandbox, _call("sysv_shm", key=key))
    finally:
        libc.shmctl(segment, 0, None)
    return _verdict(result, result.ok and result.value != "found", f"shmget(host key) -> {result.value}")


def _hostname(sandbox: Sandbox) -> Verdict:
    result = _run(sandbox, _call("hostname"))
    return _verdict(result, result.ok and result.value != "done" and socket.gethostname() != "pwned", f"sethostname -> {result.value}")


def _cgroup_escape(sandbox: Sandbox) -> Verdict:
    result = _run(sandbox, _call("cgroup_escape"))
    done = [k for k, v in (result.value or {}).items() if v == "done"]
    return _verdict(result, result.ok and not done, f"{sorted(set((result.value or {}).values()))}")


def _user_namespace(sandbox: Sandbox) -> Verdict:
    result = _run(sandbox, _call("user_namespace"))
    done = [k for k, v in (result.value or {}).items() if v == "done"]
    return _verdict(result, result.ok and not done, f"{result.value}")


def _other_programs(sandbox: Sandbox) -> Verdict:
    result = _run(sandbox, _call("other_programs"))
    done = [k for k, v in (result.value or {}).items() if v == "done"]
    return _verdict(result, result.ok and not done, f"{result.value}")


def _leave_root(sandbox: Sandbox) -> Verdict:
    result = _run(sandbox, _call("leave_root"))
    v = result.value or {}
    host_only = {"home", "var", "opt", "boot", "run", "srv", "mnt", "media", "old_root"}
    seen = set()
    for key in ("after_dotdot", "proc_1_root", "root", "tmp"):
        if isinstance(v.get(key), list):
            seen.update(v[key])
    leaked = sorted(host_only & seen)
    foreign = [m for m in v.get("mount_points", []) if m.split("/")[1:2] and m.split("/")[1] in host_only]
    contained = result.ok and not leaked and not foreign
    listed = {k: v.get(k) for k in ("root", "tmp")}
    return _verdict(result, contained, f"{listed}; mount points {v.get('mount_points')}")


def _neighbours(sandbox: Sandbox) -> Verdict:
    with sandbox.workdir() as other:
        (other / "secret-of-another-job").write_text("x")
        result = _run(sandbox, _call("neighbours"))
    seen = [n for n in (result.value or []) if n != "secret-of-another-job" and n.startswith("job-")]
    contained = result.status == "error" or (result.ok and len(seen) <= 1)
    return _verdict(result, contained, f"sees {len(result.value or [])} entries beside its workdir" if result.ok else str(result.error))


def _script(sandbox: Sandbox, source: str, limits: Limits | None = None) -> ProcessResult:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "program.py"
        path.write_text(source)
        return _run(sandbox, Job.script("program.py", files={"program.py": str(path)}), limits)


def _script_leftovers(sandbox: Sandbox) -> Verdict:
    result = _script(sandbox, LEFTOVERS_SCRIPT)
    try:
        seen = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return _verdict(result, False, f"no answer: {result.error}")
    trusted_locals = {"spec", "jail_spec", "config", "sock", "channel", "worker", "fds", "setup", "limits"}
    held = sorted(trusted_locals & {name for frame in seen["frames"] for name in frame})
    extra_fds = [fd for fd in seen["fds"] if fd not in ("0", "1", "2", "3")]  # 3: the listing's own
    contained = result.ok and not seen["modules"] and not extra_fds and not seen["specs"] and not held
    return _verdict(result, contained, f"evolve modules {seen['modules']}, extra fds {extra_fds}, "
                                       f"spec dicts {seen['specs']}, trusted locals {held}")


def _script_parent_secret(sandbox: Sandbox) -> Verdict:
    """The parent holds a secret (in its environment and memory) when the sandbox's zygotes start."""
    import hashlib
    import secrets
    import tempfile

    from .sandbox import Sandbox as _Sandbox

    tail = secrets.token_hex(16)
    secret = "EVOLVE-CANARY-" + tail
    os.environ["EVOLVE_BAIT_API_KEY"] = secret
    try:
        with tempfile.TemporaryDirectory() as tmp, _Sandbox(sandbox.mode, root=tmp) as fresh_box:
            result = _script(fresh_box, MEMORY_SCRIPT)
    finally:
        del os.environ["EVOLVE_BAIT_API_KEY"]
    try:
        found = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return _verdict(result, False, f"no answer: {result.error}")
    leaked = hashlib.sha256(tail.encode()).hexdigest() in found
    return _verdict(result, result.ok and not leaked, f"secret {'found' if leaked else 'absent'} in the job's own memory")


NATIVE_MODULES = ("numpy", "torch", "ctypes", "_testcapi")


def imports_script(modules: tuple[str, ...]) -> str:
    """A program that tries to import each of ``modules`` and prints ``{name: "imported" | the
    exception's type}`` as JSON on its last line."""
    return f"""
import json
found = {{}}
for name in {modules!r}:
    try:
        __import__(name)
        found[name] = "imported"
    except BaseException as exc:
        found[name] = type(exc).__name__
print(json.dumps(found))
"""


def _native_code(sandbox: Sandbox) -> Verdict:
    """In the sandbox of a task that times a Python program (stdlib-only: microgpt's), made here in
    fresh mode whatever the catalogue's mode, reach for native code: an installed numerical library,
    or ctypes (a native library's functions, or machine code written into memory)."""
    import tempfile

    from .sandbox import Sandbox as _Sandbox

    with tempfile.TemporaryDirectory() as tmp, _Sandbox("fresh", root=tmp, stdlib_only=True) as box:
        result = _script(box, imports_script(NATIVE_MODULES))
    try:
        found = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return _verdict(result, False, f"no answer: {result.error}")
    contained = result.ok and "imported" not in found.values() and result.containment.get("stdlib_only") is True
    return _verdict(result, contained, ", ".join(f"{k} -> {v}" for k, v in found.items()))


CASES = (
    Case("unix socket", "connect to a host listener's socket file in /tmp", "mount namespace: no socket file in the view", ("namespaces",), _unix_pathname),
    Case("unix socket", "connect to a host abstract-namespace socket", "network namespace; Landlock scope", (), _unix_abstract),
    Case("memory hiding", "400 MiB in an unmapped memfd under a 256 MB limit", "memory cgroup limit", ("memory_cgroup",), _memfd_over_limit),
    Case("memory hiding", "120 MiB in an unmapped memfd", "memory cgroup peak (or seccomp: memfd refused)", (), _memfd_counted),
    Case("memory hiding", "120 MiB in a workdir file (tmpfs)", "memory cgroup peak counts tmpfs", ("disk_quota",), _tmpfs_counted),
    Case("disk fill", "600 MiB into the working directory", "tmpfs quota (limits.disk_mb)", ("disk_quota",), _disk_fill),
    Case("disk fill", "write to host /tmp, /dev/shm, /var/tmp", "mount namespace (absent) + Landlock", (), _host_tmp),
    Case("/proc snooping", "list host processes, read the parent's cmdline", "pid namespace + own /proc", ("namespaces",), _proc_snoop),
    Case("environment", "read an API key from the environment", "scrubbed allowlisted environment", (), _env),
    Case("file read", "read /etc/shadow, /root, the sandbox root, the parent's environ", "mount namespace + Landlock + uid", (), _read_outside),
    Case("file write", "overwrite the evolve package, /usr, /etc, HOME", "read-only binds + Landlock + uid", (), _write_outside),
    Case("network", "TCP connect to a host listener on 127.0.0.1", "network namespace + Landlock TCP rule", (), _tcp),
    Case("network", "UDP to a public DNS server", "network namespace (no interfaces)", (), _udp),
    Case("signals", "SIGKILL a host process by pid, and kill(-1)", "pid namespace + Landlock signal scope", (), _signals),
    Case("ptrace", "PTRACE_ATTACH to the parent", "pid namespace + no capabilities", (), _ptrace),
    Case("fork bomb", "fork until refused", "pids cgroup (limits.processes)", (), _fork_bomb),
    Case("setsid escape", "double-fork a setsid daemon and return", "pid namespace dies with its pid 1; subreaper", (), _setsid),
    Case("output flood", "print 100 MiB", "capped stdout (limits.output_bytes)", (), _flood),
    Case("persistence", "plant state for the next job (module, HOME, /tmp)", "fork per job; fresh tmpfs workdir; no /tmp", (), _persistence),
    Case("persistence", "plant a key in the uid's kernel key store for the next job", "seccomp: add_key/keyctl/request_key refused",
         ("seccomp",), _key_store),
    Case("privilege", "check uid and capabilities", "uid 65534, empty capability sets", ("namespaces",), _identity),
    Case("mounts", "mount a tmpfs, remount /usr rw, umount /proc, chroot", "no capabilities (uid 65534, bounding set empty)", (), _mounts),
    Case("privilege", "create a user namespace to hold capabilities again", "seccomp: CLONE_NEWUSER refused", ("seccomp",), _user_namespace),
    Case("other programs", "compile C with gcc, run perl, a shell, a binary copied into the workdir",
         "Landlock: execute only this Python and its loader (rule exec-only-python)", ("landlock",), _other_programs),
    Case("ipc", "open a host SysV shared memory segment", "IPC namespace", (), _sysv),
    Case("uts", "change the hostname", "UTS namespace + no capabilities", (), _hostname),
    Case("cgroup escape", "move itself to the root cgroups", "flat /sys (no cgroup tree) + read-only + uid", (), _cgroup_escape),
    Case("mounts", "climb out of the private root ('..', /proc/1/root, mountinfo)", "chroot + no CAP_SYS_CHROOT + pid namespace", ("namespaces",), _leave_root),
    Case("other jobs", "list sibling job directories", "mount namespace: only its own workdir", ("namespaces",), _neighbours),
    Case("forked script", "find the sandbox's modules, frames, spec or descriptors in its own interpreter",
         "trusted frames unwound, evolve's modules dropped, descriptors closed (script.py)", (), _script_leftovers),
    Case("forked script", "find the parent's API key in its own memory", "zygote: scrubbed environment, never sees a job",
         (), _script_parent_secret),
    Case("native code", "a task timing Python (microgpt): import numpy or torch, or ctypes to call native code",
         "stdlib-only view: site-packages and ctypes hidden (rule stdlib-only)", ("namespaces",), _native_code),
)
