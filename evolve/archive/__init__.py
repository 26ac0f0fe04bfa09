"""The git-versioned Pareto archive of a run (see :mod:`evolve.archive.archive` for the layout)."""

from evolve.archive.archive import Archive
from evolve.archive.records import ArchiveError, Candidate, CandidateRecord, Checkpoint, RunMeta, Summary

__all__ = ["Archive", "ArchiveError", "Candidate", "CandidateRecord", "Checkpoint", "RunMeta", "Summary"]
