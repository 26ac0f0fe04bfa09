"""Shared by the archive tests and the kill -9 driver: run metadata and record builders."""

from __future__ import annotations

import math
from typing import Any

from evolve.archive import RunMeta
from evolve.candidate import Candidate
from evolve.evaluation import EvalResult
from evolve.tasks import Constraint, Objective

ACCURACY = Constraint("accuracy", ">=", 0.9)
META = RunMeta(
    run="test",
    task="toy",
    objectives=(Objective("params_unique", "min", "params"), Objective("peak_rss_mib", "min", "MiB")),
    constraints=(ACCURACY,),
    task_options={"digits": 10},
    config={"strategy": {"name": "islands"}},
)


def record(params: float | None = 10, rss: float = 20.0, accuracy: float = 1.0, *,
           status: str = "ok", source: str | None = None, **fields: Any) -> Candidate:
    """A record whose feasibility follows META's constraint, as ``evaluate`` would set it."""
    metrics = {"accuracy": accuracy, "peak_rss_mib": rss}
    if params is not None:
        metrics["params_unique"] = params
    ok = status == "ok"
    result = EvalResult(status=status, metrics=metrics if ok else {},  # type: ignore[arg-type]
                        feasible=ok and ACCURACY.satisfied(metrics),
                        violation=ACCURACY.violation(metrics) if ok else math.inf,
                        error=None if ok else "RuntimeError: boom", wall_s=0.5)
    fields.setdefault("description", f"params={params} rss={rss} acc={accuracy}")
    return Candidate(source=source or f"PARAMS = {params!r}\nRSS = {rss!r}\n", result=result,
                           **fields)
