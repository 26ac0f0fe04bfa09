"""The Sandbox object itself: modes, roots, working directories, job files, closing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sandbox_testlib import CANDIDATES, PROGRAMS, call

from evolve.sandbox import Job, Limits, Sandbox


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown sandbox mode 'bogus'"):
        Sandbox("bogus")  # type: ignore[arg-type]


def test_default_root_is_private_and_removed_on_close() -> None:
    sandbox = Sandbox()
    root = sandbox.root
    assert root.stat().st_mode & 0o777 == 0o700
    with sandbox.workdir() as workdir:
        assert workdir.parent == root and workdir.stat().st_mode & 0o777 == 0o700
    assert not workdir.exists()
    sandbox.close()
    assert not root.exists()
    with pytest.raises(RuntimeError, match="closed"):
        sandbox.run(call("add", a=1))


def test_given_root_is_kept_and_job_dirs_are_cleaned(tmp_path: Path) -> None:
    root = tmp_path / "boxes"
    with Sandbox(root=root) as sandbox:
        result = sandbox.run(call("add", a=1))
        assert Path(result.value["cwd"]).parent == root
    assert root.is_dir() and list(root.iterdir()) == []


def test_given_workdir_is_used_and_kept(tmp_path: Path) -> None:
    with Sandbox() as sandbox, sandbox.workdir() as workdir:
        result = sandbox.run(call("write_file", mb=1), workdir=workdir)
        assert result.ok and (workdir / "big.bin").stat().st_size == 1 << 20


def test_job_files_and_directories_are_copied_in(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "names.txt").write_text("emma\n")
    files = {"candidates.py": CANDIDATES, "inputs": str(data), "sub/noop.py": str(PROGRAMS / "noop.py")}
    with Sandbox() as sandbox:
        result = sandbox.run(Job.call("candidates:try_read", files=files, paths=["inputs/names.txt", "sub/noop.py"]))
    assert result.value == {"inputs/names.txt": "read", "sub/noop.py": "read"}


def test_per_run_limits_override_the_sandbox_limits() -> None:
    with Sandbox(limits=Limits(timeout_s=0.5)) as sandbox:
        assert sandbox.run(call("echo_after", value=1, delay=2)).status == "timeout"
        assert sandbox.run(call("echo_after", value=1, delay=1), limits=Limits(timeout_s=20)).value == 1


def test_non_positive_timeout_is_refused() -> None:
    with Sandbox() as sandbox, pytest.raises(ValueError, match="timeout_s must be positive"):
        sandbox.run(call("add", a=1), limits=Limits(timeout_s=0))


def test_project_packages_are_importable_inside(sandbox: Sandbox) -> None:
    """Checkers are call jobs into ``evaluators``/``evolve``: both must import under -P and Landlock."""
    from evolve.tasks import task_names

    result = sandbox.run(Job.call("evolve.tasks:task_names"))
    assert result.ok, result.error
    assert result.value == task_names()


def test_workers_import_the_parents_copy_of_the_project(sandbox: Sandbox) -> None:
    """A clone beside an installed copy must evaluate with its own code, not site-packages'."""
    from evolve.sandbox.containment import package_dirs

    result = sandbox.run(Job.call("evolve.sandbox.containment:package_dirs"))
    assert result.ok, result.error
    inside = {name: os.path.realpath(path) for name, path in result.value.items()}
    assert inside == {name: os.path.realpath(path) for name, path in package_dirs().items()}
    assert set(inside) == {"evolve", "evaluators"}
