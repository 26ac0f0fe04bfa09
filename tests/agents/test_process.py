"""Running an external command in its own process group: output, deadline, group kill, stop requests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from evolve.agents.process import run_group

PY = sys.executable


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: list[int], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(gone(p) for p in pids):
            return True
        time.sleep(0.02)
    return False


def run(code: str, tmp_path: Path, timeout_s: float = 10.0, stop_on: str | None = None):
    lines: list[str] = []

    def on_line(line: str) -> str | None:
        lines.append(line)
        return "asked to stop" if stop_on is not None and line == stop_on else None

    result = run_group([PY, "-c", code], cwd=tmp_path, env={"PATH": os.environ["PATH"]}, stdin=None,
                       timeout_s=timeout_s, on_line=on_line)
    return result, lines


def test_lines_exit_code_and_stderr_tail(tmp_path: Path) -> None:
    code = "import sys\nprint('a'); print('b', end='')\nsys.stderr.write('oops\\n'); sys.exit(3)"
    result, lines = run(code, tmp_path)
    assert lines == ["a", "b"]
    assert (result.exit_code, result.signal, result.timed_out, result.stopped) == (3, None, False, None)
    assert result.stderr_tail == "oops\n"


def sleeper_with_a_child(pidfile: Path) -> str:
    """A command that starts a child, writes "CHILD_PID ITS_PID" to ``pidfile``, says so and sleeps."""
    return (f"import os, subprocess, sys, time\n"
            f"c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
            f"open({str(pidfile)!r}, 'w').write(f'{{c.pid}} {{os.getpid()}}')\n"
            f"print('started', flush=True); time.sleep(600)")


def test_deadline_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    start = time.monotonic()
    result, lines = run(sleeper_with_a_child(pidfile), tmp_path, timeout_s=1.5)
    assert time.monotonic() - start < 5
    assert result.timed_out and result.signal == 9 and lines == ["started"]
    assert wait_gone([int(p) for p in pidfile.read_text().split()])


def test_a_leader_that_exits_leaves_no_background_process(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    code = (f"import subprocess, sys\n"
            f"c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'],"
            f" stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            f"open({str(pidfile)!r}, 'w').write(str(c.pid))")
    result, _ = run(code, tmp_path)
    assert result.exit_code == 0 and not result.timed_out and result.wall_s < 5
    assert wait_gone([int(pidfile.read_text())])


def test_the_callback_can_stop_the_command(tmp_path: Path) -> None:
    code = "import time\nfor i in range(10**6):\n    print(i, flush=True); time.sleep(0.01)"
    result, lines = run(code, tmp_path, stop_on="5")
    assert result.stopped == "asked to stop" and not result.timed_out
    assert lines[:6] == [str(i) for i in range(6)] and len(lines) < 100


def test_a_missing_command_is_an_error_not_an_exit_code(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no-such-agent"):
        run_group(["no-such-agent"], cwd=tmp_path, env={"PATH": os.environ["PATH"]}, stdin=None, timeout_s=5,
                  on_line=lambda line: None)


def test_a_command_killed_by_a_signal_reports_that_signal(tmp_path: Path) -> None:
    result, _ = run("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", tmp_path)
    assert (result.exit_code, result.signal) == (None, 15)


def test_the_group_dies_when_evolve_is_killed(tmp_path: Path) -> None:
    """SIGKILL the process running ``run_group``: nothing gets to clean up, yet the group goes."""
    pidfile = tmp_path / "pids"
    agent = sleeper_with_a_child(pidfile)
    host = (f"import os, sys\n"
            f"from pathlib import Path\n"
            f"from evolve.agents.process import run_group\n"
            f"run_group([sys.executable, '-c', {agent!r}], cwd=Path({str(tmp_path)!r}),"
            f" env={{'PATH': os.environ['PATH']}}, stdin=None, timeout_s=600, on_line=lambda line: None)")
    evolve = subprocess.Popen([PY, "-c", host])
    try:
        deadline = time.monotonic() + 20
        while not (pidfile.exists() and len(pidfile.read_text().split()) == 2):
            assert time.monotonic() < deadline and evolve.poll() is None, "the agent never started"
            time.sleep(0.05)
        pids = [int(p) for p in pidfile.read_text().split()]
        assert not any(gone(p) for p in pids)
    finally:
        evolve.kill()
        evolve.wait()
    assert wait_gone(pids)
