"""Rooms made ahead (working directory and cgroups): each job still gets its own limits, and a closed
sandbox leaves neither a mount nor a cgroup behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sandbox_testlib import call

from evolve.sandbox import Limits, Sandbox, cgroups, layers, leftovers


def _mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p.startswith(f"{root}/")]


def _own_cgroups() -> set[str]:
    found = set()
    for controller in ("pids", "memory"):
        base = cgroups.base_dir(controller)
        if base is not None:
            found |= {os.path.join(base, n) for n in os.listdir(base) if n.startswith(f"evolve-{os.getpid()}-")}
    return found


@pytest.mark.skipif(not layers.active()["pids_cgroup"], reason="no pids cgroup on this host")
def test_a_room_made_ahead_takes_each_job_s_own_process_limit() -> None:
    # Rule: Rooms.take writes the job's limits into cgroups made before the job was known.
    with Sandbox("forkserver", preload=("json",), limits=Limits(timeout_s=60)) as box:
        assert box.run(call("add", a=1)).ok  # from here on, jobs take rooms made ahead
        few = box.run(call("fork_children", n=10), limits=Limits(timeout_s=60, processes=4))
        many = box.run(call("fork_children", n=10), limits=Limits(timeout_s=60, processes=64))
    assert few.containment["pids_cgroup"] and few.value == 3  # the worker is the fourth
    assert many.value == 10


def test_a_closed_sandbox_leaves_no_mount_and_no_cgroup() -> None:
    # Rule: Rooms.close removes the rooms still waiting; the janitor, those jobs used.
    before = _own_cgroups()
    box = Sandbox("forkserver", preload=("json",))
    for _ in range(3):
        assert box.run(call("add", a=1)).ok
    if layers.active()["disk_quota"]:
        assert _mounts_under(box.root)  # rooms wait, mounted, for the next jobs
    box.close()
    assert _mounts_under(box.root) == []
    assert _own_cgroups() == before


# --- leftovers: what a sandbox killed with SIGKILL leaves (rule leftovers-swept) -------------------
_HOLD_A_WORKDIR = """
import os, signal, sys
from evolve.sandbox import Sandbox
box = Sandbox("fresh")
with box.workdir():
    print(box.root, flush=True)
    if sys.argv[1] == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.stdin.read()
"""


def _sandbox_process(tmp: Path, how: str) -> tuple[subprocess.Popen[str], Path]:
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen([sys.executable, "-c", _HOLD_A_WORKDIR, how], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


@pytest.mark.skipif(not layers.active()["disk_quota"], reason="no tmpfs working directories on this host")
def test_a_sandbox_killed_with_sigkill_leaves_mounts_the_next_sweep_removes(tmp_path: Path) -> None:
    """Rule leftovers-swept: a killed sandbox's mounted working directory and root are removed by
    the sweep (every new sandbox runs one); a live sandbox of another process keeps its mount."""
    live, live_root = _sandbox_process(tmp_path, "live")  # first: a new sandbox sweeps too
    try:
        dead, dead_root = _sandbox_process(tmp_path, "die")
        dead.wait(timeout=60)
        assert _mounts_under(dead_root) and _mounts_under(live_root)
        assert leftovers.sweep(str(tmp_path)) == [dead_root]
        assert not _mounts_under(dead_root) and not dead_root.exists()
        assert _mounts_under(live_root)
    finally:
        live.communicate("", timeout=60)
    assert not live_root.exists()  # and a clean exit leaves nothing


def test_a_root_is_judged_dead_only_by_its_own_pid_namespace_and_start_time(tmp_path: Path) -> None:
    """Rule leftovers-swept: a reused pid (same pid, another start time) is dead; a root owned by
    another pid namespace (another container sharing /tmp) or without an owner file is never touched."""
    me = json.loads(_owner_of(tmp_path / "evolve-sandbox-mine"))
    roots = {"reused": {**me, "pid": os.getppid(), "start": -1},
             "foreign": {**me, "pid": 2**22 + 7, "pidns": me["pidns"] + 1},
             "alive": {**me, "pid": os.getppid(), "start": leftovers._start_time(os.getppid())}}
    for name, owner in roots.items():
        (tmp_path / f"evolve-sandbox-{name}").mkdir()
        (tmp_path / f"evolve-sandbox-{name}" / leftovers.OWNER_FILE).write_text(json.dumps(owner))
    (tmp_path / "evolve-sandbox-unowned").mkdir()
    assert leftovers.sweep(str(tmp_path)) == [tmp_path / "evolve-sandbox-reused"]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [f"evolve-sandbox-{n}" for n in ("alive", "foreign", "mine", "unowned")]


def _owner_of(root: Path) -> str:
    root.mkdir()
    leftovers.claim(root, made=True)
    return (root / leftovers.OWNER_FILE).read_text()
