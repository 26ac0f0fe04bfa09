"""Job builders and process checks shared by the sandbox tests."""

from __future__ import annotations

import time
from contextlib import suppress
from pathlib import Path

import psutil

from evolve.sandbox import Job

PROGRAMS = Path(__file__).parent / "programs"
CANDIDATES = str(PROGRAMS / "candidates.py")


def call(function: str, **args: object) -> Job:
    """A call job running ``programs/candidates.py:function`` from the job's working directory."""
    return Job.call(f"candidates:{function}", files={"candidates.py": CANDIDATES}, **args)


def script(name: str, *argv: str, stdin: str | None = None) -> Job:
    return Job.script(name, *argv, files={name: str(PROGRAMS / name)}, stdin=stdin)


def processes_in(root: Path) -> list[psutil.Process]:
    """Live processes whose working directory is a job directory under ``root``."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and proc.cwd().startswith(str(root / "job-")):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until(predicate, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def children_whose(cmdline_has: str) -> list[int]:
    """This process's children whose command line contains ``cmdline_has``; one that exits while we
    look is not one (supervisors and spares come and go under a running test)."""
    pids = []
    for proc in psutil.Process().children():
        with suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            if cmdline_has in " ".join(proc.cmdline()):
                pids.append(proc.pid)
    return pids
