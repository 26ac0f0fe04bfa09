"""Repeated timing: the median of every run, and a failed repeat fails the candidate."""

from __future__ import annotations

import pytest

from evaluators._timing import check_repeats, median, repeated, timing_info
from evolve.evaluation import EvalResult
from evolve.tasks import TaskError


def test_median_of_all_repeats() -> None:
    walls = repeated(5.0, 3, lambda i: {2: 1.0, 3: 2.0}[i])
    assert walls == [5.0, 1.0, 2.0] and median(walls) == 2.0
    assert timing_info("train_s", walls) == {"train_s_repeats": 3, "train_s_runs": [5.0, 1.0, 2.0]}
    assert repeated(5.0, 1, lambda i: pytest.fail("one repeat runs once")) == [5.0]


def test_a_failed_repeat_fails_the_candidate_not_its_median() -> None:
    failure = EvalResult(status="timeout", error="repeat 2 timed out")
    asked = []
    outcome = repeated(1.0, 5, lambda i: asked.append(i) or failure)
    assert outcome is failure and asked == [2]  # no further repeats, no median of the good runs


@pytest.mark.parametrize("bad", [0, 16, 2.0, True, "3", None])
def test_bad_repeats_is_one_line(bad: object) -> None:
    with pytest.raises(TaskError, match=r"^task 'sorter': repeats must be an int in \[1, 15\]"):
        check_repeats("sorter", bad)
