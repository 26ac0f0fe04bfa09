"""Evaluate one candidate program for one task: the single entry point everything else uses.

``evaluate(task, program)`` checks the input (file exists, Python parses), hands the program to the
task, which runs it only inside a :class:`~evolve.sandbox.Sandbox`, and returns an
:class:`EvalResult` whose feasibility is decided by the task's declared constraints.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from evolve import pyast
from evolve.errors import UserError
from evolve.sandbox import Limits, ProcessResult, Sandbox
from evolve.tasks import Task, TaskFileError, task_file_of

#: ok: evaluated; error/timeout/limit/crashed: the candidate failed while running;
#: invalid: the program could not be evaluated at all (unreadable, syntax error, interface missing).
Status = Literal["ok", "error", "timeout", "limit", "crashed", "invalid"]


class ProgramError(UserError, ValueError):
    """The program cannot be evaluated (missing file, syntax error, missing interface)."""


@dataclass
class EvalResult:
    status: Status
    metrics: dict[str, float] = field(default_factory=dict)
    feasible: bool = False
    violation: float = float("inf")
    error: str | None = None  # one line
    traceback: str | None = None  # tail, for the LLM and the user
    info: dict[str, Any] = field(default_factory=dict)  # e.g. the hidden seed used by the checker
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)  # per-process figures
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalResult":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @classmethod
    def failed(cls, proc: ProcessResult, phase: str, **info: Any) -> "EvalResult":
        """The result for a candidate whose ``phase`` process did not finish cleanly."""
        status = proc.status if proc.status != "ok" else "error"
        return cls(
            status=status,
            error=proc.error or f"{phase} failed",
            traceback=proc.traceback,
            info=dict(info),
            phases={phase: proc.summary()},
        )


def check_program(program: Path) -> str:
    """Return the program's source, or raise :class:`ProgramError` with a one-line reason."""
    if not program.exists():
        raise ProgramError(f"{program}: no such file")
    if not program.is_file():
        raise ProgramError(f"{program}: not a file")
    try:
        source = program.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProgramError(f"{program}: cannot read ({exc})") from None
    try:
        pyast.parse(source, filename=str(program))
    except SyntaxError as exc:
        raise ProgramError(f"{program}:{exc.lineno}: syntax error: {exc.msg}") from None
    return source


def _task_evaluate(task: Task, program: Path, sandbox: Sandbox) -> EvalResult:
    """``task.evaluate``; when a task *file* raises, a one-line :class:`TaskFileError` (its author
    needs the file, line and exception; the whole traceback rides along for the run log). A built-in
    task that raises is evolve's bug: its traceback is the report."""
    try:
        return task.evaluate(program, sandbox)
    except Exception as exc:
        path = task_file_of(task)
        if path is None:
            raise
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
        where = f"{path.name}:{frames[-1].lineno}" if frames else path.name
        reason = str(exc).splitlines()[0] if str(exc) else ""
        raise TaskFileError(f"task file {str(path)!r}: evaluate raised {type(exc).__name__}"
                            f"{': ' + reason if reason else ''} (at {where}); fix the task file",
                            "".join(traceback.format_exception(exc))) from None


def task_sandbox(task: Task, limits: Limits | None = None) -> Sandbox:
    """The sandbox ``task`` declares: its isolation mode, preload and warm-up, and stdlib-only rule."""
    return Sandbox(mode=task.isolation, preload=task.preload, warmup=task.warmup, limits=limits,
                   stdlib_only=task.stdlib_only)


def evaluate(task: Task, program: Path | str, sandbox: Sandbox | None = None) -> EvalResult:
    """Evaluate ``program`` for ``task``.

    A program that cannot be evaluated at all comes back with status ``invalid`` (nothing raised),
    so a search loop can archive it like any other failure. When ``sandbox`` is None a sandbox of the
    task's isolation mode is created for this one call.
    """
    program = Path(program)
    start = time.perf_counter()
    try:
        check_program(program)
    except ProgramError as exc:
        return EvalResult(status="invalid", error=str(exc), wall_s=time.perf_counter() - start)
    if sandbox is not None and task.stdlib_only and not sandbox.stdlib_only:
        raise ValueError(f"task {task.name!r} runs its jobs stdlib-only: evaluate it in task_sandbox(task)")
    own = sandbox is None
    box = sandbox or task_sandbox(task)
    try:
        result = _task_evaluate(task, program, box)
    finally:
        if own:
            box.close()
    result.wall_s = time.perf_counter() - start
    result.feasible = result.ok and task.feasible(result.metrics)
    result.violation = task.violation(result.metrics) if result.ok else float("inf")
    return result
