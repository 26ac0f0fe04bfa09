"""The archive's data types: run metadata, a record to add, a stored candidate, a run summary.

They are plain data that round-trip through JSON, so an archive can be read long after the run
without importing the task that produced it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from evolve import pareto
from evolve.evaluation import EvalResult
from evolve.tasks import Constraint, Objective

if TYPE_CHECKING:  # pragma: no cover - typing only
    from evolve.tasks import Task


class ArchiveError(Exception):
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


@dataclass(frozen=True, kw_only=True)
class CandidateRecord:
    """One evaluated program as the run loop hands it to :meth:`Archive.add_batch`."""

    source: str
    result: EvalResult
    parents: tuple[int, ...] = ()  # ids; two for a crossover child, none for a seed
    mutator: str = "seed"
    model: str | None = None
    description: str = ""  # the mutator's / agent's stated intent
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    generation: int = 0
    island: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parents", tuple(self.parents))

    @property
    def metrics(self) -> dict[str, float]:
        return self.result.metrics

    @property
    def status(self) -> str:
        return self.result.status

    @property
    def feasible(self) -> bool:
        return self.result.feasible

    @property
    def violation(self) -> float:
        return self.result.violation


#: Record fields stored next to the EvalResult fields in ``metrics.json``.
_RECORD_FIELDS = tuple(f.name for f in fields(CandidateRecord) if f.name not in ("source", "result"))


@dataclass(frozen=True, kw_only=True)
class Candidate(CandidateRecord):
    """A candidate stored in the archive: the record plus its identity."""

    id: int
    sha: str
    created_at: float

    def document(self) -> dict[str, Any]:
        """The ``metrics.json`` content: the EvalResult fields plus the record fields (no source,
        no sha: the sha names the commit that holds this document)."""
        doc = self.result.to_dict()
        doc.update({name: getattr(self, name) for name in _RECORD_FIELDS})
        doc["parents"] = list(self.parents)
        doc.update(id=self.id, created_at=self.created_at)
        return doc

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-able: the document plus sha and source."""
        return {"sha": self.sha, **self.document(), "source": self.source}

    @classmethod
    def from_document(cls, doc: dict[str, Any], *, source: str, sha: str) -> "Candidate":
        return cls(source=source, sha=sha, id=doc["id"], created_at=doc["created_at"],
                   result=EvalResult.from_dict(doc),
                   **{name: doc[name] for name in _RECORD_FIELDS})

    @classmethod
    def new(cls, record: CandidateRecord, *, id: int, sha: str, created_at: float) -> "Candidate":
        return cls(id=id, sha=sha, created_at=created_at,
                   **{f.name: getattr(record, f.name) for f in fields(CandidateRecord)})


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
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    eval_wall_s: float  # summed evaluation wall time
    elapsed_s: float  # archive creation to the last candidate

    @property
    def feasible_pct(self) -> float:
        return 100.0 * self.feasible / self.evaluations if self.evaluations else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "feasible_pct": self.feasible_pct}
