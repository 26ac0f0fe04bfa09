"""Plain-text descriptions an agent reads: goals, a program's measured figures, a failure's tail.

Shared by the tool-calling agent (tool results, first message), the external CLI agent (its prompt)
and the journal, so every agent sees a program described the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from evolve.evaluation import EvalResult
from evolve.tasks import Constraint, Objective

TRACEBACK_LINES = 12


def goals(objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> str:
    lines = ["Objectives: " + ", ".join(
        f"{'minimise' if o.goal == 'min' else 'maximise'} {o.name}" + (f" ({o.unit})" if o.unit else "")
        for o in objectives) + "."]
    if constraints:
        lines.append("Constraints (a program violating one is never kept): "
                     + ", ".join(str(c) for c in constraints) + ".")
    return "\n".join(lines)


def figures(result: EvalResult) -> str:
    """``error=1.5 chars=210 (ok, feasible)``: every metric, then the verdict."""
    shown = " ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(result.metrics.items()))
    verdict = result.status if not result.ok else "ok, feasible" if result.feasible else "ok, infeasible"
    return f"{shown} ({verdict})" if shown else f"status {verdict}"


def failure(result: EvalResult) -> str:
    """The error line and the traceback tail of a failed evaluation ("" when it ran)."""
    if result.ok:
        return ""
    text = f"error: {result.error}" if result.error else "error: (no message)"
    if result.traceback:
        tail = result.traceback.strip().splitlines()[-TRACEBACK_LINES:]
        text += "\ntraceback (last lines):\n" + "\n".join(tail)
    return text


def clip(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
