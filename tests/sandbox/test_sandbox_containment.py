"""What a sandboxed process cannot do: see secrets, write or read outside its lane, reach the
network, signal outsiders, or leave processes behind."""

from __future__ import annotations

import os
import signal
import socket
import threading
import uuid
from pathlib import Path

import pytest
from sandbox_testlib import CANDIDATES, alive, call, children_whose, processes_in, wait_until

import evolve
from evolve.sandbox import Job, Limits, Sandbox, layers
from evolve.sandbox.containment import landlock_abi, prepare

REPO = Path(evolve.__file__).resolve().parents[1]
#: How a refused access surfaces: Landlock or permissions (PermissionError), a path absent from the
#: private view (FileNotFoundError), its read-only mounts (OSError: EROFS), a pid outside the job's
#: pid namespace (ProcessLookupError).
DENIED = {"PermissionError", "FileNotFoundError", "OSError", "ProcessLookupError"}
needs_landlock = pytest.mark.skipif(landlock_abi() < 1, reason="Landlock is not available in this kernel")


@pytest.mark.parametrize("mode", ["fresh", "forkserver"])
def test_environment_is_an_allowlist(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOO_API_KEY", "secret-foo")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("HTTPS_PROXY", "http://user:pass@proxy:3128")
    with Sandbox(mode, preload=("json",)) as box, box.workdir() as workdir:
        env = box.run(call("environment"), workdir=workdir).value
        if mode == "forkserver":  # the zygote's memory is inherited by every worker
            zygote = _zygote_of_this_process()
            assert "sk-secret" not in Path(f"/proc/{zygote}/environ").read_text()
    assert not {"FOO_API_KEY", "OPENAI_API_KEY", "HTTPS_PROXY"} & set(env)
    assert env["HOME"] == env["TMPDIR"] == str(workdir)
    assert env["OMP_NUM_THREADS"] == "1" and env["PYTHONHASHSEED"] == "0"


def _zygote_of_this_process() -> int:
    (zygote,) = children_whose("-m evolve.sandbox.zygote")
    return zygote


def test_process_state_is_locked_down(sandbox: Sandbox) -> None:
    result = sandbox.run(call("process_state"))
    assert result.value == {"dumpable": 0, "cap_eff": "0000000000000000", "no_new_privs": "1", "sid_is_self": True}
    assert result.containment["not_dumpable"] and result.containment["capabilities_dropped"]


def test_timeout_kills_the_whole_tree_including_setsid_escapees(sandbox: Sandbox) -> None:
    with sandbox.workdir() as workdir:
        result = sandbox.run(call("escape_and_sleep"), workdir=workdir, limits=Limits(timeout_s=2))
        escapee = int((workdir / "escapee.pid").read_text())
    assert result.status == "timeout"
    if not result.containment["private_view"]:  # else the pid is one of the job's own pid namespace
        assert not alive(escapee)
    assert processes_in(sandbox.root) == []


def test_daemon_left_by_a_finished_job_is_killed(sandbox: Sandbox) -> None:
    with sandbox.workdir() as workdir:
        result = sandbox.run(call("orphan_and_return"), workdir=workdir, limits=Limits(timeout_s=20))
        daemon = int((workdir / "daemon.pid").read_text())
    assert result.status == "ok"
    if not result.containment["private_view"]:
        assert not alive(daemon)
    assert wait_until(lambda: processes_in(sandbox.root) == [])


def test_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    result = sandbox.run(call("fork_bomb"), limits=Limits(timeout_s=3, processes=16))
    assert result.status in ("limit", "timeout")
    if result.containment.get("pids_cgroup"):
        assert (result.status, result.limit) == ("limit", "processes")
    assert processes_in(sandbox.root) == []
    assert sandbox.run(call("add", a=1)).ok  # and the machine still runs jobs


@needs_landlock
def test_writes_outside_the_workdir_are_refused(sandbox: Sandbox) -> None:
    tag = uuid.uuid4().hex
    targets = [f"/tmp/evolve-probe-{tag}", str(REPO / f"probe-{tag}"), str(Path.home() / f"probe-{tag}")]
    try:
        with sandbox.workdir() as workdir:
            inside = str(workdir / "inside.txt")
            result = sandbox.run(call("try_write", paths=[*targets, inside]), workdir=workdir)
        assert result.containment["landlock"]
        assert result.value[inside] == "written"
        assert {result.value[t] for t in targets} <= DENIED and not any(Path(t).exists() for t in targets)
    finally:
        for target in targets:
            Path(target).unlink(missing_ok=True)


@needs_landlock
def test_a_job_may_execute_python_and_nothing_else(sandbox: Sandbox) -> None:
    """Rule exec-only-python: a job cannot hand its work to another program (gcc, perl, awk, a
    shell, a binary it wrote), where a timed task would time something that is not the archived
    Python program; starting Python itself still works."""
    import sys

    others = [["/usr/bin/gcc", "--version"], ["/usr/bin/perl", "-e", "print 1"], ["/usr/bin/awk", "BEGIN{print 1}"],
              ["/bin/sh", "-c", "echo 1"]]
    result = sandbox.run(call("try_exec", commands=[[sys.executable, "-c", "print(6 * 7)"], *others]))
    assert result.ok, result.error
    assert result.value[sys.executable] == "ran: 42"
    refused = {argv[0]: result.value[argv[0]] for argv in [*others, ["./true"]]}
    assert set(refused.values()) <= {"PermissionError", "FileNotFoundError"}, refused


@pytest.mark.skipif(not layers.active()["disk_quota"], reason="no tmpfs working directories on this host")
def test_a_library_written_to_the_workdir_cannot_be_loaded(sandbox: Sandbox) -> None:
    """Rule exec-only-python: the working directory is mounted noexec, so native code the job
    brings as bytes cannot be mapped (while the system's own libraries load as usual)."""
    result = sandbox.run(call("load_library_copy", source="/usr/lib/x86_64-linux-gnu/libm.so.6"))
    assert result.ok and result.value == "OSError", (result.status, result.value, result.error)


@needs_landlock
def test_repository_run_archives_and_parent_memory_are_unreadable(sandbox: Sandbox) -> None:
    denied = [
        str(REPO / "runs"),
        str(REPO / "runs" / "README.md"),
        str(REPO / "pyproject.toml"),
        str(Path.home()),
        "/dev/shm",
        str(sandbox.root),  # other jobs' working directories
        f"/proc/{os.getpid()}/environ",  # the parent's environment (API keys)
        *[p for p in ("/etc/shadow", "/etc/hostname", "/etc/pip.conf", "/etc/gitconfig") if os.path.exists(p)],
    ]
    allowed = [evolve.__file__, "/etc/passwd", "/etc/ld.so.cache"]
    result = sandbox.run(call("try_read", paths=denied + allowed))
    assert {p: result.value[p] for p in allowed} == {p: "read" for p in allowed}
    assert {result.value[p] for p in denied} <= DENIED


@needs_landlock
def test_a_ruleset_made_ahead_serves_only_a_job_given_every_path_in_it(tmp_path: Path) -> None:
    """Rule: Prepared.take_ruleset -- rules added before the job was known never grant it more."""
    base = {"read": ["/usr", str(tmp_path)], "devices": ["/dev/null"]}
    narrower = {"read": ["/usr"], "write": [str(tmp_path / "job")], "devices": ["/dev/null"]}
    assert prepare(base, None).take_ruleset(narrower) == -1
    ruleset = prepare(base, None).take_ruleset({**narrower, "read": ["/usr", str(tmp_path), "/bin"]})
    assert ruleset >= 0
    os.close(ruleset)
    runs_python = {**base, "exec": ["/usr/bin/python3"]}  # rule exec-only-python: no exec it was not given
    assert prepare(runs_python, None).take_ruleset({**narrower, "read": base["read"]}) == -1


def test_no_network(sandbox: Sandbox) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        result = sandbox.run(call("try_connect", port=port), limits=Limits(timeout_s=20))
    assert result.value != "connected"
    assert result.containment["netns"]


def test_other_processes_sysv_shared_memory_is_invisible(sandbox: Sandbox) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    key = 0x5EB0 + os.getpid() % 1000
    segment = libc.shmget(key, 4096, 0o1600)  # IPC_CREAT | 0600
    assert segment >= 0
    try:
        result = sandbox.run(call("try_sysv_shm", key=key))
    finally:
        libc.shmctl(segment, 0, None)  # IPC_RMID
    assert result.value is False and result.containment["ipcns"]


@pytest.mark.skipif(landlock_abi() < 6, reason="Landlock signal scoping needs ABI 6")
def test_cannot_signal_processes_outside_the_sandbox(sandbox: Sandbox) -> None:
    result = sandbox.run(call("try_signal", pid=os.getpid()))
    assert result.value in DENIED
    assert result.containment["landlock_scoped"]


def test_concurrent_runs_from_threads(sandbox: Sandbox) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: sandbox.run(call("echo_after", value=i, delay=0.2)), range(12)))
    assert [r.value for r in results] == list(range(12))
    assert wait_until(lambda: processes_in(sandbox.root) == [])


@pytest.mark.slow
def test_backstop_kills_a_hung_supervisor() -> None:
    import psutil

    def freeze_supervisor() -> None:
        for proc in psutil.Process().children():
            if any(part.endswith("supervise.py") for part in proc.cmdline()):
                os.kill(proc.pid, signal.SIGSTOP)

    with Sandbox("fresh") as box:
        threading.Timer(0.5, freeze_supervisor).start()
        result = box.run(call("sleep_forever"), limits=Limits(timeout_s=1))
        assert result.status == "crashed" and "supervisor hung" in result.error
        assert wait_until(lambda: processes_in(box.root) == [])
        assert box.run(call("add", a=1)).ok


@needs_landlock
def test_symlinked_artefact_cannot_smuggle_a_file_in(sandbox: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"  # readable by the parent, not by a sandboxed job
    secret.write_text("parent-only")
    (tmp_path / "artefact.txt").symlink_to(secret)
    files = {"candidates.py": CANDIDATES, "artefact.txt": str(tmp_path / "artefact.txt")}
    job = Job.call("candidates:read_text", files=files, path="artefact.txt")
    result = sandbox.run(job)
    assert result.status == "error" and result.error.split(":")[0] in DENIED
