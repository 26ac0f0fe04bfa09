"""Run every cell of a comparison, resumably.

Each cell is an ordinary run in ``<output_dir>/<name>/<variant>-s<seed>/`` (``evolve show`` and
``evolve report`` work on it). ``cells.json`` in the comparison directory records the cells that
finished and the exact config they finished with: running the comparison again reuses those,
resumes any cell whose archive exists (interrupted, or finished with a smaller budget), and starts
the rest. A cell directory made with different settings (the LLM endpoint's address aside), or
finished with a larger budget, is refused rather than silently mixed into the results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from evolve.archive import Archive
from evolve.compare.comparison import CompareError, Comparison, write_atomic
from evolve.compare.config import Cell, CompareSpec
from evolve.run import EvolutionRun, RunOutcome

CELLS_FILE = "cells.json"


class MatrixListener(Protocol):
    """Hooks for showing progress; ``batch`` runs after every batch of the cell's run."""

    def cell_started(self, index: int, total: int, cell: Cell, run: EvolutionRun | None,
                     action: str) -> None: ...

    def batch(self, cell: Cell, run: EvolutionRun) -> None: ...

    def cell_finished(self, cell: Cell, run: EvolutionRun | None, outcome: RunOutcome | None) -> None: ...


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    action: str  # "reused" (finished earlier), "resumed" or "started"
    stop_reason: str


@dataclass(frozen=True)
class MatrixOutcome:
    comparison: Comparison
    cells: tuple[CellResult, ...]
    interrupted: bool  # a cell was interrupted; running the comparison again continues it


def run_matrix(spec: CompareSpec, listener: MatrixListener | None = None) -> MatrixOutcome:
    """Run (or reuse, or resume) every cell of ``spec`` in order. Every existing cell is checked
    before anything runs or is written."""
    finished = _read_finished(spec.directory)
    configs = {cell.name: cell.config.to_yaml_dict() for cell in spec.cells}
    for cell in spec.cells:
        if _exists(cell):
            _check_continuable(cell, configs[cell.name], finished.get(cell.name))
    comparison = Comparison.from_spec(spec)
    comparison.save()
    results: list[CellResult] = []
    for index, cell in enumerate(spec.cells):
        config, record = configs[cell.name], finished.get(cell.name)
        if record is not None and _identity(record.get("config", {})) == _identity(config) and _exists(cell):
            if listener:
                listener.cell_started(index, len(spec.cells), cell, None, "reused")
                listener.cell_finished(cell, None, None)
            results.append(CellResult(cell, "reused", record.get("stop_reason", "")))
            continue
        exists = _exists(cell)
        run = EvolutionRun(cell.config, resume=exists)
        action = "resumed" if exists else "started"
        if listener:
            listener.cell_started(index, len(spec.cells), cell, run, action)
        progress = (lambda r, cell=cell: listener.batch(cell, r)) if listener else None
        outcome = run.execute(progress=progress)
        if listener:
            listener.cell_finished(cell, run, outcome)
        if outcome.interrupted:
            return MatrixOutcome(comparison, tuple(results), interrupted=True)
        finished[cell.name] = {"config": config, "stop_reason": outcome.stop_reason}
        write_atomic(spec.directory / CELLS_FILE, json.dumps(finished, indent=2))
        results.append(CellResult(cell, action, outcome.stop_reason))
    return MatrixOutcome(comparison, tuple(results), interrupted=False)


def _exists(cell: Cell) -> bool:
    return (cell.run_dir / "archive" / ".git").exists()


def _read_finished(directory: Path) -> dict[str, Any]:
    path = directory / CELLS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CompareError(f"{path}: unreadable ({exc}); delete it to re-check every cell") from None
    return data if isinstance(data, dict) else {}


def _check_continuable(cell: Cell, config: dict[str, Any], record: dict[str, Any] | None) -> None:
    """An existing cell may only be continued with the settings it was started with, and a
    finished one not with a smaller budget (it would stay bigger than the other cells)."""
    with Archive.open(cell.run_dir / "archive") as archive:
        saved = _settings(archive.meta.config)
    wanted = _settings(config)
    differing = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    if differing:
        raise CompareError(f"cell {cell.name}: {cell.run_dir} was started with different "
                           f"{', '.join(differing)}; delete it or give the comparison another name")
    if record is None:
        return
    old, new = record.get("config", {}).get("budget", {}), config["budget"]
    if old.keys() != new.keys():
        raise CompareError(f"cell {cell.name}: {cell.run_dir} finished with another budget kind "
                           f"({', '.join(old)}); delete it or keep the budget kind")
    (key,) = new
    if old[key] > new[key]:
        raise CompareError(f"cell {cell.name}: {cell.run_dir} already finished with {key} {old[key]}, "
                           f"more than {new[key]}; delete it or keep the budget")


def _identity(config: dict[str, Any]) -> dict[str, Any]:
    """What makes a cell's results what they are: its config but the address the model is
    served from (the same model behind another URL is the same experiment)."""
    if not isinstance(config.get("llm"), dict):
        return config
    return {**config, "llm": {k: v for k, v in config["llm"].items() if k != "base_url"}}


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    """The identity without the budget, which may grow between sessions."""
    return {k: v for k, v in _identity(config).items() if k != "budget"}
