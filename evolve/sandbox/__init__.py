"""Isolated execution of untrusted candidate programs (see DESIGN: two isolation modes).

``Sandbox`` is imported lazily: the sandbox's own helper processes (``python -m
evolve.sandbox.child`` / ``evolve.sandbox.zygote``) import this package first, and importing the
parent-side machinery there would load those very modules twice (once more as ``__main__``).
"""

from typing import TYPE_CHECKING, Any

from evolve.sandbox.job import Job, Limits, ProcessResult, ProcessStatus

if TYPE_CHECKING:  # pragma: no cover - typing only
    from evolve.sandbox.sandbox import ForkServerError, Sandbox

__all__ = ["ForkServerError", "Job", "Limits", "ProcessResult", "ProcessStatus", "Sandbox"]


def __getattr__(name: str) -> Any:
    if name in ("Sandbox", "ForkServerError"):
        from evolve.sandbox import sandbox

        return getattr(sandbox, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
