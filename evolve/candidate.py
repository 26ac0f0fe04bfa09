"""The candidate: one program and everything we know about it, in one frozen record.

Where a candidate lives, in order (a newcomer's map of the loop):

- **born**: a mutator returns a :class:`~evolve.mutators.Mutation` (a child's source, or a rejection
  with its reason; :mod:`evolve.run` ``_batch``), or an agent submits source through
  :class:`~evolve.run.RunHost`;
- **judged**: :func:`evolve.evaluation.evaluate` runs it in the sandbox and returns an
  :class:`~evolve.evaluation.EvalResult`; the loop wraps source, result and lineage into a
  :class:`Candidate` (``id`` still :data:`UNFILED`);
- **filed**: :meth:`evolve.archive.Archive.add_batch` commits it to git and returns the same record
  with ``id``, ``sha`` and ``created_at`` set; the loop hands that record to the strategy
  (:meth:`evolve.strategies.Strategy.add`), mutators (``MutationContext.parent``) and agents;
- **shown**: ``evolve show`` / ``report`` / ``compare`` read it back from the archive
  (:meth:`Candidate.from_document`), never write it.

Before this record there were eight shapes with hand-written field copies between them (the loop's
``Known``, the strategies' ``Individual``, the mutators' ``ProgramView``, the agents' ``Attempt``,
the archive's ``CandidateRecord``/``Candidate``); one of them typed the id as ``str`` and received
an ``int``. Now the fields are declared once, and the evaluation's result is embedded, not copied.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from evolve.evaluation import EvalResult
from evolve.usage import KEYS, Usage

#: The id of a candidate the archive has not filed yet.
UNFILED = -1

#: Lineage and provenance stored in ``metrics.json`` next to the EvalResult fields, in this order;
#: ``model`` and the three :data:`~evolve.usage.KEYS` are the candidate's :class:`Usage`, flat.
_DOCUMENT_FIELDS = ("parents", "mutator", "model", "description", *KEYS, "generation", "island", "extra")
_OWN_FIELDS = ("parents", "mutator", "description", "generation", "island", "extra")


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A program, how it was made, how it was judged, and (once filed) where the archive keeps it."""

    source: str
    result: EvalResult
    parents: tuple[int, ...] = ()  # ids; two for a crossover child, none for a seed
    mutator: str = "seed"
    description: str = ""  # the mutator's / agent's stated intent
    usage: Usage = Usage()  # what making it cost, and the model that made it (none for a seed)
    generation: int = 0
    island: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    id: int = UNFILED  # set by the archive, in order of filing
    sha: str = ""  # the git commit that holds it
    created_at: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "parents", tuple(self.parents))

    # --- what everybody reads ---------------------------------------------------------------
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

    @property
    def code_length(self) -> int:
        """Characters of source: the islands' default second feature."""
        return len(self.source)

    @property
    def filed(self) -> bool:
        return self.id != UNFILED

    def filed_as(self, *, id: int, sha: str, created_at: float) -> "Candidate":
        """The same candidate with the archive's identity."""
        return replace(self, id=id, sha=sha, created_at=created_at)

    # --- storage ----------------------------------------------------------------------------------
    def document(self) -> dict[str, Any]:
        """The ``metrics.json`` content: the EvalResult fields plus lineage and provenance (no
        source, no sha: the sha names the commit that holds this document)."""
        doc = self.result.to_dict()
        own = {name: getattr(self, name) for name in _OWN_FIELDS}
        flat = {**own, **self.usage.to_dict(), "model": self.usage.model, "parents": list(self.parents)}
        doc.update({name: flat[name] for name in _DOCUMENT_FIELDS})
        doc.update(id=self.id, created_at=self.created_at)
        return doc

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-able: the document plus sha and source."""
        return {"sha": self.sha, **self.document(), "source": self.source}

    @classmethod
    def from_document(cls, doc: dict[str, Any], *, source: str, sha: str) -> "Candidate":
        return cls(source=source, sha=sha, id=doc["id"], created_at=doc["created_at"],
                   result=EvalResult.from_dict(doc), usage=Usage.from_dict(doc, doc.get("model")),
                   **{name: doc[name] for name in _OWN_FIELDS})
