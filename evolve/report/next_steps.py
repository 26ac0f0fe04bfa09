"""What the end of a run prints: where its results are and the commands that look at them."""

from __future__ import annotations

from pathlib import Path

from evolve.archive import Archive

WIDTH = 80  # a note follows a command only while the line still fits a standard terminal


def next_steps(run_dir: Path, archive_dir: Path) -> str:
    """A few lines naming the run folder and the ``show``/``report``/``export`` commands for it,
    ready to paste (the run's name when ``evolve`` finds it under ``./runs``, else its path).
    While nothing is feasible, ``export`` names the least-violating candidate instead."""
    name = _shortest_name(run_dir)
    with Archive.open(archive_dir) as archive:
        feasible, best = archive.summary().feasible, archive.best()
    export = (f"evolve export {name} -o best.py", "the best program as a file")
    if not feasible and best is not None:
        export = (f"evolve export {name} {best.id} -o closest.py", "nothing feasible: the closest")
    commands = [(f"evolve show {name}", "the front; ID for one"),
                (f"evolve report {name}", "an HTML report"), export]
    width = max(len(command) for command, _ in commands)
    lines = [f"results in {run_dir}/", "  (git log in its archive/ reads the lineage of the best program)"]
    for command, note in commands:
        line = f"  {command:<{width}}  # {note}"
        lines.append(line if len(line) <= WIDTH else f"  {command}")
    return "\n".join(lines)


def _shortest_name(run_dir: Path) -> str:
    try:
        inside = run_dir.resolve().relative_to(Path("runs").resolve())
    except ValueError:
        return str(run_dir)
    return str(inside) if len(inside.parts) == 1 else str(run_dir)
