"""Islands of MAP-Elites grids with ring migration (the OpenEvolve / AlphaEvolve recipe).

Each island keeps its members and a grid: feature cell -> elite. Features default to the first
objective and the program's code length, binned on a log scale (no global ranges to track, so a
value's cell never changes). A parent is drawn from the island's Pareto front (exploitation), from
all its members (exploration) or from a random cell's elite; inspirations come from the global front
and other cells. Whenever every island has produced ``migration_interval`` more children, the best
``migration_rate`` of each island are copied to the next island on the ring.
"""

from __future__ import annotations

import math
import random
from typing import Any

from evolve.candidate import Candidate
from pydantic import Field, model_validator

from evolve.plugins import Params as PluginParams
from evolve.strategies.base import Proposal, Strategy
from evolve.tasks import Objective

Cell = tuple[int, ...]


class Islands(Strategy):
    name = "islands"

    class Params(PluginParams):
        islands: int = Field(default=4, ge=1, le=64)
        migration_interval: int = Field(default=10, ge=1)  # children per island between migrations
        migration_rate: float = Field(default=0.1, ge=0.0, le=1.0)  # share of an island that emigrates
        exploitation: float = Field(default=0.7, ge=0.0, le=1.0)  # parent from the island's front
        exploration: float = Field(default=0.2, ge=0.0, le=1.0)  # parent from all its members
        features: list[str] | None = Field(default=None, min_length=1)  # default: [first objective, "code_length"]
        bin_base: float = Field(default=1.25, ge=1.01)
        inspirations: int = Field(default=2, ge=0, le=10)

        @model_validator(mode="after")
        def _shares(self) -> "Islands.Params":
            if self.exploitation + self.exploration > 1.0:
                raise ValueError("exploitation + exploration must be <= 1")
            return self

    def __init__(self, objectives: tuple[Objective, ...], params: dict[str, Any] | None = None) -> None:
        super().__init__(objectives, params)
        n = self.params["islands"]
        self.members: list[list[int]] = [[] for _ in range(n)]
        self.grids: list[dict[Cell, int]] = [{} for _ in range(n)]
        self.generations = [0] * n
        self._last_migration = 0
        #: (from_island, to_island, individual id) for every copy made by migration, in order.
        self.migrations: list[tuple[int, int, int]] = []

    def validate(self) -> None:
        features = self.params["features"]
        self.features: list[str] = features or [self.ranker.objectives[0].name, "code_length"]

    # --- population --------------------------------------------------------------------------
    def add(self, ind: Candidate) -> None:
        super().add(ind)
        targets = range(len(self.members)) if ind.island is None else [ind.island % len(self.members)]
        for i in targets:
            self._place(i, ind)
            if ind.island is not None:
                self.generations[i] += 1
        self._maybe_migrate()

    def _place(self, island: int, ind: Candidate) -> None:
        if ind.id not in self.members[island]:
            self.members[island].append(ind.id)
        cell = self.cell(ind)
        if cell is None:
            return
        grid = self.grids[island]
        incumbent = grid.get(cell)
        if incumbent is None or self.ranker.better(ind, self.population.members[incumbent]):
            grid[cell] = ind.id

    def cell(self, ind: Candidate) -> Cell | None:
        """The grid cell of ``ind``, or None when a feature is missing (e.g. a crashed candidate)."""
        values = []
        for f in self.features:
            v = ind.code_length if f == "code_length" else ind.metrics.get(f)
            if v is None or not math.isfinite(v):
                return None
            values.append(self._bin(float(v)))
        return tuple(values)

    def _bin(self, v: float) -> int:
        if v == 0:
            return 0
        b = 1 + int(math.floor(math.log(abs(v) + 1e-12) / math.log(self.params["bin_base"])))
        return b if v > 0 else -b

    def _maybe_migrate(self) -> None:
        interval = self.params["migration_interval"]
        n = len(self.members)
        if n < 2 or min(self.generations) - self._last_migration < interval:
            return
        self._last_migration = min(self.generations)
        outgoing = []
        for i in range(n):
            pool = [self.population.members[j] for j in self.members[i]]
            k = max(1, round(self.params["migration_rate"] * len(pool))) if pool else 0
            outgoing.append(self.ranker.order(pool)[:k])
        for i, emigrants in enumerate(outgoing):
            dest = (i + 1) % n
            for ind in emigrants:
                if ind.id not in self.members[dest]:
                    self.migrations.append((i, dest, ind.id))
                self._place(dest, ind)

    # --- selection ---------------------------------------------------------------------------
    def choose(self, rng: random.Random) -> Proposal:
        island = rng.randrange(len(self.members))
        pool = [self.population.members[j] for j in self.members[island]]
        r = rng.random()
        if r < self.params["exploitation"]:
            parent = rng.choice(self.ranker.front(pool))
        elif r < self.params["exploitation"] + self.params["exploration"] or not self.grids[island]:
            parent = rng.choice(pool)
        else:
            cells = sorted(self.grids[island])
            parent = self.population.members[self.grids[island][rng.choice(cells)]]
        inspirations = self._pick_inspirations(rng, island, parent.id)
        return Proposal((parent.id,), inspirations, island=island, generation=parent.generation + 1)

    def _pick_inspirations(self, rng: random.Random, island: int, parent: int) -> tuple[int, ...]:
        k = self.params["inspirations"]
        if k == 0:
            return ()
        best = [ind.id for ind in self.ranker.front(self.population.all()) if ind.id != parent]
        elites = sorted({e for e in self.grids[island].values() if e != parent and e not in best})
        rng.shuffle(best)
        rng.shuffle(elites)
        picks = best[: max(1, k // 2)] + elites
        return tuple(dict.fromkeys(picks))[:k]
