"""Pareto functions: hand-computed cases, then properties against independent definitions."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolve.pareto import (
    by_violation,
    crowding_distance,
    dominates,
    hypervolume,
    non_dominated,
    non_dominated_sort,
    point,
)
from evolve.tasks import Objective


def test_dominance_needs_one_strict_improvement():
    assert dominates((1, 2), (1, 3))
    assert not dominates((1, 3), (1, 2))
    assert not dominates((1, 2), (1, 2))  # equal points do not dominate each other
    assert not dominates((1, 3), (2, 2))  # a trade-off


def test_front_keeps_duplicates_and_drops_weakly_dominated_ties():
    points = [(1, 5), (2, 3), (2, 3), (3, 3), (4, 1), (5, 5), (4, 1)]
    # (3,3) ties (2,3) on y but is worse on x: dominated. Both copies of (2,3) and (4,1) stay.
    assert non_dominated(points) == [0, 1, 2, 4, 6]


def test_maximised_objectives_are_oriented_before_comparing():
    params, accuracy = Objective("params", "min"), Objective("accuracy", "max")
    raw = [(58, 0.92), (46, 1.0), (95, 1.0), (40, 0.5)]
    points = [(params.oriented(p), accuracy.oriented(a)) for p, a in raw]
    assert non_dominated(points) == [1, 3]  # 46 params at 100% beats 58@92% and 95@100%


def test_non_dominated_sort_hand_case():
    points = [(1, 4), (2, 2), (4, 1), (2, 4), (3, 3), (4, 4), (2, 2)]
    assert non_dominated_sort(points) == [[0, 1, 2, 6], [3, 4], [5]]
    assert non_dominated_sort([]) == []


def test_crowding_distance_hand_case():
    front = [(0, 4), (1, 2), (2, 1), (4, 0)]
    # (1,2): x-neighbours 0 and 2 -> 2/4; y-neighbours 1 and 4 -> 3/4. (2,1): 3/4 + 2/4.
    assert crowding_distance(front) == [math.inf, 1.25, 1.25, math.inf]


def test_crowding_distance_gives_duplicates_equal_values():
    front = [(1, 2), (0, 4), (1, 2), (4, 0)]
    assert crowding_distance(front) == [2.0, math.inf, 2.0, math.inf]
    assert crowding_distance([(1, 1), (1, 1)]) == [math.inf, math.inf]


def test_hypervolume_one_objective():
    assert hypervolume([(3,), (5,)], (10,)) == 7
    assert hypervolume([(12,)], (10,)) == 0.0


def test_hypervolume_2d_hand_case():
    # Boxes [1,4]x[3,4] (3) and [2,4]x[1,4] (6) overlap in [2,4]x[3,4] (2): 7.
    assert hypervolume([(1, 3), (2, 1)], (4, 4)) == 7
    # Duplicates, a dominated point, one outside and one on the reference boundary add nothing.
    assert hypervolume([(1, 3), (2, 1), (2, 1), (3, 3), (5, 0), (4, 0)], (4, 4)) == 7
    assert hypervolume([], (4, 4)) == 0.0


def test_hypervolume_3d_hand_case():
    assert hypervolume([(1, 1, 1)], (2, 2, 2)) == 1
    # [0,2]x[0,2]x[1,2] (4) + [1,2]x[1,2]x[0,2] (2) - overlap [1,2]^3 (1) = 5.
    assert hypervolume([(0, 0, 1), (1, 1, 0)], (2, 2, 2)) == 5


def test_hypervolume_with_a_maximised_objective():
    params, accuracy = Objective("params", "min"), Objective("accuracy", "max")
    front = [(params.oriented(50), accuracy.oriented(1.0)), (params.oriented(20), accuracy.oriented(0.5))]
    reference = (params.oriented(100), accuracy.oriented(0.0))
    # (100-50)*1.0 + (50-20)*0.5 = 65
    assert hypervolume(front, reference) == pytest.approx(65.0)


def test_infeasible_candidates_rank_by_violation():
    assert by_violation([0.5, math.inf, 0.1, 0.5]) == [2, 0, 3, 1]


# --- properties ------------------------------------------------------------------------------------
coords = st.integers(0, 6)  # small range: ties and duplicates are frequent
points_2d = st.lists(st.tuples(coords, coords), max_size=12)
points_3d = st.lists(st.tuples(coords, coords, coords), max_size=9)
any_points = st.one_of(points_2d, points_3d)


@given(any_points)
def test_front_is_exactly_the_non_dominated_set(points):
    front = set(non_dominated(points))
    for i, p in enumerate(points):
        if i in front:
            assert not any(dominates(q, p) for q in points)
        else:  # everything left out is dominated by a member of the front itself
            assert any(dominates(points[j], p) for j in front)


@given(any_points)
def test_non_dominated_sort_layers(points):
    fronts = non_dominated_sort(points)
    assert sorted(i for f in fronts for i in f) == list(range(len(points)))
    for k, front in enumerate(fronts):
        later = [i for f in fronts[k:] for i in f]
        assert not any(dominates(points[j], points[i]) for i in front for j in later)
        if k:
            assert all(any(dominates(points[j], points[i]) for j in fronts[k - 1]) for i in front)


def _union_volume(points, reference):
    """Inclusion-exclusion over all subsets: an independent (exponential) hypervolume."""
    total = 0.0
    for r in range(1, len(points) + 1):
        for subset in itertools.combinations(points, r):
            corner = [max(p[k] for p in subset) for k in range(len(reference))]
            total += (-1) ** (r + 1) * math.prod(max(0.0, ref - c) for ref, c in zip(reference, corner))
    return total


@given(st.one_of(st.lists(st.tuples(coords, coords), max_size=6),
                 st.lists(st.tuples(coords, coords, coords), max_size=5)))
def test_hypervolume_matches_inclusion_exclusion(points):
    reference = (5,) * (len(points[0]) if points else 2)
    assert hypervolume(points, reference) == pytest.approx(_union_volume(points, reference))


@given(st.data())
@settings(max_examples=150)
def test_hypervolume_is_monotone(data):
    dims = data.draw(st.sampled_from([1, 2, 3]))
    point = st.tuples(*[st.floats(0, 10, allow_nan=False)] * dims)
    points = data.draw(st.lists(point, max_size=8))
    extra = data.draw(point)
    reference = (10.0,) * dims
    before = hypervolume(points, reference)
    after = hypervolume([*points, extra], reference)
    assert after >= before - 1e-9
    if any(dominates(p, extra) or tuple(p) == extra for p in points):
        assert after == pytest.approx(before)  # a dominated or duplicate point adds nothing


@given(points_2d)
def test_crowding_distance_is_order_independent(points):
    distances = crowding_distance(points)
    for i, j in itertools.combinations(range(len(points)), 2):
        if points[i] == points[j]:
            assert distances[i] == distances[j]
    assert crowding_distance(points[::-1]) == distances[::-1]


def test_point_orients_and_has_no_point_for_missing_or_nan_objectives():
    objectives = (Objective("params", "min"), Objective("accuracy", "max"))
    assert point({"params": 58, "accuracy": 0.5}, objectives) == (58.0, -0.5)
    assert point({"params": math.inf, "accuracy": 1.0}, objectives) == (math.inf, -1.0)  # inf is a value
    assert point({"params": 58}, objectives) is None
    assert point({"params": math.nan, "accuracy": 1.0}, objectives) is None
    assert point({"params": "58", "accuracy": 1.0}, objectives) is None
