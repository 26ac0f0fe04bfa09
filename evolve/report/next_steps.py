"""What the end of a run prints: where its results are and the commands that look at them."""

from __future__ import annotations

from pathlib import Path

from evolve.archive import Archive


def next_steps(run_dir: Path, archive_dir: Path) -> str:
    """A few lines naming the run folder and the ``show``/``report``/``export`` commands for it
    (by name when the run lives under ``runs/``, else by path, so they can be pasted as is).
    While nothing is feasible, ``export`` names the least-violating candidate instead."""
    name = run_dir.name if run_dir.parent == Path("runs") else str(run_dir)
    with Archive.open(archive_dir) as archive:
        feasible, best = archive.summary().feasible, archive.best()
    export = (f"evolve export {name} -o best.py", "the best program as a file")
    if not feasible and best is not None:
        export = (f"evolve export {name} {best.id} -o closest.py",
                  "nothing feasible yet: the least violating program")
    commands = [(f"evolve show {name}", "the front; add an id for one candidate"),
                (f"evolve report {name}", f"HTML report in {run_dir / 'report.html'}"), export]
    width = max(len(command) for command, _ in commands)
    return "\n".join([f"results in {run_dir}/ (git log in its archive/ reads the best lineage)",
                      *(f"  {command:<{width}}  {what}" for command, what in commands)])
