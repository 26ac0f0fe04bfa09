"""The git-versioned Pareto archive of a run (see :mod:`evolve.archive.archive` for the layout).

Exports are lazy: ``from evolve.archive import RunMeta`` does not load GitPython; only ``Archive``
does (the light faces ``evolve tasks`` and the Pareto ranker rely on that).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evolve.archive.archive import Archive
    from evolve.archive.records import ArchiveError, Checkpoint, RunMeta, Summary
    from evolve.candidate import Candidate

_HOMES = {"Archive": "evolve.archive.archive", "ArchiveError": "evolve.archive.records",
          "Checkpoint": "evolve.archive.records", "RunMeta": "evolve.archive.records",
          "Summary": "evolve.archive.records", "Candidate": "evolve.candidate"}

__all__ = ["Archive", "ArchiveError", "Candidate", "Checkpoint", "RunMeta", "Summary"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'evolve.archive' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_HOMES[name]), name)
