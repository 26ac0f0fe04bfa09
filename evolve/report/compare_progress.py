"""Progress of a comparison on the terminal: one line per cell, a live bar while a cell runs."""

from __future__ import annotations

from contextlib import ExitStack

from rich.console import Console
from rich.text import Text

from evolve.compare.config import Cell
from evolve.report.progress import RunProgress
from evolve.run import EvolutionRun, RunOutcome


class ConsoleListener:
    """A :class:`~evolve.compare.matrix.MatrixListener` writing to a rich console (stderr)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bar: RunProgress | None = None
        self._open = ExitStack()

    def cell_started(self, index: int, total: int, cell: Cell, run: EvolutionRun | None,
                     action: str) -> None:
        self.console.print(Text(f"[{index + 1}/{total}] {cell.name}: {action}"))
        if run is not None:
            self._bar = self._open.enter_context(RunProgress(run, self.console))

    def batch(self, cell: Cell, run: EvolutionRun) -> None:
        if self._bar is not None:
            self._bar.update(run)

    def cell_finished(self, cell: Cell, run: EvolutionRun | None, outcome: RunOutcome | None) -> None:
        self._open.close()
        self._bar = None
        if outcome is not None:
            c = outcome.counters
            self.console.print(Text(f"    {outcome.stop_reason}; {c.evaluations} evaluations, "
                                    f"{c.tokens} tokens, {c.wall_s:.1f} s"))
