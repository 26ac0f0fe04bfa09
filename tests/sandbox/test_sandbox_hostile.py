"""The containment suite: every hostile program of the catalogue is contained, in both modes, and
the sandbox keeps running jobs afterwards. Each case names the layer that stops it; a case whose
layer this host lacks is skipped with that reason (the sandbox announced the gap at start)."""

from __future__ import annotations

import pytest
from sandbox_testlib import call

from evolve.sandbox import Sandbox, layers
from evolve.sandbox.hostile import CASES, Case


def test_the_catalogue_covers_the_classes_the_issue_names() -> None:
    classes = {case.cls for case in CASES}
    assert len(CASES) >= 20
    assert {"unix socket", "memory hiding", "disk fill", "/proc snooping", "environment", "file read", "file write",
            "network", "signals", "ptrace", "fork bomb", "setsid escape", "output flood", "persistence",
            "privilege", "mounts"} <= classes


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.cls}: {c.attack}")
def test_hostile_program_is_contained(sandbox: Sandbox, case: Case) -> None:
    missing = [name for name in case.needs if not layers.active()[name]]
    if missing:
        pytest.skip(f"this host lacks the {', '.join(missing)} layer")
    verdict = case.check(sandbox)
    assert verdict.contained, f"{case.attack}: {verdict.outcome} (layer: {case.layer})"
    assert sandbox.run(call("add", a=1)).ok  # the run continues
