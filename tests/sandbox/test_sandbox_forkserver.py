"""The forkserver zygote: baseline memory, warm-up, life cycle, restart, torch."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import suppress

import psutil
import pytest
from sandbox_testlib import CANDIDATES, PROGRAMS, alive, call, children_whose, script, wait_until

from evolve.sandbox import ForkServerError, Job, Limits, Sandbox
from evolve.sandbox.zygote import SPARES_AHEAD


def zygote_pids() -> list[int]:
    """The call-job zygotes (``-m evolve.sandbox.zygote``), not the script zygote."""
    return children_whose("-m evolve.sandbox.zygote")


@pytest.fixture
def box() -> Sandbox:
    with Sandbox("forkserver", preload=("json",)) as sandbox:
        yield sandbox


def test_baseline_and_delta_are_reported(box: Sandbox) -> None:
    small = box.run(call("allocate", mb=0))
    big = box.run(call("allocate", mb=100))
    assert small.ok and big.ok
    assert small.baseline_rss_mib > 5 and big.baseline_rss_mib > 5
    assert 95 <= big.peak_rss_delta_mib - small.peak_rss_delta_mib <= 115


def test_script_jobs_fork_from_the_script_zygote_with_a_baseline(box: Sandbox) -> None:
    result = box.run(script("noop.py"))
    assert result.ok and result.baseline_rss_mib > 5  # a started interpreter, not a new one
    assert result.peak_rss_delta_mib < 5  # what the script adds, without the interpreter's own pages
    assert result.containment["private_view"] == result.containment["seccomp"] == True  # noqa: E712
    assert script_zygote_pids() and len(zygote_pids()) == 0  # the torch zygote is not needed for scripts


def test_script_job_runs_as_python_would(box: Sandbox) -> None:
    # argv, __name__, sys.path[0] (the script's folder) and an uncaught exception's traceback
    # (without the sandbox's frames) and exit status, as a fresh `python -s program.py x` gives.
    job = Job.script("program.py", "x", files={"program.py": str(PROGRAMS / "fails.py")})
    forked = box.run(job)
    with Sandbox("fresh") as fresh_box:
        fresh = fresh_box.run(job)
    assert (forked.status, forked.exit_code, forked.error) == (fresh.status, fresh.exit_code, fresh.error)
    assert "evolve/sandbox" not in forked.stderr and "script failed on purpose" in forked.stderr
    assert len(forked.stderr.splitlines()) == len(fresh.stderr.splitlines())


def script_zygote_pids() -> list[int]:
    return children_whose("bootstrap()")


def spare_supervisors() -> list[psutil.Process]:
    zygotes, spares = zygote_pids(), []
    for proc in psutil.process_iter(["name"]):
        with suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            if proc.info["name"] == "evolve-spare" and proc.ppid() in zygotes:
                spares.append(proc)
    return spares


def test_zygote_and_its_spare_supervisor_die_when_the_sandbox_closes() -> None:
    sandbox = Sandbox("forkserver", preload=("json",))
    assert sandbox.run(call("add", a=1)).ok
    (zygote,) = zygote_pids()
    assert wait_until(lambda: len(spare_supervisors()) == SPARES_AHEAD)  # forked ahead for the next jobs
    spares = spare_supervisors()
    sandbox.close()
    assert wait_until(lambda: not alive(zygote) and not any(alive(spare.pid) for spare in spares))
    with pytest.raises(RuntimeError, match="closed"):
        sandbox.run(call("add", a=1))


def test_killed_zygote_is_restarted_transparently(box: Sandbox) -> None:
    assert box.run(call("add", a=1)).ok
    (first,) = zygote_pids()
    assert wait_until(lambda: len(spare_supervisors()) == SPARES_AHEAD)
    spares = spare_supervisors()
    os.kill(first, signal.SIGKILL)
    assert wait_until(lambda: not alive(first) and not any(alive(spare.pid) for spare in spares))
    result = box.run(call("add", a=2))
    assert result.ok and result.value["sum"] == 2
    assert zygote_pids() not in ([], [first])


def test_a_worker_set_up_before_its_job_sees_the_job_s_working_directory(box: Sandbox, tmp_path) -> None:
    # Rule: the workdir's tmpfs, mounted after the spare's worker made its private mount table, reaches
    # the worker as a detached mount (open_tree/move_mount); a bind of the path would show it empty.
    assert box.run(call("add", a=1)).ok
    assert wait_until(lambda: len(spare_supervisors()) == SPARES_AHEAD)
    time.sleep(0.5)  # the spare's worker has its view by now, long before the next workdir exists
    data = tmp_path / "data.txt"
    data.write_text("made after the worker")
    job = Job.call("candidates:read_text", files={"candidates.py": CANDIDATES, "data.txt": str(data)}, path="data.txt")
    result = box.run(job)
    assert result.ok and result.value == "made after the worker"


def init_processes() -> set[int]:
    """The idle pid 1s of job pid namespaces under this test process."""
    found = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.cmdline()[:1] == ["evolve-init"] and proc.status() != psutil.STATUS_ZOMBIE:
                found.add(proc.pid)
        except psutil.Error:
            continue
    return found


def test_the_namespace_s_init_ends_with_its_job(box: Sandbox) -> None:
    if not box.run(call("add", a=1)).containment.get("private_view"):
        pytest.skip("no private namespaces on this host")
    assert wait_until(lambda: len(init_processes()) == SPARES_AHEAD)
    spare_inits = init_processes()  # the spares', waiting for the next jobs
    result = box.run(call("orphan_and_return"))  # the job leaves a setsid daemon in its namespace
    assert result.ok
    assert len(init_processes() & spare_inits) == SPARES_AHEAD - 1  # the job's (and its daemon) ended
    assert len(init_processes()) <= SPARES_AHEAD  # only the next spares'


def test_killed_spare_supervisors_are_replaced(box: Sandbox) -> None:
    assert box.run(call("add", a=1)).ok
    assert wait_until(lambda: len(spare_supervisors()) == SPARES_AHEAD)
    spares = spare_supervisors()
    for spare in spares:
        os.kill(spare.pid, signal.SIGKILL)
    assert wait_until(lambda: not any(alive(spare.pid) for spare in spares))
    after = box.run(call("add", a=2))
    assert after.ok and after.value["sum"] == 2, (after.status, after.error, after.stderr[-500:])


def test_zygote_killed_during_a_job_fails_it_at_once_and_the_next_job_runs(box: Sandbox) -> None:
    # Rule: a jailed job is watched by its zygote (watch.py) and dies with it (PR_SET_PDEATHSIG):
    # the job reads as crashed, saying why, instead of running unwatched or hanging to its timeout.
    first = box.run(call("add", a=1))
    assert first.ok
    (zygote,) = zygote_pids()
    threading.Timer(0.3, os.kill, (zygote, signal.SIGKILL)).start()
    result = box.run(call("echo_after", value="done", delay=5.0), limits=Limits(timeout_s=30))
    if first.containment.get("private_view"):
        assert (result.status, result.error) == ("crashed", "the forkserver died during the job")
    else:  # unjailed: the job's own supervisor does not depend on the zygote
        assert result.value == "done"
    assert box.run(call("add", a=3)).value["sum"] == 3


def test_failing_preload_raises_a_one_line_error() -> None:
    with (
        Sandbox("forkserver", preload=("no_such_module_xyz",)) as sandbox,
        pytest.raises(ForkServerError, match="No module named 'no_such_module_xyz'") as info,
    ):
        sandbox.run(call("add", a=1))
    assert "\n" not in str(info.value)


def test_warmup_runs_in_the_zygote_before_forking() -> None:
    with Sandbox("forkserver", warmup="tracemalloc:start") as sandbox:
        assert sandbox.run(call("is_tracing")).value is True
    with Sandbox("forkserver") as sandbox:
        assert sandbox.run(call("is_tracing")).value is False


@pytest.mark.slow
def test_torch_preloaded_forward_and_export_under_containment() -> None:
    with Sandbox("forkserver", preload=("torch",)) as sandbox:
        forward = sandbox.run(call("torch_forward"), limits=Limits(timeout_s=120))
        assert forward.value == {"shape": [1, 2], "threads": 1}
        assert forward.baseline_rss_mib > 100  # torch is in the zygote, not re-imported
        exported = sandbox.run(call("torch_export"), limits=Limits(timeout_s=120))
        assert exported.ok, exported.error
        assert exported.value > 0 and exported.containment["landlock"]


def test_jobs_share_the_zygotes_namespaces_with_ipc_disabled(box: Sandbox) -> None:
    """No job can leave SysV/POSIX IPC objects behind in the namespace the jobs share."""
    result = box.run(call("create_sysv_shm"))
    assert result.value is False
    assert result.containment["netns"] and result.containment["ipcns"]


@pytest.mark.parametrize("send_config", [True, False], ids=["parent-died-while-preparing", "parent-died-at-once"])
def test_a_zygote_whose_parent_died_exits_quietly(send_config: bool) -> None:
    """A run killed while its zygote imports torch must not leave a BrokenPipeError traceback on the
    user's terminal: the zygote finds its parent gone and exits with nothing on stderr."""
    import json
    import socket
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with theirs:
        proc = subprocess.Popen([sys.executable, "-m", "evolve.sandbox.zygote", str(theirs.fileno())],
                                pass_fds=[theirs.fileno()], stderr=subprocess.PIPE, cwd=root,
                                env={**os.environ, "PYTHONPATH": str(root)})
    if send_config:
        ours.send(json.dumps({"preload": ["json"], "warmup": None}).encode())
    ours.close()  # the parent dies before the zygote says hello
    _, err = proc.communicate(timeout=120)
    assert (proc.returncode, err.decode()) == (0, "")


def test_a_closed_forkserver_starts_no_zygote() -> None:
    """close() racing a start-up: when close() runs before the job thread has its zygote's handle,
    the start-up must find the server closed and start nothing (else close() waited on the job
    lock for the whole hello timeout; CI saw it hang). Pinned here without the race: close first."""
    from evolve.sandbox.zygote import ForkServer, ForkServerDied

    server = ForkServer(("json",), None, (sys.executable,), dict(os.environ), os.getcwd())
    server.close()
    with pytest.raises(ForkServerDied, match="closing"):
        server.fork(0, 0, [], timeout_s=1.0)
    assert not zygote_pids()


def test_close_cuts_a_zygote_start_up_short() -> None:
    """Ctrl-C while the zygote still imports torch: close() must not wait for the hello (the job
    thread holds the start-up lock for up to 15 minutes). A warm-up that never returns stands in."""
    box = Sandbox("forkserver", preload=("json",), warmup="signal:pause")
    outcome: list[object] = []

    def job() -> None:
        try:
            outcome.append(box.run(call("add", a=1)))
        except Exception as exc:  # the start-up is cut: an error is the expected end
            outcome.append(exc)

    runner = threading.Thread(target=job)
    runner.start()
    assert wait_until(lambda: bool(zygote_pids()), timeout=60)
    closer = threading.Thread(target=box.close)
    closer.start()
    closer.join(timeout=30)
    assert not closer.is_alive()
    runner.join(timeout=30)
    assert not runner.is_alive() and outcome
    assert wait_until(lambda: not zygote_pids())
