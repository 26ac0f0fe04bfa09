"""How a job ends -> ProcessResult (status, value, error, limit), in both isolation modes."""

from __future__ import annotations

import pytest
from sandbox_testlib import PROGRAMS, call, script

from evolve.sandbox import Job, Limits, Sandbox

SHORT = Limits(timeout_s=1.5)


def test_call_returns_value_and_captures_stdout(sandbox: Sandbox) -> None:
    with sandbox.workdir() as workdir:
        result = sandbox.run(call("add", a=2, b=3), workdir=workdir)
    assert result.status == "ok", result.error
    assert result.value == {"sum": 5, "cwd": str(workdir)}
    assert result.stdout == "adding 2 3\n"
    assert result.exit_code == 0 and result.signal is None


def test_script_output_argv_and_stdin(sandbox: Sandbox) -> None:
    result = sandbox.run(script("hello.py", "a", "b", stdin="from the parent\n"))
    assert result.status == "ok"
    assert result.stdout == "hello a b\nstdin: from the parent\n"
    assert result.stderr == "to stderr\n"
    assert result.value is None


def test_call_job_reads_its_stdin(sandbox: Sandbox) -> None:
    job = Job("call", "candidates:read_stdin", files={"candidates.py": str(PROGRAMS / "candidates.py")}, stdin="abc")
    assert sandbox.run(job).value == "abc"
    assert sandbox.run(call("read_stdin")).value == ""  # no stdin given: /dev/null


def test_exception_gives_one_line_error_and_traceback(sandbox: Sandbox) -> None:
    result = sandbox.run(call("raise_value_error"))
    assert result.status == "error"
    assert result.error == "ValueError: boom from the candidate"
    assert "raise_value_error" in result.traceback and result.traceback.endswith("ValueError: boom from the candidate")


def test_unserialisable_result_is_an_error(sandbox: Sandbox) -> None:
    result = sandbox.run(call("not_json"))
    assert result.status == "error" and result.error.startswith("TypeError:")


@pytest.mark.parametrize("function", ["exit_with", "hard_exit"])
def test_exit_without_result(sandbox: Sandbox, function: str) -> None:
    result = sandbox.run(call(function, code=3))
    assert (result.status, result.exit_code) == ("error", 3)
    assert result.error == "exited with code 3 without a result"


def test_forged_garbage_result_is_an_error(sandbox: Sandbox) -> None:
    result = sandbox.run(call("forge_result"))
    assert result.status == "error" and "invalid result" in result.error


def test_a_result_nested_past_the_parser_s_depth_is_an_error_not_an_exception(sandbox: Sandbox) -> None:
    # Rule: nothing a job sends raises in the trusted parent -- json.loads raises RecursionError
    # (not a ValueError) for nesting past the interpreter's recursion limit
    result = sandbox.run(call("forge_nested_result", depth=100_000))
    assert result.status == "error" and "invalid result" in result.error


def test_signal_is_a_crash(sandbox: Sandbox) -> None:
    result = sandbox.run(call("segfault"))
    assert (result.status, result.signal) == ("crashed", 11)
    assert result.error == "killed by signal SIGSEGV"


@pytest.mark.parametrize("name", ["SIGSEGV", "SIGABRT", "SIGKILL", "SIGTERM"])
def test_a_signal_the_job_sends_itself_ends_it(sandbox: Sandbox, name: str) -> None:
    # Rule: the job is never pid 1 of its pid namespace (a pid 1 ignores its own fatal signals, and
    # faulthandler._sigsegv() used to return normally: status ok).
    result = sandbox.run(call("raise_signal", name=name))
    assert (result.status, result.error) == ("crashed", f"killed by signal {name}")
    assert result.value is None


def test_the_job_is_not_pid_1(sandbox: Sandbox) -> None:
    result = sandbox.run(call("own_pid"))
    assert result.ok and result.value != 1


def test_syntax_error_in_target(sandbox: Sandbox) -> None:
    job = Job.call("broken:f", files={"broken.py": str(PROGRAMS / "broken.py")})
    result = sandbox.run(job)
    assert result.status == "error" and result.error.startswith("SyntaxError:")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("no_such_module_xyz:f", "ModuleNotFoundError: No module named 'no_such_module_xyz'"),
        ("candidates:missing", "AttributeError:"),
    ],
)
def test_import_errors_in_target(sandbox: Sandbox, target: str, expected: str) -> None:
    job = Job.call(target, files={"candidates.py": str(PROGRAMS / "candidates.py")})
    result = sandbox.run(job)
    assert result.status == "error" and result.error.startswith(expected)


def test_malformed_target(sandbox: Sandbox) -> None:
    result = sandbox.run(Job.call("no_colon_here"))
    assert result.status == "error" and "package.module:function" in result.error


@pytest.mark.parametrize(
    ("name", "expected"), [("fails.py", "RuntimeError: script failed on purpose"), ("syntax_error.py", "SyntaxError:")]
)
def test_failing_script_reports_the_last_stderr_line(sandbox: Sandbox, name: str, expected: str) -> None:
    result = sandbox.run(script(name))
    assert result.status == "error" and result.exit_code == 1
    assert result.error.startswith(expected)
    assert "Traceback" in result.traceback or "SyntaxError" in result.traceback


@pytest.mark.parametrize("function", ["sleep_forever", "spin_forever"])
def test_timeout(sandbox: Sandbox, function: str) -> None:
    result = sandbox.run(call(function), limits=SHORT)
    assert (result.status, result.limit) == ("timeout", "time")
    assert result.error == "timed out after 1.5 s"
    assert result.wall_s >= 1.5  # killed at the deadline, not before


def test_cpu_limit(sandbox: Sandbox) -> None:
    result = sandbox.run(call("spin_forever"), limits=Limits(timeout_s=20, cpu_s=1))
    assert (result.status, result.limit) == ("limit", "cpu")
    assert result.cpu_s > 0.5  # rusage is sampled; the kernel signals at the 1 s soft limit


def test_memory_limit_in_call_job(sandbox: Sandbox) -> None:
    result = sandbox.run(call("memory_bomb"), limits=Limits(timeout_s=30, memory_mb=300))
    assert (result.status, result.limit) == ("limit", "memory")
    assert result.error.startswith("MemoryError")


def test_memory_limit_in_script(sandbox: Sandbox) -> None:
    result = sandbox.run(script("memory_hog.py"), limits=Limits(timeout_s=30, memory_mb=300))
    assert (result.status, result.limit) == ("limit", "memory")


def test_file_size_limit(sandbox: Sandbox) -> None:
    result = sandbox.run(call("write_file", mb=3), limits=Limits(timeout_s=10, file_size_mb=1))
    assert (result.status, result.limit) == ("limit", "file_size")
    assert sandbox.run(call("write_file", mb=1), limits=Limits(timeout_s=10, file_size_mb=2)).ok


def test_output_flood_is_truncated_to_the_head(sandbox: Sandbox) -> None:
    result = sandbox.run(script("flood.py"), limits=Limits(timeout_s=60, output_bytes=1000))
    assert result.status == "ok"
    assert result.stdout == "x" * 1000 and result.stderr == "x" * 1000
    assert result.stdout_truncated and result.stderr_truncated


def test_job_files_must_stay_inside_the_workdir(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="escapes the working directory"):
        sandbox.run(Job.call("x:f", files={"../outside.py": str(PROGRAMS / "noop.py")}))


def test_summary_has_the_archived_figures(sandbox: Sandbox) -> None:
    summary = sandbox.run(call("add", a=1)).summary()
    assert summary["status"] == "ok" and summary["exit_code"] == 0
    assert summary["peak_rss_mib"] > 0 and summary["wall_s"] > 0
