"""Hand-built archives with known numbers, and the toy run config the end-to-end tests use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evolve.archive import Archive, RunMeta
from evolve.candidate import Candidate
from evolve.evaluation import EvalResult
from evolve.tasks import Constraint, Objective
from evolve.usage import Usage

ROOT = Path(__file__).resolve().parents[2]
LIMIT = Constraint("error", "<=", 12.0)
OBJECTIVES = (Objective("error", "min"), Objective("chars", "min", "chars"))


def record(point: tuple[float, float] | None, parent: int | None, tokens: int = 0) -> Candidate:
    """A candidate at ``(error, chars)``, infeasible when error > 12; None is a crash."""
    if point is None:
        result = EvalResult(status="error", error="RuntimeError: boom")
    else:
        metrics = {"error": float(point[0]), "chars": float(point[1])}
        result = EvalResult(status="ok", metrics=metrics, feasible=LIMIT.satisfied(metrics),
                            violation=LIMIT.violation(metrics), wall_s=0.1)
    source = f"values = {list(point) if point else None!r}\nprint(values)\n"
    return Candidate(source=source, result=result, parents=() if parent is None else (parent,),
                           mutator="seed" if parent is None else "numeric", usage=Usage(tokens),
                           description=f"point {point}")


def build_run(run_dir: Path, batches: list[list[Any]], *, task: str = "toy", strategy: str = "hillclimb",
              counters: bool = True, tokens: int = 0, objectives: tuple[Objective, ...] = OBJECTIVES,
              budget: dict[str, Any] | None = None) -> Path:
    """An archive with one batch per list; every child's parent is candidate 0. With ``counters``
    each batch saves run-loop counters (wall time 1 s per batch) as ``EvolutionRun`` does."""
    config = {"strategy": {"name": strategy}, "mutators": [{"name": "numeric"}],
              "budget": budget or {"max_evaluations": sum(map(len, batches))}}
    meta = RunMeta(run=run_dir.name, task=task, objectives=objectives, constraints=(LIMIT,), config=config)
    done, spent_tokens = 0, 0
    with Archive.create(run_dir / "archive", meta) as archive:
        for b, batch in enumerate(batches):
            records = [record(p, None if done + i == 0 else 0, tokens) for i, p in enumerate(batch)]
            done += len(records)
            spent_tokens += tokens * len(records)
            state = {"counters": {"evaluations": done, "prompt_tokens": spent_tokens, "completion_tokens": 0,
                                  "cost_usd": 0.0, "wall_s": float(b + 1)}} if counters else {}
            archive.add_batch(records, state)
    return run_dir


def toy_run_config(output_dir: Path, name: str, **over: Any) -> dict[str, Any]:
    """A seconds-fast real run on the toy task; the seed (error 10.3) is feasible under error <= 12."""
    data: dict[str, Any] = {
        "run": {"name": name, "output_dir": str(output_dir), "seed": 1},
        "task": {"name": "toy", "constraints": ["error <= 12"]},
        "seeds": [str(ROOT / "seeds/toy/start.py")],
        "strategy": {"name": "hillclimb"},
        "mutators": [{"name": "numeric"}],
        "budget": {"max_evaluations": 8},
        "parallel": {"evaluations": 2},
    }
    data.update(over)
    return data
