"""Pareto hill climbing: always mutate a member of the current best group.

The "current best" is the feasible non-dominated set (or, before anything is feasible, the
candidates of least constraint violation). A child is accepted simply by being good enough to join
that group; nothing else is ever selected, so this is the simple keep/revert loop.
"""

from __future__ import annotations

import random

from evolve.strategies.base import Proposal, Strategy


class HillClimb(Strategy):
    name = "hillclimb"
    defaults = {"inspirations": 2}

    def validate(self) -> None:
        self._param("inspirations", int, 0, 10)

    def propose(self, rng: random.Random) -> Proposal:
        best = self.ranker.front(self.population.all())
        parent = rng.choice(best)
        inspirations = self._inspirations(rng, best, parent.id, self.params["inspirations"])
        return Proposal(parents=(parent.id,), inspirations=inspirations, generation=parent.generation + 1)
