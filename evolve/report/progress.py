"""Live progress of a run (rich): evaluations, feasible share, best per objective, tokens/cost, ETA."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from evolve.run import EvolutionRun, RunOutcome


def best_per_objective(run: "EvolutionRun") -> dict[str, float]:
    """Best value of each objective among feasible candidates seen so far."""
    best: dict[str, float] = {}
    for k in run.known.values():
        if not k.result.feasible:
            continue
        for o in run.objectives:
            v = k.result.metrics.get(o.name)
            if v is None or not math.isfinite(v):
                continue
            if o.name not in best or o.oriented(v) < o.oriented(best[o.name]):
                best[o.name] = v
    return best


def status_line(run: "EvolutionRun") -> str:
    c = run.counters
    n = len(run.known)
    feasible = sum(1 for k in run.known.values() if k.result.feasible)
    share = f"{100 * feasible / n:.0f}%" if n else "-"
    best = best_per_objective(run)
    bests = " ".join(f"{name}={value:.4g}" for name, value in best.items()) or "none feasible yet"
    money = f" tokens={c.tokens} ${c.cost_usd:.4f}" if c.tokens else ""
    return f"feasible {share} | best {bests}{money} | rejected {c.rejected}"


class RunProgress:
    """A progress bar over the run's main budget, updated after every batch."""

    def __init__(self, run: "EvolutionRun", console: Console) -> None:
        self.run = run
        self.console = console
        budget = run.config.budget
        self.total = budget.max_evaluations
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} evals" if self.total else "{task.completed} evals"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task_id: Any = None

    def __enter__(self) -> "RunProgress":
        self.progress.start()
        self.task_id = self.progress.add_task(self.run.config.run.name, total=self.total, status="starting")
        return self

    def __exit__(self, *exc: object) -> None:
        self.update(self.run)
        self.progress.stop()

    def update(self, run: "EvolutionRun") -> None:
        self.progress.update(self.task_id, completed=run.counters.evaluations, status=status_line(run))

    def summary(self, outcome: "RunOutcome") -> None:
        from evolve.archive import Archive
        from evolve.report.console import make_console
        from evolve.report.show import print_front

        c = outcome.counters
        self.console.print(f"[bold]{self.run.config.run.name}[/]: stopped — {outcome.stop_reason}")
        self.console.print(f"{c.evaluations} evaluations, {c.rejected} rejected mutations, "
                           f"{c.tokens} tokens, ${c.cost_usd:.4f}, {c.wall_s:.1f} s")
        with Archive.open(self.run.archive_dir) as archive:
            print_front(archive, make_console())
        if outcome.interrupted:
            self.console.print(f"resume with: evolve run CONFIG --resume  (or: evolve resume {self.run.config.run.name})")
