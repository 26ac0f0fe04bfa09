"""Isolated execution of untrusted candidate programs (see DESIGN: two isolation modes)."""

from evolve.sandbox.job import Job, Limits, ProcessResult, ProcessStatus
from evolve.sandbox.sandbox import Sandbox

__all__ = ["Job", "Limits", "ProcessResult", "ProcessStatus", "Sandbox"]
