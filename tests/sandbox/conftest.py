"""Sandboxes shared by the sandbox tests: one per mode and test module (the zygote is reused)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from evolve.sandbox import Sandbox


@pytest.fixture(scope="module", params=["fresh", "forkserver"])
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    # A tiny preload keeps forkserver tests fast; one test preloads the real torch.
    with Sandbox(request.param, preload=("json",)) as box:
        yield box
