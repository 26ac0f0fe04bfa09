"""Rule stdlib-only: a stdlib-only sandbox's jobs see the Python standard library and nothing
installed beside it -- no numpy or torch to time instead of the Python program, no ctypes to call
native libraries or jump into machine code the job wrote (evolve/sandbox/containment.py)."""

from __future__ import annotations

import json

import pytest
from sandbox_testlib import PROGRAMS

from evolve.evaluation import task_sandbox
from evolve.sandbox import Job, Sandbox
from evolve.tasks import get_task

IMPORTS = ("numpy", "torch", "yaml", "ctypes", "_ctypes", "_testcapi", "json", "random", "math", "mmap", "zlib")


def imports(box: Sandbox) -> tuple[dict[str, str], dict[str, bool]]:
    result = box.run(Job.script("imports.py", *IMPORTS, files={"imports.py": str(PROGRAMS / "imports.py")}))
    assert result.ok, (result.status, result.error, result.stderr[-500:])
    return json.loads(result.stdout), result.containment


def test_a_stdlib_only_job_imports_the_standard_library_and_nothing_installed() -> None:
    with Sandbox(stdlib_only=True) as box:
        found, containment = imports(box)
    if not containment.get("private_view"):
        pytest.skip("no private namespaces on this host: the rule is announced as not enforced")
    assert containment["stdlib_only"] is True  # checked in the job's own view
    assert {name: found[name] for name in ("numpy", "torch", "yaml")} == dict.fromkeys(("numpy", "torch", "yaml"), "ModuleNotFoundError")
    assert {name: found[name] for name in ("ctypes", "_ctypes", "_testcapi")} == dict.fromkeys(("ctypes", "_ctypes", "_testcapi"), "ImportError")
    assert all(found[name] == "ok" for name in ("json", "random", "math", "mmap", "zlib")), found


def test_by_default_a_job_imports_what_is_installed() -> None:
    # the contrast: the rule is a task's choice (torch tasks need torch), not the sandbox's default
    with Sandbox() as box:
        found, containment = imports(box)
    assert found["numpy"] == found["ctypes"] == "ok" and "stdlib_only" not in containment, found


def test_stdlib_only_needs_fresh_interpreters() -> None:
    # a forked worker inherits the zygote's modules (the script zygote's ctypes among them)
    with pytest.raises(ValueError, match="fresh interpreters"):
        Sandbox("forkserver", stdlib_only=True)


def test_microgpt_runs_stdlib_only_and_refuses_a_sandbox_that_is_not(tmp_path) -> None:
    from evolve.evaluation import evaluate

    task = get_task("microgpt", cache_dir=str(tmp_path))
    with task_sandbox(task) as box:
        assert box.stdlib_only and box.mode == "fresh"
    program = tmp_path / "p.py"
    program.write_text("print(1)\n")
    with Sandbox() as plain, pytest.raises(ValueError, match="stdlib-only"):
        evaluate(task, program, plain)

