"""Pareto hill climbing: always mutate a member of the current best group.

The "current best" is the feasible non-dominated set (or, before anything is feasible, the
candidates of least constraint violation). A child is accepted simply by being good enough to join
that group; nothing else is ever selected, so this is the simple keep/revert loop.
"""

from __future__ import annotations

import random

from pydantic import Field

from evolve.plugins import Params as PluginParams
from evolve.strategies.base import Proposal, Strategy


class HillClimb(Strategy):
    name = "hillclimb"

    class Params(PluginParams):
        inspirations: int = Field(default=2, ge=0, le=10)  # other front members shown to the mutator

    def choose(self, rng: random.Random) -> Proposal:
        best = self.ranker.front(self.population.all())
        parent = rng.choice(best)
        inspirations = self._inspirations(rng, best, parent.id, self.params["inspirations"])
        return Proposal(parents=(parent.id,), inspirations=inspirations, generation=parent.generation + 1)
