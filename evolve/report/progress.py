"""Live progress of a run (rich): evaluations, feasible share, best per objective (or, while nothing
is feasible, the least-violating candidate and its constraint values), tokens/cost, ETA.

The bar is one line that fits the terminal (the status column is cut with an ellipsis, never
wrapped); counters start from the archive's on resume; the ETA disappears once the run stops.
``verbose`` prints one line per evaluation above the bar.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Column
from rich.text import Text

from evolve.report.closest import closest_line, constraint_values
from evolve.numbers import format_metric

if TYPE_CHECKING:
    from evolve.candidate import Candidate
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
    units = {o.name: o.unit for o in run.objectives}
    best = " ".join(f"{name}={format_metric(value, name, units.get(name, ''))}"
                    for name, value in best_per_objective(run).items())
    if not best:
        best = closest_line(run.known.values(), run.task.constraints) or "nothing evaluated yet"
    else:
        best = "best " + best
    money = f" | {c.tokens} tok ${c.spent.cost_usd:.4f}" if c.tokens else ""
    rejected = f" | rejected {c.rejected}" if c.rejected else ""
    return f"feasible {share} | {best}{money}{rejected}"


def evaluation_line(cand: "Candidate", run: "EvolutionRun") -> str:
    """``-v``: one line per evaluation: id, parent, mutator, status, objectives, constraints."""
    parents = ",".join(f"#{p}" for p in cand.parents) or "seed"
    if not cand.result.ok:
        error = (cand.result.error or "").splitlines()[0][:60] if cand.result.error else ""
        return f"#{cand.id} <- {parents} {cand.mutator}: {cand.status} {error}".rstrip()
    objectives = " ".join(f"{o.name}={format_metric(cand.metrics.get(o.name), o.name, o.unit)}"
                          for o in run.objectives)
    verdict = "feasible" if cand.feasible else "infeasible"
    return f"#{cand.id} <- {parents} {cand.mutator}: {verdict} {objectives} | " \
           f"{constraint_values(cand, run.task.constraints)}"


def _saved_evaluations(run: "EvolutionRun") -> int:
    """The evaluations a resumed run already spent (its archive's state), before the run restores it."""
    counters = (run.archive.state() or {}).get("counters", {})
    return int(counters.get("evaluations", 0))


class _Remaining(TimeRemainingColumn):
    """The ETA while the run is going; nothing once it has stopped (a stale guess misleads)."""

    def render(self, task: Task) -> Text:
        return Text("") if task.fields.get("stopped") else super().render(task)


class RunProgress:
    """A progress bar over the run's main budget, updated after every batch."""

    def __init__(self, run: "EvolutionRun", console: Console, *, verbose: bool = False) -> None:
        self.run = run
        self.console = console
        self.verbose = verbose
        self.printed = 0 if run.fresh else None  # resume: candidates before the first update are old
        budget = run.config.budget
        self.total = budget.max_evaluations
        self.progress = Progress(
            TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True, max_width=16)),
            BarColumn(bar_width=10),
            TextColumn("{task.completed}/{task.total}" if self.total else "{task.completed} evals",
                       table_column=Column(no_wrap=True)),
            TextColumn("{task.fields[status]}", markup=False,
                       table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
            TimeElapsedColumn(),
            _Remaining(),
            console=console,
            transient=False,
            expand=True,
        )
        self.task_id: Any = None

    def __enter__(self) -> "RunProgress":
        self.progress.start()
        done = 0 if self.run.fresh else _saved_evaluations(self.run)
        self.task_id = self.progress.add_task(self.run.config.run.name, total=self.total, completed=done,
                                              status="resuming" if done else "starting", stopped=False)
        return self

    def __exit__(self, *exc: object) -> None:
        self.update(self.run)
        self.progress.update(self.task_id, stopped=True)
        self.progress.stop()

    def update(self, run: "EvolutionRun") -> None:
        if self.printed is None:
            self.printed = len(run.known)
        if self.verbose:
            for cand_id in range(self.printed, len(run.known)):
                self.progress.console.print(evaluation_line(run.known[cand_id], run), markup=False,
                                            highlight=False, overflow="ellipsis", no_wrap=True)
        self.printed = len(run.known)
        self.progress.update(self.task_id, completed=run.counters.evaluations, status=status_line(run))

    def summary(self, outcome: "RunOutcome") -> None:
        from evolve.archive import Archive
        from evolve.report.console import make_console
        from evolve.report.show import print_front

        c = outcome.counters
        retried = f" ({c.evaluations_retried} started again after a lost node)" if c.evaluations_retried else ""
        # text, never markup: a stop reason can quote an LLM endpoint's error body
        self.console.print(Text.assemble((self.run.config.run.name, "bold"), f": stopped — {outcome.stop_reason}"))
        self.console.print(f"{c.evaluations} evaluations{retried}, {c.rejected} rejected mutations, "
                           f"{c.tokens} tokens, ${c.spent.cost_usd:.4f}, {c.wall_s:.1f} s")
        with Archive.open(self.run.archive_dir) as archive:
            print_front(archive, make_console())
        if outcome.interrupted:
            self.console.print(f"resume with: evolve run CONFIG --resume  (or: evolve resume {self.run.config.run.name})")
