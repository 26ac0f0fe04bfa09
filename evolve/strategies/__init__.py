"""Search strategies: which candidates to mutate next. ``make_strategy(name, objectives, params)``."""

from __future__ import annotations

from typing import Any

from evolve.strategies.agent import AgentStrategy, CliAgent, ToolAgent
from evolve.strategies.base import Individual, Proposal, Strategy, StrategyError
from evolve.strategies.hillclimb import HillClimb
from evolve.strategies.islands import Islands
from evolve.strategies.random_search import RandomSearch
from evolve.tasks import Objective

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (Islands, HillClimb, RandomSearch, ToolAgent, CliAgent)}


def make_strategy(name: str, objectives: tuple[Objective, ...], params: dict[str, Any] | None = None) -> Strategy:
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r} (known: {', '.join(sorted(STRATEGIES))})")
    return STRATEGIES[name](objectives, params)


__all__ = ["AgentStrategy", "Individual", "Proposal", "Strategy", "StrategyError", "STRATEGIES", "make_strategy"]
