"""The narrow interface between the run loop and one agent iteration.

The run loop offers a :class:`Host` (its public face, :class:`evolve.run.EvolutionRun`): evaluate a
program in the run's sandbox and archive it at once (one commit per attempt, saved with the run
state, so a kill loses nothing that was evaluated), charge tokens and dollars to the run's budgets,
say whether a run budget is spent. Every attempt is a filed :class:`~evolve.candidate.Candidate`. An
:class:`AgentSession` wraps the host for one iteration: it starts from the iteration's base (the
current best), enforces the per-iteration limits on evaluations and tokens, never evaluates the
same program twice, and compares every attempt with the base using the strategy's Pareto ranker.
Figures come only from the evaluator; nothing an agent says about its program is ever used.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

from evolve.agents.notes import Notes
from evolve.candidate import Candidate
from evolve.tasks import Constraint, Objective
from evolve.usage import Usage

if TYPE_CHECKING:  # evolve.strategies imports this package: no import of it at module level
    from evolve.strategies.base import Proposal
    from evolve.strategies.ranking import Ranker


class Host(Protocol):
    """What the run loop gives a strategy's step (implemented by :class:`evolve.run.EvolutionRun`)."""

    objectives: tuple[Objective, ...]
    archive_dir: Path
    scratch: Path
    rng: random.Random
    llm: Any

    @property
    def constraints(self) -> tuple[Constraint, ...]: ...

    @property
    def task_description(self) -> str: ...

    @property
    def task_name(self) -> str: ...

    @property
    def task_options(self) -> dict[str, Any]:
        """What a user may pass to ``evolve eval`` (no hidden seed)."""

    @property
    def program_name(self) -> str: ...

    @property
    def run_dir(self) -> Path: ...

    @property
    def next_id(self) -> int: ...

    def stop_reason(self) -> str | None:
        """Why the run must stop now (a budget spent, the target reached), else None."""

    def wall_left(self) -> float | None:
        """Seconds left in the wall-time budget (None: no such budget)."""

    def charge(self, spend: Usage) -> None:
        """Add tokens and dollars to the run's counters at once (budgets see them)."""

    def evaluate(self, source: str, *, parent: int, intent: str, mutator: str, spend: Usage,
                 extra: dict[str, Any]) -> Candidate:
        """Evaluate ``source`` in the run's sandbox and archive it (with the run state)."""

    def reject(self, reason: str, kind: str = "no attempt") -> None:
        """Count an iteration that produced nothing to evaluate (``kind`` as in the run log)."""

    def candidate(self, cid: int) -> Candidate:
        """The filed candidate ``cid``."""

    def breed(self, propose: Callable[[random.Random], "Proposal"]) -> None:
        """One batch: a proposal per evaluation slot, mutate, evaluate, archive with the run state."""

    def checkpoint(self) -> None:
        """Save the run state (e.g. a strategy's decisions) without adding a candidate."""

    def commit_sha(self, cid: int) -> str: ...

    def recent(self) -> list[str]:
        """One-line summaries of the latest archived programs, oldest first."""


class SessionLimit(Exception):
    """The session may not do this (its evaluations or the run's budget are spent); one line."""


@dataclass
class AgentSession:
    """One iteration's view of the run: base program, limits, notes, what was spent and tried."""

    host: Host
    base: Candidate
    notes: Notes
    ranker: "Ranker"
    mutator: str
    iteration: int
    max_evaluations: int
    max_tokens: int | None = None
    attempts: list[Candidate] = field(default_factory=list, init=False)
    spent: Usage = field(default=Usage(), init=False)
    _unbilled: Usage = field(default=Usage(), init=False)  # spent since the last archived attempt

    def charge(self, spend: Usage) -> None:
        self.host.charge(spend)
        self.spent = self.spent + spend
        self._unbilled = self._unbilled + spend

    def stop_reason(self) -> str | None:
        """Why this session must end now, else None."""
        reason = self.host.stop_reason()
        if reason is None and self.max_tokens is not None and self.spent.tokens >= self.max_tokens:
            reason = f"token limit of the iteration reached ({self.spent.tokens} >= {self.max_tokens})"
        return reason

    @property
    def evaluations_left(self) -> int:
        return self.max_evaluations - len(self.attempts)

    def known(self, source: str) -> Candidate | None:
        """The attempt (or the base) that already has exactly this source."""
        return next((a for a in [self.base, *self.attempts] if a.source == source), None)

    def evaluate(self, source: str, intent: str, *, parent: int | None = None,
                 extra: dict[str, Any] | None = None) -> Candidate:
        """Evaluate and archive ``source``; raises :class:`SessionLimit` when no evaluation is left."""
        if self.evaluations_left <= 0:
            raise SessionLimit(f"no evaluations left in this iteration (limit {self.max_evaluations})")
        reason = self.host.stop_reason()
        if reason is not None:
            raise SessionLimit(f"the run must stop: {reason}")
        if parent is None:
            parent = self.attempts[-1].id if self.attempts else self.base.id
        spend, self._unbilled = self._unbilled, Usage(model=self._unbilled.model)
        attempt = self.host.evaluate(source, parent=parent, intent=intent, mutator=self.mutator, spend=spend,
                                     extra={"iteration": self.iteration, **(extra or {})})
        self.attempts.append(attempt)
        return attempt

    def compare(self, attempt: Candidate) -> str:
        """How ``attempt`` relates to the base, in words, by the Pareto ranker."""
        a, b = attempt, self.base
        if self.ranker.better(a, b):
            return f"better than the base #{self.base.id}"
        if self.ranker.better(b, a):
            return f"worse than the base #{self.base.id}"
        if self.ranker.usable(a) and self.ranker.point(a) != self.ranker.point(b):
            return f"a trade-off against the base #{self.base.id} (neither dominates)"
        return f"no better and no worse than the base #{self.base.id}"

    def transcript_path(self, suffix: str) -> Path:
        """Where this iteration's transcript goes (``runs/<run>/transcripts/iteration-0007.json``)."""
        path = self.host.run_dir / "transcripts" / f"iteration-{self.iteration:04d}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def best_of(attempts: list[Candidate], ranker: "Ranker") -> Candidate | None:
    """The best of ``attempts`` by the Pareto ranker (None for no attempts)."""
    return ranker.order(attempts)[0] if attempts else None
