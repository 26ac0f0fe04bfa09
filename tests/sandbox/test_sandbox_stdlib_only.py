"""Rule stdlib-only: a stdlib-only sandbox's jobs see the Python standard library and nothing
installed beside it -- no numpy or torch to time instead of the Python program, no ctypes to call
native libraries or jump into machine code the job wrote (evolve/sandbox/containment.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evolve.evaluation import task_sandbox
from evolve.sandbox import Job, Sandbox
from evolve.sandbox.hostile import imports_script
from evolve.tasks import get_task

IMPORTS = ("numpy", "torch", "yaml", "ctypes", "_ctypes", "_testcapi", "json", "random", "math", "mmap", "zlib")


def imports(box: Sandbox, tmp_path: Path) -> tuple[dict[str, str], dict[str, bool]]:
    program = tmp_path / "imports.py"
    program.write_text(imports_script(IMPORTS))
    result = box.run(Job.script("imports.py", files={"imports.py": str(program)}))
    assert result.ok, (result.status, result.error, result.stderr[-500:])
    return json.loads(result.stdout.strip().splitlines()[-1]), result.containment


def test_a_stdlib_only_job_imports_the_standard_library_and_nothing_installed(tmp_path: Path) -> None:
    with Sandbox(stdlib_only=True) as box:
        found, containment = imports(box, tmp_path)
    if not containment.get("private_view"):
        pytest.skip("no private namespaces on this host: the rule is announced as not enforced")
    assert containment["stdlib_only"] is True  # checked in the job's own view
    assert {name: found[name] for name in ("numpy", "torch", "yaml")} == dict.fromkeys(("numpy", "torch", "yaml"), "ModuleNotFoundError")
    assert {name: found[name] for name in ("ctypes", "_ctypes", "_testcapi")} == dict.fromkeys(("ctypes", "_ctypes", "_testcapi"), "ImportError")
    assert all(found[name] == "imported" for name in ("json", "random", "math", "mmap", "zlib")), found


def test_by_default_a_job_imports_what_is_installed(tmp_path: Path) -> None:
    # the contrast: the rule is a task's choice (torch tasks need torch), not the sandbox's default
    with Sandbox() as box:
        found, containment = imports(box, tmp_path)
    assert found["numpy"] == found["ctypes"] == "imported" and "stdlib_only" not in containment, found


def test_without_namespaces_the_rule_is_said_not_enforced_and_each_job_reports_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # degrade loudly, never silently: one stderr line, and the job's containment says False
    from evolve.sandbox import layers

    layers._announced.discard("stdlib-only")  # said once per process: let this test see it
    with Sandbox(stdlib_only=True, private_namespaces=False) as box:
        found, containment = imports(box, tmp_path)
    said = [line for line in capsys.readouterr().err.splitlines() if "stdlib-only" in line]
    assert said == ["evolve sandbox: stdlib-only jobs are not enforced (no private namespaces): "
                    "a job can import any installed package"]
    assert containment["stdlib_only"] is False and found["numpy"] == "imported"


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

