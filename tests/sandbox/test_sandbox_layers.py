"""Layers degrade loudly: a missing one is announced once and the sandbox still runs, with the
documented fallback (memfd refused, memory = RSS + workdir); `evolve doctor` shows the layers."""

from __future__ import annotations

from pathlib import Path

import pytest
from sandbox_testlib import PROGRAMS, call

from evolve.cli import main
from evolve.sandbox import Job, Limits, Sandbox, layers
from evolve.sandbox.hostile import CASES

needs_root_layers = pytest.mark.skipif(not layers.active()["namespaces"], reason="no private namespaces on this host")


def _hostile(name: str, **args: object) -> Job:
    return Job.call(f"evolve.sandbox.hostile:{name}", **args)


@pytest.fixture
def no_memory_cgroup(monkeypatch: pytest.MonkeyPatch) -> None:
    layers.probe()
    monkeypatch.setitem(layers._probed, "memory_cgroup", (False, "forced off by the test"))
    monkeypatch.setattr(layers, "_announced", set())


def test_a_missing_layer_is_announced_once(no_memory_cgroup: None, capsys: pytest.CaptureFixture[str]) -> None:
    Sandbox("fresh").close()
    Sandbox("fresh").close()
    lines = [line for line in capsys.readouterr().err.splitlines() if "memory_cgroup" in line]
    assert lines == ["evolve sandbox: no memory_cgroup (forced off by the test): memory is capped by RLIMIT_AS only; "
                     "the memory figure is peak RSS + working-directory size, and memfd_create is refused"]


@pytest.mark.parametrize("mode", ["fresh", "forkserver"])
def test_without_a_memory_cgroup_memfd_is_refused_and_files_count(no_memory_cgroup: None, mode: str) -> None:
    limits = Limits(timeout_s=60, file_size_mb=256)
    with Sandbox(mode, preload=("json",)) as box:
        refused = box.run(_hostile("memfd_fill", mb=10), limits=limits)
        written = box.run(_hostile("write_file", path="big.bin", mb=40), limits=limits)
    assert refused.status == "error" and refused.error.startswith("PermissionError")
    assert refused.containment["memfd_denied"] and not refused.containment["memory_cgroup"]
    assert written.ok and written.memory_source == "rss+disk"
    if layers.active()["disk_quota"]:
        assert 40 <= written.disk_used_mib <= 41
        assert written.peak_memory_mib >= written.peak_rss_delta_mib + 40


@needs_root_layers
@pytest.mark.parametrize("mode", ["fresh", "forkserver"])
def test_the_cgroup_figure_counts_what_rss_misses(mode: str) -> None:
    limits = Limits(timeout_s=60, file_size_mb=256)
    with Sandbox(mode, preload=("json",)) as box:
        bare = box.run(_hostile("memfd_fill", mb=0), limits=limits)
        held = box.run(_hostile("memfd_fill", mb=80), limits=limits)
    assert held.ok and held.memory_source == "cgroup" and not held.containment["memfd_denied"]
    assert held.peak_memory_mib - bare.peak_memory_mib >= 78  # 80 MiB, give or take page-cache charges
    assert held.peak_rss_delta_mib - bare.peak_rss_delta_mib < 10  # what ru_maxrss alone would have said
    assert held.summary()["peak_memory_mib"] == round(held.peak_memory_mib, 3)


def test_without_namespaces_jobs_still_run() -> None:
    with Sandbox("fresh", private_namespaces=False) as box:
        result = box.run(call("add", a=1))
    assert result.ok and not result.containment["private_view"] and not result.containment["unprivileged_uid"]


@needs_root_layers
def test_job_files_beyond_the_disk_quota_are_a_disk_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (3 << 20))
    with Sandbox("fresh") as box:
        result = box.run(Job.script("noop.py", files={"noop.py": str(PROGRAMS / "noop.py"), "big.bin": str(big)}),
                         limits=Limits(disk_mb=1))
    assert (result.status, result.limit) == ("limit", "disk")


@needs_root_layers
def test_a_script_filling_its_disk_is_a_disk_limit(tmp_path: Path) -> None:
    program = tmp_path / "fill.py"
    program.write_text("with open('f', 'wb') as f:\n    while True:\n        f.write(bytes(1 << 20))\n")
    with Sandbox("fresh") as box:
        result = box.run(Job.script("fill.py", files={"fill.py": str(program)}), limits=Limits(disk_mb=8))
    assert (result.status, result.limit) == ("limit", "disk") and "8 MB" in result.error


def test_doctor_lists_the_layers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--layers-only"]) == 0
    out = capsys.readouterr().out
    assert all(layer.name in out for layer in layers.LAYERS)


def test_doctor_says_a_missing_layer(no_memory_cgroup: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--layers-only"]) == 0
    assert "forced off by the test" in capsys.readouterr().out


@pytest.mark.slow
def test_doctor_runs_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", "--mode", "forkserver"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"{len(CASES)}/{len(CASES)} checks passed" in out


@pytest.mark.parametrize("mode", ["fresh", "forkserver"])
def test_a_directory_the_caller_gives_is_the_jobs_to_write(mode: str, tmp_path: Path) -> None:
    workdir = tmp_path / "given"
    workdir.mkdir(mode=0o700)
    with Sandbox(mode, preload=("json",)) as box:
        result = box.run(_hostile("write_files", paths=[str(workdir / "out.txt")]), workdir=workdir)
    assert result.ok and result.value == {str(workdir / "out.txt"): "done"}
    assert (workdir / "out.txt").read_text() == "escaped"
