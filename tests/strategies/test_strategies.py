"""Strategies select on the Pareto front, rank infeasible candidates by violation, and migrate."""

from __future__ import annotations

import math
import random

import pytest

from evolve.candidate import Candidate
from evolve.evaluation import EvalResult
from evolve.strategies import StrategyError, make_strategy
from evolve.strategies.islands import Islands
from evolve.tasks import Objective

OBJ = (Objective("params", "min"), Objective("time", "min"))


def ind(i: int, params: float, time: float, feasible: bool = True, violation: float = 0.0,
        island: int | None = None, status: str = "ok") -> Candidate:
    result = EvalResult(status, {"params": params, "time": time}, feasible=feasible,  # type: ignore[arg-type]
                        violation=violation if not feasible else 0.0)
    return Candidate(id=i, source="x" * (100 + i), result=result, island=island)


def test_hillclimb_picks_only_from_the_front() -> None:
    s = make_strategy("hillclimb", OBJ)
    for x in [ind(0, 10, 10), ind(1, 5, 20), ind(2, 20, 5), ind(3, 30, 30), ind(4, 11, 11)]:
        s.add(x)
    rng = random.Random(0)
    parents = {s.propose(rng).parents[0] for _ in range(200)}
    assert parents == {0, 1, 2}


def test_infeasible_ranked_by_violation_with_ties_kept() -> None:
    s = make_strategy("hillclimb", OBJ)
    s.add(ind(0, 1, 1, feasible=False, violation=0.3))
    s.add(ind(1, 1, 1, feasible=False, violation=0.1))
    s.add(ind(2, 1, 1, feasible=False, violation=0.1))
    s.add(ind(3, 1, 1, feasible=False, violation=0.0, status="error"))  # crashed: not "least violation"
    rng = random.Random(1)
    assert {s.propose(rng).parents[0] for _ in range(100)} == {1, 2}
    s.add(ind(4, 50, 50))  # the first feasible candidate beats every infeasible one
    assert {s.propose(rng).parents[0] for _ in range(20)} == {4}


def test_random_strategy_has_no_selection_pressure() -> None:
    s = make_strategy("random", OBJ)
    for i in range(5):
        s.add(ind(i, 100 - i, i))
    rng = random.Random(2)
    assert {s.propose(rng).parents[0] for _ in range(300)} == set(range(5))


def test_unknown_and_bad_parameters() -> None:
    with pytest.raises(StrategyError, match="unknown parameter 'nope'"):
        make_strategy("islands", OBJ, {"nope": 1})
    with pytest.raises(StrategyError, match="migration_rate: must be <= 1.0 \\(got 3\\)"):
        make_strategy("islands", OBJ, {"migration_rate": 3})
    with pytest.raises(StrategyError, match="exploitation \\+ exploration"):
        make_strategy("islands", OBJ, {"exploitation": 0.8, "exploration": 0.5})
    with pytest.raises(StrategyError, match="unknown strategy"):
        make_strategy("annealing", OBJ)


def test_seeds_join_every_island_and_children_their_own() -> None:
    s = make_strategy("islands", OBJ, {"islands": 3})
    assert isinstance(s, Islands)
    s.add(ind(0, 10, 10))
    assert all(0 in m for m in s.members)
    s.add(ind(1, 9, 9, island=2))
    assert [1 in m for m in s.members] == [False, False, True]


def test_migration_moves_the_best_of_each_island_to_the_next() -> None:
    s = make_strategy("islands", OBJ, {"islands": 3, "migration_interval": 2, "migration_rate": 0.3})
    assert isinstance(s, Islands)
    s.add(ind(0, 100, 100))
    nid = 1
    # island 0 evolves a champion that only it has; islands 1 and 2 evolve mediocre children
    champion = None
    for rnd in range(2):
        for island in range(3):
            quality = 1 if island == 0 and rnd == 1 else 50 + nid
            s.add(ind(nid, quality, quality, island=island))
            if quality == 1:
                champion = nid
            nid += 1
    assert champion is not None
    assert (0, 1, champion) in s.migrations, s.migrations
    assert champion in s.members[1] and champion not in s.members[2]
    # once migrated, the champion is selectable from island 1's front
    rng = random.Random(5)
    picks = [p for p in (s.propose(rng) for _ in range(300)) if p.island == 1]
    assert any(p.parents[0] == champion for p in picks)


def test_no_migration_before_every_island_progressed() -> None:
    s = make_strategy("islands", OBJ, {"islands": 2, "migration_interval": 3})
    assert isinstance(s, Islands)
    s.add(ind(0, 10, 10))
    for i in range(1, 10):
        s.add(ind(i, 10 - i * 0.1, 10, island=0))  # island 1 never progresses
    assert s.migrations == []


def test_islands_grid_keeps_the_better_elite_per_cell() -> None:
    s = make_strategy("islands", OBJ, {"islands": 1, "features": ["params"]})
    assert isinstance(s, Islands)
    s.add(ind(0, 100, 10, feasible=False, violation=0.5))
    s.add(ind(1, 101, 10, island=0))  # same log bin as 100, feasible -> replaces
    cell = s.cell(s.population.members[1])
    assert s.grids[0][cell] == 1
    s.add(ind(2, 100.5, 20, island=0))  # same cell, dominated on time -> keeps 1
    assert s.grids[0][cell] == 1


def test_proposals_are_deterministic_for_a_seed() -> None:
    def run() -> list:
        s = make_strategy("islands", OBJ, {"islands": 2})
        s.add(ind(0, 10, 10))
        for i in range(1, 8):
            s.add(ind(i, 10 + i, 10 - i, island=i % 2))
        rng = random.Random(42)
        return [s.propose(rng) for _ in range(20)]

    assert run() == run()


@pytest.mark.parametrize("name", ["hillclimb", "islands", "random", "agent"])
def test_every_strategy_copes_with_an_empty_or_all_failed_archive(name: str) -> None:
    """An empty population is a one-line StrategyError (never IndexError); all-failed seeds are
    still parents (an LLM can repair a crashing program from its error)."""
    from evolve.strategies import STRATEGIES

    assert {"hillclimb", "islands", "random", "agent"} <= set(STRATEGIES)
    s = make_strategy(name, OBJ)
    with pytest.raises(StrategyError) as info:
        s.propose(random.Random(0))
    assert str(info.value) == f"strategy {name!r}: no candidate to start from (the archive is empty)"
    failed = [Candidate(id=i, source=f"broken {i}", result=EvalResult("error", {}, feasible=False, violation=math.inf,
                                                                      error="SyntaxError"))
              for i in range(2)]
    for c in failed:
        s.add(c)
    rng = random.Random(1)
    assert {s.propose(rng).parents[0] for _ in range(50)} <= {0, 1}
