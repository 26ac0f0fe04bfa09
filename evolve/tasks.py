"""The task interface and the task registry.

A task is a plugin: one module ``evaluators/<name>.py`` that defines a :class:`Task` subclass and
exposes it as ``TASK``. The task declares what is optimised (objectives), what must hold
(constraints), how candidates are isolated, and how one candidate is evaluated. Tasks never import
strategy, mutator or archive code: data flows from the task outwards, never back.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import pkgutil
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from evolve.errors import UserError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from evolve.plugins import Params as PluginParams
    from evolve.evaluation import EvalResult
    from evolve.sandbox import Sandbox

Goal = Literal["min", "max"]
Isolation = Literal["fresh", "forkserver"]


class TaskError(UserError, ValueError):
    """A task name or task option is wrong; the message is one line meant for the user."""


class TaskFileError(TaskError):
    """A task file's own code raised while evaluating (the researcher's bug, not the candidate's):
    one line naming the file, line and exception; ``details`` is the whole traceback."""

    def __init__(self, message: str, details: str) -> None:
        super().__init__(message)
        self.details = details


def task_file_of(task: "Task") -> Path | None:
    """The file a task was loaded from (``task: {file: ...}``), or None for a built-in task."""
    module = sys.modules.get(type(task).__module__)
    if module is None or not type(task).__module__.startswith(_FILE_MODULE_PREFIX):
        return None
    return Path(module.__file__) if module.__file__ else None


@dataclass(frozen=True)
class Objective:
    """One quantity to optimise, read from ``EvalResult.metrics[name]``."""

    name: str
    goal: Goal = "min"
    unit: str = ""

    def oriented(self, value: float) -> float:
        """The value turned into a quantity to minimise (maximised objectives are negated)."""
        return value if self.goal == "min" else -value


_OPS = {
    ">=": lambda v, t: v >= t,
    "<=": lambda v, t: v <= t,
    "==": lambda v, t: v == t,
}


@dataclass(frozen=True)
class Constraint:
    """``metric op value`` that a candidate must satisfy to be feasible (e.g. accuracy >= 0.99)."""

    metric: str
    op: Literal[">=", "<=", "=="]
    value: float

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise TaskError(f"constraint {self.metric!r}: unknown operator {self.op!r} (use >=, <= or ==)")

    def satisfied(self, metrics: dict[str, float]) -> bool:
        v = metrics.get(self.metric)
        return v is not None and not _isnan(v) and _OPS[self.op](v, self.value)

    def violation(self, metrics: dict[str, float]) -> float:
        """How far the metric is from satisfying the constraint: 0 when satisfied, inf when missing."""
        v = metrics.get(self.metric)
        if v is None or _isnan(v):
            return math.inf
        if self.op == ">=":
            return max(0.0, self.value - v)
        if self.op == "<=":
            return max(0.0, v - self.value)
        return abs(v - self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"

    @classmethod
    def parse(cls, text: str) -> "Constraint":
        """Parse ``"accuracy >= 0.99"``."""
        for op in (">=", "<=", "=="):
            if op in text:
                name, _, value = text.partition(op)
                try:
                    return cls(name.strip(), op, float(value))
                except ValueError:
                    break
        raise TaskError(f"cannot parse constraint {text!r}: expected 'metric >= number' (or <=, ==)")


def _isnan(v: float) -> bool:
    return isinstance(v, float) and math.isnan(v)


class Task:
    """Base class of every task. Subclasses set the class attributes and implement :meth:`evaluate`.

    Options (e.g. the sorter's alphabet size) are declared as a :class:`~evolve.plugins.Params`
    model in ``Params`` (type, default, bounds) and arrive as keyword arguments; an unknown or
    invalid option raises :class:`TaskError` with a one-line message, checked by :meth:`parse_options`
    without building the task. A run may replace the declared
    objectives and constraints (the config's ``task.objectives``/``constraints``): they are
    constructor arguments, fixed once the task is built.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: Declared by the subclass; an instance may carry the run's own (see ``__init__``).
    objectives: tuple[Objective, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    isolation: ClassVar[Isolation] = "fresh"
    #: Modules the forkserver zygote imports before forking (e.g. ``("torch",)``).
    preload: ClassVar[tuple[str, ...]] = ()
    #: Optional trusted ``"module:function"`` the zygote calls once after preloading (cache warm-up).
    warmup: ClassVar[str | None] = None
    #: Jobs see the standard library only: no installed package (numpy, torch ...), no ctypes (rule
    #: ``stdlib-only``); for a task whose figures time a Python program (:class:`Sandbox`).
    stdlib_only: ClassVar[bool] = False
    #: The task's options: a typed model (a :class:`~evolve.plugins.Params` subclass) whose fields are
    #: the only keys the constructor accepts; None: the task takes no options.
    Params: ClassVar[type[PluginParams] | None] = None

    def __init__(self, *, objectives: tuple[Objective, ...] | None = None,
                 constraints: tuple[Constraint, ...] | None = None, **options: Any) -> None:
        if objectives is not None:
            self.objectives = objectives
        if constraints is not None:
            self.constraints = constraints
        self.params = self.parse_options(options)
        #: The parsed options as a plain mapping (what the task's phases receive as keyword arguments).
        self.options: dict[str, Any] = self.params.model_dump()

    @classmethod
    def parse_options(cls, options: dict[str, Any]) -> PluginParams:
        """The options validated into ``Params``; config validation calls this without building the task.
        (pydantic is imported here, not at the top: ``Objective`` and ``Constraint`` stay light.)"""
        from evolve.plugins import Params, parse_params

        return parse_params(cls.Params or Params, options, f"task {cls.name!r}", TaskError)

    def evaluate(self, program: Path, sandbox: "Sandbox") -> "EvalResult":
        """Evaluate one candidate program; candidate code only ever runs inside ``sandbox``."""
        raise NotImplementedError

    # --- derived helpers -------------------------------------------------------------------
    def feasible(self, metrics: dict[str, float]) -> bool:
        return all(c.satisfied(metrics) for c in self.constraints)

    def violation(self, metrics: dict[str, float]) -> float:
        """Total constraint violation, 0 for a feasible candidate (used to rank infeasible ones)."""
        return sum(c.violation(metrics) for c in self.constraints)

    def objective(self, name: str) -> Objective:
        for o in self.objectives:
            if o.name == name:
                return o
        raise TaskError(f"task {self.name!r} has no objective {name!r}")


@dataclass(frozen=True)
class TaskInfo:
    name: str
    description: str
    objectives: tuple[Objective, ...] = field(default_factory=tuple)
    constraints: tuple[Constraint, ...] = field(default_factory=tuple)


def task_class(name: str) -> type[Task]:
    """The Task subclass registered as ``name`` (imports its evaluator module), or defined in the
    task file ``name`` when it ends in ``.py`` (see :func:`load_task_file`)."""
    if name.endswith(".py"):
        return load_task_file(Path(name))
    if not name or not name.replace("_", "").isalnum():
        raise TaskError(f"unknown task {name!r} (known: {', '.join(task_names())})")
    try:
        module = importlib.import_module(f"evaluators.{name}")
    except ModuleNotFoundError as exc:
        if exc.name in (f"evaluators.{name}", "evaluators"):
            raise TaskError(f"unknown task {name!r} (known: {', '.join(task_names())})") from None
        raise
    cls = getattr(module, "TASK", None)
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TaskError(f"evaluators/{name}.py does not define TASK = <a Task subclass>")
    return cls


_FILE_MODULE_PREFIX = "evolve_task_file_"


def load_task_file(path: Path) -> type[Task]:
    """The ``TASK`` of a task file outside the ``evaluators`` package (``task: {file: ...}``).

    The file is trusted like a built-in task: it is imported in this (the parent) process, once per
    path and contents. Its ``evaluate`` runs candidates only through the sandbox it is given; a sandbox job
    ``Job.call`` can name only modules of the project packages, so a file task runs its candidate as
    a script (``Job.script``) and judges the output here, as ``evaluators/toy.py`` does.
    """
    path = path.expanduser().resolve()
    if not path.is_file():
        raise TaskError(f"task file {str(path)!r}: no such file")
    data = path.read_bytes()  # the module is keyed by path and contents: an edited file loads anew
    module_name = _FILE_MODULE_PREFIX + hashlib.sha256(str(path).encode() + b"\0" + data).hexdigest()[:12]
    module = sys.modules.get(module_name)
    if module is None:
        try:
            code = compile(data, str(path), "exec")
        except SyntaxError as exc:
            raise TaskError(f"task file {str(path)!r}: line {exc.lineno}: syntax error: {exc.msg}") from None
        module = types.ModuleType(module_name)
        module.__file__ = str(path)
        sys.modules[module_name] = module
        try:
            exec(code, module.__dict__)
        except BaseException:
            del sys.modules[module_name]
            raise
    cls = getattr(module, "TASK", None)
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TaskError(f"task file {str(path)!r} does not define TASK = <a Task subclass>")
    if cls.stdlib_only and cls.isolation != "fresh":
        raise TaskError(f"task file {str(path)!r}: stdlib_only needs isolation = 'fresh' "
                        "(a forked worker inherits its zygote's modules)")
    return cls


def task_names() -> list[str]:
    """Names of the tasks shipped in the ``evaluators`` package."""
    import evaluators

    return sorted(m.name for m in pkgutil.iter_modules(evaluators.__path__) if not m.name.startswith("_"))


def get_task(name: str, **options: Any) -> Task:
    """Instantiate the task ``name`` with ``options``; raises :class:`TaskError` on bad input."""
    return task_class(name)(**options)


def describe_tasks() -> list[TaskInfo]:
    infos = []
    for n in task_names():
        cls = task_class(n)
        infos.append(TaskInfo(n, cls.description, cls.objectives, cls.constraints))
    return infos
