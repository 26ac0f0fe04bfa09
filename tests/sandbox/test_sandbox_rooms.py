"""Rooms made ahead (working directory and cgroups): each job still gets its own limits, and a closed
sandbox leaves neither a mount nor a cgroup behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sandbox_testlib import call

from evolve.sandbox import Limits, Sandbox, cgroups, layers


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
