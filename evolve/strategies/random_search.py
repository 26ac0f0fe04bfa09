"""Random search: a uniformly chosen evaluated candidate is the parent — no selection pressure.

The baseline that tells whether a strategy's selection is worth anything.
"""

from __future__ import annotations

import random

from evolve.strategies.base import Proposal, Strategy


class RandomSearch(Strategy):
    name = "random"
    defaults = {"inspirations": 0}

    def validate(self) -> None:
        self._param("inspirations", int, 0, 10)

    def propose(self, rng: random.Random) -> Proposal:
        pool = [ind for ind in self.population.all() if ind.status == "ok"] or self.population.all()
        parent = rng.choice(pool)
        inspirations = self._inspirations(rng, pool, parent.id, self.params["inspirations"])
        return Proposal(parents=(parent.id,), inspirations=inspirations, generation=parent.generation + 1)
