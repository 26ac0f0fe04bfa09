"""The archive's front and the strategies' front are the same set on the same history.

Both go through :mod:`evolve.pareto`; this checks the rule end to end, with NaN, missing and
infinite objectives, infeasible and failed candidates, duplicates, and batches of any split.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent / "archive"))
from archive_helpers import META, record  # noqa: E402

from evolve.archive import Archive  # noqa: E402
from evolve.strategies import make_strategy  # noqa: E402

VALUES = st.one_of(st.sampled_from([1.0, 2.0, 3.0, math.nan, math.inf]), st.none())
RECORDS = st.lists(
    st.tuples(VALUES, st.sampled_from([1.0, 2.0, math.nan]), st.sampled_from([0.5, 0.95, 1.0]),
              st.sampled_from(["ok", "ok", "ok", "error"])),
    min_size=1, max_size=8)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=RECORDS, split=st.integers(1, 8))
def test_archive_and_strategy_agree_on_the_front(tmp_path_factory, rows, split) -> None:
    records = [record(p, rss, acc, status=status) for p, rss, acc, status in rows]
    path = tmp_path_factory.mktemp("agree") / "archive"
    with Archive.create(path, META) as archive:
        for start in range(0, len(records), split):
            archive.add_batch(records[start:start + split], {})
        stored = archive.candidates()
        archive_front = {c.id for c in archive.front()}
    strategy = make_strategy("hillclimb", META.objectives)
    for c in stored:
        strategy.add(c)
    best = strategy.ranker.front(strategy.population.all())
    if archive_front:
        assert {ind.id for ind in best} == archive_front
    else:  # nothing may be on the front: the strategy falls back to least violation, never a NaN point
        assert all(not strategy.ranker.usable(ind) for ind in best)
