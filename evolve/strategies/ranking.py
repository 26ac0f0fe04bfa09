"""Multi-objective ranking of individuals: feasible before infeasible, Pareto fronts, then crowding.

Infeasible individuals are ordered by total constraint violation (smaller is better); feasible ones
by non-dominated front, then by crowding distance so spread-out points are preferred. A feasible
individual without a point (an objective missing or NaN) ranks with the infeasible ones: the rule of
:mod:`evolve.pareto`, which the archive's front obeys too.
"""

from __future__ import annotations

from typing import Sequence

from evolve.candidate import Candidate
from evolve.pareto import crowding_distance, non_dominated_sort, point
from evolve.tasks import Objective


class Ranker:
    def __init__(self, objectives: tuple[Objective, ...]) -> None:
        self.objectives = objectives

    def point(self, ind: Candidate) -> tuple[float, ...]:
        """The individual's objectives, all oriented for minimisation (only for a usable one)."""
        p = point(ind.metrics, self.objectives)
        assert p is not None, "point() of an individual without one"
        return p

    def usable(self, ind: Candidate) -> bool:
        """May ``ind`` be on a front: feasible, with every objective present and not NaN."""
        return ind.feasible and point(ind.metrics, self.objectives) is not None

    def front(self, pool: Sequence[Candidate]) -> list[Candidate]:
        """The best group: the feasible non-dominated set, or, with no feasible member, the
        individuals of least violation (ties kept, so neutral variants can drift)."""
        feasible = [ind for ind in pool if self.usable(ind)]
        if feasible:
            fronts = non_dominated_sort([self.point(ind) for ind in feasible])
            return [feasible[i] for i in fronts[0]]
        evaluated = [ind for ind in pool if ind.status == "ok"] or list(pool)
        if not evaluated:
            return []
        least = min(ind.violation for ind in evaluated)
        return [ind for ind in evaluated if ind.violation == least]

    def order(self, pool: Sequence[Candidate]) -> list[Candidate]:
        """All of ``pool`` from best to worst."""
        feasible = [ind for ind in pool if self.usable(ind)]
        rest = sorted((ind for ind in pool if not self.usable(ind)), key=lambda ind: (ind.status != "ok", ind.violation, ind.id))
        ordered: list[Candidate] = []
        if feasible:
            points = [self.point(ind) for ind in feasible]
            for front in non_dominated_sort(points):
                crowd = crowding_distance([points[i] for i in front])
                ranked = sorted(zip(front, crowd), key=lambda fc: (-fc[1], feasible[fc[0]].id))
                ordered.extend(feasible[i] for i, _ in ranked)
        return ordered + rest

    def better(self, a: Candidate, b: Candidate) -> bool:
        """Does ``a`` beat ``b`` outright (used for cell elites and acceptance)?"""
        ua, ub = self.usable(a), self.usable(b)
        if ua != ub:
            return ua
        if not ua:
            return (a.status == "ok", -a.violation) > (b.status == "ok", -b.violation)
        pa, pb = self.point(a), self.point(b)
        return all(x <= y for x, y in zip(pa, pb)) and pa != pb
