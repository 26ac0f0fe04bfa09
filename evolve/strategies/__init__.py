"""Search strategies: what the run does next. ``make_strategy(name, objectives, params)``.

Exports are lazy: the Pareto ranker and the population strategies import neither the agent
machinery nor an LLM client; only the ``agent``/``agent-cli`` strategies do, when built.
"""

from __future__ import annotations

from typing import Any

from evolve.plugins import plugin_class
from evolve.strategies.base import Proposal, Strategy, StrategyError
from evolve.tasks import Objective

#: The one list of strategy names: name -> "module:class" (imported when the strategy is built).
STRATEGIES: dict[str, str] = {
    "islands": "evolve.strategies.islands:Islands",
    "hillclimb": "evolve.strategies.hillclimb:HillClimb",
    "random": "evolve.strategies.random_search:RandomSearch",
    "agent": "evolve.strategies.agent:ToolAgent",
    "agent-cli": "evolve.strategies.agent:CliAgent",
}


def strategy_class(name: str) -> type[Strategy]:
    """The Strategy subclass registered as ``name``; raises :class:`StrategyError` for another name."""
    found: type[Strategy] = plugin_class(STRATEGIES, name, Strategy, "strategy", StrategyError)
    return found


def make_strategy(name: str, objectives: tuple[Objective, ...], params: dict[str, Any] | None = None) -> Strategy:
    return strategy_class(name)(objectives, params)


__all__ = ["Proposal", "STRATEGIES", "Strategy", "StrategyError", "make_strategy", "strategy_class"]
