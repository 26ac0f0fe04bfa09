"""Repeated timing: the median of every run, and a failed repeat fails the candidate."""

from __future__ import annotations

import pytest

from evaluators._timing import median, repeated, timing_info
from evaluators.microgpt import MicroGPTTask
from evaluators.sorter import SorterTask
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


@pytest.mark.parametrize(
    ("bad", "reason"),
    [(0, "must be >= 1 (got 0)"), (16, "must be <= 15 (got 16)"),
     (2.0, "Input should be a valid integer (got 2.0)"), (True, "Input should be a valid integer (got True)"),
     ("3", "Input should be a valid integer (got '3')"), (None, "Input should be a valid integer (got None)")],
)
def test_bad_repeats_is_one_line(bad: object, reason: str) -> None:
    with pytest.raises(TaskError) as info:
        SorterTask.parse_options({"repeats": bad})
    assert str(info.value) == f"task 'sorter': repeats: {reason}"


def test_repeats_is_a_typed_option_with_the_documented_defaults() -> None:
    assert SorterTask.parse_options({}).repeats == 3  # a build trains in seconds
    assert MicroGPTTask.parse_options({}).repeats == 1  # a run of its last stage costs 10-80 s
    assert SorterTask.parse_options({"repeats": 15}).repeats == 15
