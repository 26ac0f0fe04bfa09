"""The one definition of the Pareto front: point extraction, dominance, sorting, crowding, volume.

A leaf module (it imports nothing of evolve) used by the archive, the strategies' ranker and
``compare``, so the front they each compute is the same set by construction.

Every function works in *minimisation* space: :func:`point` orients maximised objectives. Results
are indices into the input list, so callers keep their own mapping from points to candidates.

NaN rule (one rule everywhere): a candidate whose objective is missing, not a number, or NaN has
*no point*. It is never on the front and is ranked with the infeasible candidates (by constraint
violation, after every candidate that has a point). NaN compares false with everything, so a NaN
coordinate left in a point would make that point undominated: the archive and the strategies used
to disagree on exactly this. ``inf`` is an ordinary value (a worst or best possible figure).

Non-dominated sorting and hypervolume run in moocore (exact C code): on this machine it returned
the same fronts and volumes as our former pure-Python code and was 100-5,000x faster for sorting
50-1,000 points and 1.4-200x faster for volumes (``bench/pareto_stats_libs.py``); the property
tests in ``tests/test_pareto.py`` check it against definitions written out there.

Ties and duplicates: ``a`` dominates ``b`` when it is no worse everywhere and strictly better
somewhere. Equal points therefore never dominate each other, so duplicates are *all* non-dominated
and share a front; the archive keeps every one of them (each is a distinct candidate that reached the
same trade-off, and dropping one would make the front depend on arrival order). Crowding distance
gives equal points equal distances, so a selection by crowding treats them alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

Point = Sequence[float]


class Oriented(Protocol):
    """An objective as this module sees it (``evolve.tasks.Objective`` fits)."""

    @property
    def name(self) -> str: ...

    def oriented(self, value: float) -> float: ...


def point(metrics: Mapping[str, object], objectives: Sequence[Oriented]) -> tuple[float, ...] | None:
    """The objective vector in minimisation space, or None when an objective is missing, not a
    number or NaN: such a candidate has no place on any front."""
    values = [metrics.get(o.name) for o in objectives]
    numbers: list[float] = []
    for v in values:
        if not isinstance(v, (int, float)) or math.isnan(v):
            return None
        numbers.append(float(v))
    return tuple(o.oriented(v) for o, v in zip(objectives, numbers))


def dominates(a: Point, b: Point) -> bool:
    """True when ``a`` is no worse than ``b`` in every coordinate and better in at least one."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def non_dominated(points: Sequence[Point]) -> list[int]:
    """Indices (ascending) of the points no other point dominates; duplicates are all kept."""
    if not points:
        return []
    keep = _moocore().is_nondominated(_array(points), keep_weakly=True)
    return [i for i, kept in enumerate(keep) if kept]


def non_dominated_sort(points: Sequence[Point]) -> list[list[int]]:
    """Partition the indices into fronts: front 0 is non-dominated, front k is non-dominated once
    fronts 0..k-1 are removed; indices ascending within a front."""
    if not points:
        return []
    ranks = [int(r) for r in _moocore().pareto_rank(_array(points))]
    fronts: list[list[int]] = [[] for _ in range(max(ranks) + 1)]
    for i, rank in enumerate(ranks):
        fronts[rank].append(i)
    return [front for front in fronts if front]


def crowding_distance(points: Sequence[Point]) -> list[float]:
    """NSGA-II crowding distance of each point within one front (larger = more isolated).

    Boundary points of every coordinate get ``inf``. Distances are computed over the distinct points
    and copied to duplicates, so equal points get equal distances whatever their order.
    """
    distinct = sorted(set(map(tuple, points)))
    distance = dict.fromkeys(distinct, 0.0)
    if len(distinct) <= 2:
        return [math.inf] * len(points)
    for k in range(len(distinct[0])):
        ordered = sorted(distinct, key=lambda p: p[k])
        low, high = ordered[0][k], ordered[-1][k]
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        if high == low:
            continue
        for left, mid, right in zip(ordered, ordered[1:], ordered[2:]):
            distance[mid] += (right[k] - left[k]) / (high - low)
    return [distance[tuple(p)] for p in points]


def hypervolume(points: Sequence[Point], reference: Point) -> float:
    """Volume dominated by ``points`` and bounded by ``reference`` (exact).

    Points that do not strictly dominate the reference in every coordinate add nothing. One
    objective is a difference; two or more go to moocore's exact algorithms.
    """
    inside = [tuple(p) for p in points if all(x < r for x, r in zip(p, reference))]
    if not inside:
        return 0.0
    if len(reference) == 1:
        return reference[0] - min(p[0] for p in inside)
    return float(_moocore().hypervolume(_array(inside), ref=list(reference)))


def by_violation(violations: Sequence[float]) -> list[int]:
    """Indices ordered from least to most total constraint violation (ties keep input order).

    Used to rank infeasible candidates: the one closest to feasibility first, missing metrics
    (violation ``inf``) last.
    """
    return sorted(range(len(violations)), key=lambda i: violations[i])


def _moocore() -> Any:
    """moocore (C code, exact), imported on first use so that importing this module stays free."""
    import moocore

    return moocore


def _array(points: Sequence[Point]) -> Any:
    import numpy

    return numpy.asarray([tuple(p) for p in points], dtype=float)
