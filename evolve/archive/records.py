"""The archive's data types: run metadata, a checkpoint, a run summary (the candidate record itself
is :class:`evolve.candidate.Candidate`).

They are plain data that round-trip through JSON, so an archive can be read long after the run
without importing the task that produced it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from evolve import pareto
from evolve.errors import UserError
from evolve.tasks import Constraint, Objective
from evolve.usage import Usage

if TYPE_CHECKING:  # pragma: no cover - typing only
    from evolve.tasks import Task


class ArchiveError(UserError):
    """The archive cannot do what was asked; the message is one line meant for the user."""


@dataclass(frozen=True)
class RunMeta:
    """What a run optimises, stored in the archive at creation and never changed afterwards."""

    run: str
    task: str
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()
    task_options: dict[str, Any] = field(default_factory=dict)
    program_file: str = "program.py"
    config: dict[str, Any] = field(default_factory=dict)  # free-form snapshot of the run's config
    created_at: float | None = None  # set by Archive.create

    @classmethod
    def for_task(cls, run: str, task: "Task", *, program_file: str = "program.py",
                 config: dict[str, Any] | None = None) -> "RunMeta":
        """Metadata for a run of ``task`` (copies its name, options, objectives and constraints)."""
        return cls(run=run, task=task.name, objectives=tuple(task.objectives),
                   constraints=tuple(task.constraints), task_options=dict(task.options),
                   program_file=program_file, config=dict(config or {}))

    def point(self, metrics: dict[str, float]) -> tuple[float, ...] | None:
        """The objective vector in minimisation space (None: no point, see :mod:`evolve.pareto`)."""
        return pareto.point(metrics, self.objectives)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunMeta":
        return cls(**{**data,
                      "objectives": tuple(Objective(**o) for o in data["objectives"]),
                      "constraints": tuple(Constraint(**c) for c in data["constraints"])})


@dataclass(frozen=True)
class Checkpoint:
    """One committed batch as :meth:`Archive.checkpoints` reads it back."""

    next_id: int  # candidates in the archive once this batch was committed (0: its creation)
    state: dict[str, Any]  # the writer's resume state saved with the batch


@dataclass(frozen=True)
class Summary:
    """Run-level figures for ``evolve show`` and reports."""

    run: str
    task: str
    evaluations: int
    feasible: int
    statuses: dict[str, int]
    front_size: int
    best: dict[str, dict[str, float] | None]  # objective -> {"id", "value"} over feasible ones
    spent: Usage  # the run's totals (its saved counters), or the candidates' sum without them
    eval_wall_s: float  # summed evaluation wall time
    elapsed_s: float  # archive creation to the last candidate
    rejected: int = 0  # mutations rejected before evaluation
    on_candidates: Usage = Usage()  # of ``spent``, what the archived candidates carry

    @property
    def feasible_pct(self) -> float:
        return 100.0 * self.feasible / self.evaluations if self.evaluations else 0.0

    @property
    def other_tokens(self) -> int:
        """Tokens spent on no archived candidate (rejected mutations, agent turns)."""
        return max(0, self.spent.tokens - self.on_candidates.tokens)

    @property
    def other_cost_usd(self) -> float:
        return max(0.0, self.spent.cost_usd - self.on_candidates.cost_usd)

    def to_dict(self) -> dict[str, Any]:
        """The ``show --json`` summary: spend as flat keys, as it always was."""
        plain = {k: v for k, v in asdict(self).items() if k not in ("spent", "on_candidates")}
        head = {k: plain.pop(k) for k in ("run", "task", "evaluations", "feasible", "statuses", "front_size", "best")}
        return {**head, **self.spent.to_dict(), **plain, "other_tokens": self.other_tokens,
                "other_cost_usd": self.other_cost_usd, "feasible_pct": self.feasible_pct}
