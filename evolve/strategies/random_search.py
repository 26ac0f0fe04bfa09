"""Random search: a uniformly chosen evaluated candidate is the parent — no selection pressure.

The baseline that tells whether a strategy's selection is worth anything.
"""

from __future__ import annotations

import random

from pydantic import Field

from evolve.plugins import Params as PluginParams
from evolve.strategies.base import Proposal, Strategy


class RandomSearch(Strategy):
    name = "random"

    class Params(PluginParams):
        inspirations: int = Field(default=0, ge=0, le=10)

    def choose(self, rng: random.Random) -> Proposal:
        pool = [ind for ind in self.population.all() if ind.status == "ok"] or self.population.all()
        parent = rng.choice(pool)
        inspirations = self._inspirations(rng, pool, parent.id, self.params["inspirations"])
        return Proposal(parents=(parent.id,), inspirations=inspirations, generation=parent.generation + 1)
