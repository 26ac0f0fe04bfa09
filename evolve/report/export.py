"""``evolve export``: programs out of a run's archive as plain files (read-only on the archive).

One candidate (the best feasible one by an objective, or a given id) goes to stdout or a file;
``--front`` writes every front member as ``<id>.py`` plus a ``front.json`` with their metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from evolve.archive import Archive, ArchiveError, Candidate


class NothingToExport(ArchiveError):
    """The run holds no candidate that qualifies (nothing feasible yet)."""


@dataclass(frozen=True)
class Exported:
    candidates: list[Candidate]
    written: list[Path]  # empty when the program went to stdout


def choose(archive: Archive, key: str | None, by: str | None, run: str) -> Candidate:
    """The candidate ``key`` names, else the best feasible one by objective ``by`` (default: the
    first objective). ``run`` is how the user named the run, for the commands an error suggests."""
    if key is not None:
        if by is not None:
            raise ArchiveError("give a candidate id or --by, not both")
        return archive.get(key)
    objective = _objective(archive, by)
    best = archive.candidates(objective, limit=1, feasible_only=True)
    if not best or best[0].metrics.get(objective) is None:
        closest = archive.best()
        hint = f"; the least violating is #{closest.id}: evolve export {run} {closest.id}" if closest else ""
        raise NothingToExport(f"run {archive.meta.run!r} has no feasible candidate yet{hint}")
    return best[0]


def front(archive: Archive, by: str | None) -> list[Candidate]:
    """The front, best first by ``by`` (default: the first objective)."""
    members = archive.front(_objective(archive, by))
    if not members:
        raise NothingToExport(f"run {archive.meta.run!r} has an empty front (nothing feasible yet)")
    return members


def write_one(archive: Archive, c: Candidate, output: Path) -> Path:
    """Write ``c``'s program to ``output`` (a directory gets ``<id><suffix>`` inside it)."""
    target = output / _file_name(archive, c) if output.is_dir() else output
    _ensure_parent(target)
    target.write_text(c.source)
    return target


def write_front(archive: Archive, members: list[Candidate], directory: Path) -> list[Path]:
    """Every member as ``<id><suffix>`` in ``directory`` (created if missing), plus ``front.json``."""
    if directory.exists() and not directory.is_dir():
        raise ArchiveError(f"-o {directory}: exists and is not a directory (--front writes a folder)")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for c in members:
        path = directory / _file_name(archive, c)
        path.write_text(c.source)
        written.append(path)
    summary = {"run": archive.meta.run, "task": archive.meta.task,
               "objectives": [o.name for o in archive.meta.objectives],
               "candidates": [{"id": c.id, "sha": c.sha, "file": p.name, "metrics": c.metrics,
                               "description": c.description} for c, p in zip(members, written)]}
    index = directory / "front.json"
    index.write_text(json.dumps(summary, indent=2) + "\n")
    return [*written, index]


def _objective(archive: Archive, by: str | None) -> str:
    names = [o.name for o in archive.meta.objectives]
    if by is None:
        return names[0]
    if by not in names:
        raise ArchiveError(f"--by {by!r}: not an objective of this run (objectives: {', '.join(names)})")
    return by


def _file_name(archive: Archive, c: Candidate) -> str:
    return f"{c.id}{Path(archive.meta.program_file).suffix}"


def _ensure_parent(target: Path) -> None:
    if not target.parent.is_dir():
        raise ArchiveError(f"-o {target}: no such directory {target.parent}")
