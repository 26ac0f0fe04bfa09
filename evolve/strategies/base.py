"""The strategy interface: what the run does next, given everything evaluated so far.

The run loop knows one protocol and no strategy type: it calls :meth:`Strategy.preflight` once,
:meth:`Strategy.add` with every filed :class:`~evolve.candidate.Candidate` (in archive order), and
:meth:`Strategy.step` with itself as the :class:`~evolve.agents.session.Host` until a budget is
spent; :meth:`get_state`/:meth:`set_state` ride in every checkpoint.

A population strategy (islands, hill climbing, random) answers :meth:`propose` with a
:class:`Proposal`, and its step is one batch (``host.breed(self.propose)``). Its state is a
deterministic function of the ``add`` calls and the run's RNG, so a resumed run rebuilds it by
replaying the archive. An agent strategy overrides :meth:`step` (one agent iteration). Selection is
multi-objective (Pareto), never a single scalar.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from evolve.candidate import Candidate
from evolve.errors import UserError
from evolve.plugins import Params as PluginParams
from evolve.plugins import parse_params
from evolve.errors import UserError
from evolve.strategies.ranking import Ranker
from evolve.tasks import Objective

if TYPE_CHECKING:  # the agents' host protocol; no import of the agent machinery at run time
    from evolve.agents.session import Host


class StrategyError(UserError, ValueError):
    """A bad strategy parameter; the message is one line."""


@dataclass(frozen=True)
class Proposal:
    """Mutate ``parents[0]`` (more parents: crossover), shown ``inspirations``; child joins ``island``."""

    parents: tuple[int, ...]
    inspirations: tuple[int, ...] = ()
    island: int | None = None
    generation: int = 0


@dataclass
class Population:
    """All individuals by id, in order of addition."""

    members: dict[int, Candidate] = field(default_factory=dict)

    def add(self, ind: Candidate) -> None:
        self.members[ind.id] = ind

    def __len__(self) -> int:
        return len(self.members)

    def all(self) -> list[Candidate]:
        return list(self.members.values())


class Strategy(ABC):
    name: ClassVar[str] = ""
    #: The strategy's parameters (see :mod:`evolve.plugins`); anything else in the config is rejected.
    Params: ClassVar[type[PluginParams]] = PluginParams

    @classmethod
    def parse(cls, params: dict[str, Any]) -> PluginParams:
        """Validate ``params`` (at config load, without building, and at construction)."""
        return parse_params(cls.Params, params, f"strategy {cls.name!r}", StrategyError, noun="parameter")

    def __init__(self, objectives: tuple[Objective, ...], params: dict[str, Any] | None = None) -> None:
        self.params: dict[str, Any] = self.parse(dict(params or {})).model_dump()
        self.ranker = Ranker(objectives)
        self.population = Population()
        self.validate()

    def validate(self) -> None:
        """Derive what the parameters imply once the objectives are known (values are already valid)."""

    def add(self, ind: Candidate) -> None:
        """Record an evaluated candidate (seeds first, then children in archive order)."""
        self.population.add(ind)

    def propose(self, rng: random.Random) -> Proposal:
        """Choose the next parent(s) and inspirations; a one-line :class:`StrategyError` when there
        is nothing to choose from (the run files its seeds first, so this is a guard, not a path)."""
        if not self.population:
            raise StrategyError(f"strategy {self.name!r}: no candidate to start from (the archive is empty)")
        return self.choose(rng)

    @abstractmethod
    def choose(self, rng: random.Random) -> Proposal:
        """Choose the next parent(s) and inspirations from a non-empty population."""

    # --- the run loop's protocol -------------------------------------------------------------
    def preflight(self) -> None:
        """Check what the strategy needs outside evolve, before a run creates anything."""

    def step(self, host: "Host") -> None:
        """One unit of work; a population strategy's is one batch of proposals."""
        host.breed(self.propose)

    def get_state(self) -> dict[str, Any]:
        """What a resumed run cannot rebuild by replaying the archive (JSON-able)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""

    # --- helpers shared by strategies ------------------------------------------------------
    def _inspirations(self, rng: random.Random, pool: list[Candidate], exclude: int, k: int) -> tuple[int, ...]:
        choices = [ind.id for ind in pool if ind.id != exclude]
        rng.shuffle(choices)
        return tuple(choices[:k])
