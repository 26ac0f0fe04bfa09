"""Fresh-mode peak RSS is the program's own (comparable with /usr/bin/time)."""

from __future__ import annotations

import pytest
from sandbox_testlib import script

from evolve.sandbox import Sandbox


@pytest.fixture(scope="module")
def fresh() -> Sandbox:
    with Sandbox("fresh") as sandbox:
        yield sandbox


def test_bare_interpreter_peak_is_in_the_sane_range(fresh: Sandbox) -> None:
    result = fresh.run(script("noop.py"))
    assert result.ok
    assert 10 <= result.peak_rss_mib <= 20
    assert result.baseline_rss_mib == 0 and result.peak_rss_delta_mib == result.peak_rss_mib


def test_allocation_shows_up_in_the_peak(fresh: Sandbox) -> None:
    bare = fresh.run(script("noop.py")).peak_rss_mib
    peak = fresh.run(script("allocate.py", "100")).peak_rss_mib
    assert 95 <= peak - bare <= 110
