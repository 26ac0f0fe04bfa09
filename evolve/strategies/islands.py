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
from evolve.strategies.base import Proposal, Strategy, StrategyError
from evolve.tasks import Objective

Cell = tuple[int, ...]


class Islands(Strategy):
    name = "islands"
    defaults = {
        "islands": 4,
        "migration_interval": 10,
        "migration_rate": 0.1,
        "exploitation": 0.7,
        "exploration": 0.2,
        "features": None,  # default: [first objective, "code_length"]
        "bin_base": 1.25,
        "inspirations": 2,
    }

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
        self._param("islands", int, 1, 64)
        self._param("migration_interval", int, 1)
        self._param("migration_rate", float, 0.0, 1.0)
        self._param("exploitation", float, 0.0, 1.0)
        self._param("exploration", float, 0.0, 1.0)
        self._param("bin_base", float, 1.01)
        self._param("inspirations", int, 0, 10)
        if self.params["exploitation"] + self.params["exploration"] > 1.0:
            raise self._error("exploitation + exploration must be <= 1")
        features = self.params["features"]
        if features is None:
            features = [self.ranker.objectives[0].name, "code_length"]
        if not (isinstance(features, list) and features and all(isinstance(f, str) for f in features)):
            raise self._error(f"features must be a non-empty list of metric names (got {features!r})")
        self.features: list[str] = features

    def _error(self, msg: str) -> StrategyError:
        return StrategyError(f"strategy 'islands': {msg}")

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
    def propose(self, rng: random.Random) -> Proposal:
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
