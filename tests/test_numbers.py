"""The shared number formats (``evolve/numbers.py``): one cell per kind of metric, never Python's repr."""

from __future__ import annotations

import pytest

from evolve.numbers import duration, format_metric


@pytest.mark.parametrize("value, name, shown", [
    (0.99361, "accuracy", "99.36%"),
    (0.999999, "hard_accuracy", "99.99%"),  # never rounded up to a perfect score
    (1.0, "accuracy", "100%"),
    (58.0, "params", "58"),
    (9.99001e-05, "error", "9.99e-5"),
    (1234.56, "peak_rss_mib", "1235"),
    (float("nan"), "error", "nan"),
    (None, "error", "-"),
])
def test_a_metric_reads_in_its_kind(value: float | None, name: str, shown: str) -> None:
    assert format_metric(value, name) == shown


@pytest.mark.parametrize("seconds, shown", [(42.04, "42.0 s"), (125, "2m 05s"), (7300, "2h 01m")])
def test_durations_read_in_the_largest_useful_unit(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown
