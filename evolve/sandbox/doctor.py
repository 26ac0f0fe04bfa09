"""What ``evolve doctor`` checks: which layers this host gives the sandbox, and whether each hostile
program of the catalogue (:mod:`hostile`) is actually contained here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from . import layers
from .hostile import CASES, Case, Verdict

__all__ = ["CASES", "Check", "layer_rows", "run_checks"]


@dataclass(frozen=True)
class Check:
    case: Case
    verdict: Verdict | None  # None: skipped, a layer it needs is missing here
    skipped_for: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.verdict is None or self.verdict.contained


def layer_rows() -> list[tuple[str, bool, str, str]]:
    """(layer, available, detail, what it does or what its absence means)."""
    found = layers.probe()
    return [(layer.name, found[layer.name][0], found[layer.name][1], layer.what if found[layer.name][0] else layer.without)
            for layer in layers.LAYERS]


def run_checks(mode: str = "fresh", progress: Callable[[Check], None] | None = None) -> list[Check]:
    """Run every hostile program in a ``mode`` sandbox (skipping those whose layer is missing)."""
    from .sandbox import Sandbox

    checks = []
    with Sandbox(mode, preload=("json",)) as sandbox:  # type: ignore[arg-type]
        for check in _checks(sandbox):
            checks.append(check)
            if progress is not None:
                progress(check)
    return checks


def _checks(sandbox: object) -> Iterator[Check]:
    active = layers.active()
    for case in CASES:
        missing = tuple(name for name in case.needs if not active[name])
        yield Check(case, None, missing) if missing else Check(case, case.check(sandbox))  # type: ignore[arg-type]
