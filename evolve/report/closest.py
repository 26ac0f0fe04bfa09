"""The least-violating candidate: what to show while nothing is feasible yet.

An empty front says nothing about progress; the candidate with the smallest total constraint
violation (``EvalResult.violation``, the same number infeasible candidates are ranked by) and its
constraint values do. Used by the live progress line and the end-of-run summary.
"""

from __future__ import annotations

import math
from typing import Iterable

from evolve.candidate import Candidate
from evolve.numbers import format_metric
from evolve.tasks import Constraint


def closest(candidates: Iterable[Candidate]) -> Candidate | None:
    """The evaluated candidate with the least finite constraint violation (lowest id on ties)."""
    best: Candidate | None = None
    for cand in candidates:
        if math.isfinite(cand.violation) and (best is None or cand.violation < best.violation):
            best = cand
    return best


def constraint_values(cand: Candidate, constraints: Iterable[Constraint]) -> str:
    """``accuracy=91.94% (>= 0.99) hard_accuracy=...``: violated constraints first, then the rest."""
    ordered = sorted(constraints, key=lambda c: c.satisfied(cand.metrics))
    return " ".join(f"{c.metric}={format_metric(cand.metrics.get(c.metric), c.metric)}"
                    + ("" if c.satisfied(cand.metrics) else f" (need {c.op} {c.value:g})")
                    for c in ordered)


def closest_line(candidates: Iterable[Candidate], constraints: Iterable[Constraint]) -> str | None:
    """One line naming the least-violating candidate and its constraint values, or None."""
    cand = closest(candidates)
    if cand is None:
        return None
    return f"closest #{cand.id}: {constraint_values(cand, constraints)}"
