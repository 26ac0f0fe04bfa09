"""Timing objectives measured ``repeats`` times: the median, not one lucky (or unlucky) run.

On a shared machine one wall-time measurement rewards luck: a neighbour's burst makes a good
candidate look slow, a quiet second makes a bad one look fast. Tasks with a time objective
(sorter ``train_s``, microgpt ``wall_s``) take the option ``repeats`` (a :data:`Repeats` field of
their ``Params``, an int in [1, 15]): the timed run is repeated until there are that many
measurements and the objective is their median. Every repeat must
succeed (a candidate that fails on a repeat is failed, not measured on its good runs only); the
result's ``info`` says how many runs the median is over and lists them.
"""

from __future__ import annotations

import statistics
from typing import Annotated, Any, Callable

from pydantic import Field

from evolve.evaluation import EvalResult

#: The type of a task's ``repeats`` option (``repeats: Repeats = 3`` in its ``Params``): an int in [1, 15].
Repeats = Annotated[int, Field(ge=1, le=15)]


def repeated(first_s: float, repeats: int, again: Callable[[int], float | EvalResult]) -> list[float] | EvalResult:
    """All ``repeats`` measurements: ``first_s`` plus ``again(i)`` for i = 2..repeats, or the first
    failure ``again`` reports."""
    walls = [first_s]
    for i in range(2, repeats + 1):
        measured = again(i)
        if isinstance(measured, EvalResult):
            return measured
        walls.append(measured)
    return walls


def median(walls: list[float]) -> float:
    return round(float(statistics.median(walls)), 4)


def timing_info(name: str, walls: list[float]) -> dict[str, Any]:
    """What ``info`` says about a repeated objective: how many runs, and each of them."""
    return {f"{name}_repeats": len(walls), f"{name}_runs": [round(w, 4) for w in walls]}
