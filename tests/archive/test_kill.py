"""A real kill -9: a writer SIGKILLed at random points, then resumed, loses and duplicates nothing,
whether it writes each batch before going on or leaves the writing to the archive's writer thread."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evolve.archive import Archive

DRIVER = Path(__file__).with_name("kill_driver.py")
BATCHES = 120


def start(path: Path, behind: bool = False) -> subprocess.Popen:
    # Own session: killpg takes the driver's git children down with it.
    return subprocess.Popen([sys.executable, str(DRIVER), str(path), str(BATCHES), "5", *(["behind"] * behind)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def run_to_end(path: Path, behind: bool = False) -> None:
    out, err = start(path, behind).communicate(timeout=300)
    assert out.endswith("done\n"), err


def batch_period(proc: subprocess.Popen, batches: int) -> float:
    """Let ``batches`` batches through and return the median time one took, so a kill after a
    uniform delay in [0, period] lands anywhere in a batch whatever the machine's speed."""
    stamps = []
    for _ in range(batches):
        assert proc.stdout.readline().strip().isdigit(), proc.stderr.read()
        stamps.append(time.monotonic())
    gaps = sorted(b - a for a, b in zip(stamps, stamps[1:]))
    return gaps[len(gaps) // 2]


def contents(path: Path) -> list[tuple]:
    with Archive.open(path) as a:
        return [(c.id, c.source, c.parents, c.status, c.metrics, c.mutator, c.description)
                for c in a.candidates()]


def git(path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True)


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(tmp_path):
    reference = tmp_path / "reference" / "archive"
    run_to_end(reference)
    path = tmp_path / "killed" / "archive"
    rng = random.Random(2024)
    seen = []
    for attempt in range(8):
        proc = start(path, behind=attempt % 4 >= 2)  # each kill style with and without write-behind
        if attempt == 0:
            time.sleep(rng.uniform(0.05, 0.4))  # somewhere in start-up, creation or the first batches
        else:
            assert proc.stdout.readline() == "ready\n", proc.stderr.read()
            time.sleep(rng.uniform(0.0, batch_period(proc, rng.randint(2, 6))))
        # The driver alone (its git child may finish the ref transaction it was given), or the
        # whole process group (git killed mid-transaction too).
        if attempt % 2:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        if path.exists():
            seen.append(len(contents(path)))  # opens cleanly after every kill
    assert len(seen) >= 7 and seen == sorted(seen) and seen[-1] < len(contents(reference))
    run_to_end(path, behind=True)
    assert contents(path) == contents(reference)
    fsck = git(path, "fsck", "--full")
    assert fsck.returncode == 0 and "error" not in fsck.stderr, fsck.stderr
    refs = git(path, "for-each-ref", "--format=%(refname)", "refs/evolve/candidates/").stdout.split()
    assert sorted(refs) == sorted(f"refs/evolve/candidates/{c[0]}" for c in contents(reference))
    assert git(path, "status", "--porcelain").stdout == ""  # the best checkout followed along
    best = [git(p, "log", "--format=%s", "best").stdout for p in (path, reference)]
    assert best[0] == best[1] and best[0]
