"""Config changes on resume: budgets and plumbing are free, anything that changes the experiment is not."""

from __future__ import annotations

import copy

import pytest

from evolve.config_changes import compare_configs

SAVED = {
    "run": {"name": "r", "output_dir": "runs", "seed": 1},
    "task": {"name": "toy", "options": {"timeout_s": 10}},
    "seeds": ["seeds/toy/start.py"],
    "strategy": {"name": "hillclimb", "params": {}},
    "mutators": [{"name": "llm-diff", "weight": 1.0, "params": {}}],
    "llm": {"base_url": "http://127.0.0.1:8000/v1", "models": [{"name": "m"}], "temperature": 0.7, "retries": 4},
    "budget": {"max_evaluations": 30},
    "parallel": {"evaluations": 2, "llm_requests": 4},
}


def changed(**edits: object) -> dict:
    data = copy.deepcopy(SAVED)
    for path, value in edits.items():
        section, key = path.split("__")
        if value is None:
            data[section].pop(key, None)
        else:
            data[section][key] = value
    return data


def test_identical_configs_have_no_changes() -> None:
    changes = compare_configs(SAVED, copy.deepcopy(SAVED))
    assert not changes and changes.notes() == [] and changes.refusal("r") is None


def test_budgets_may_change_and_say_how() -> None:
    changes = compare_configs(SAVED, changed(budget__max_evaluations=60, budget__max_wall_s=600))
    assert not changes.experiment and changes.refusal("r") is None
    assert [c.describe() for c in changes.free] == [
        "budget.max_evaluations: 30 -> 60 (grown: the run goes on)", "budget.max_wall_s: (unset) -> 600 (added)"]
    shrunk = compare_configs(SAVED, changed(budget__max_evaluations=10))
    assert shrunk.free[0].describe().endswith("(shrunk: the run may stop at once)")


@pytest.mark.parametrize("edit", [{"llm__base_url": "http://127.0.0.1:9000/v1"}, {"llm__retries": 8},
                                  {"llm__replay": True}, {"parallel__llm_requests": 1}, {"run__output_dir": "elsewhere"},
                                  # where evaluations run (SAVED predates these keys, as older runs do)
                                  {"parallel__backend": "local"}, {"parallel__backend": "ray"},
                                  {"parallel__address": "10.0.0.5:6379"}])
def test_plumbing_is_free(edit: dict) -> None:
    changes = compare_configs(SAVED, changed(**edit))
    assert len(changes.free) == 1 and not changes.experiment


@pytest.mark.parametrize("edit, key", [
    ({"strategy__name": "islands"}, "strategy.name"),
    ({"llm__models": [{"name": "other"}]}, "llm.models"),
    ({"llm__temperature": 0.2}, "llm.temperature"),
    ({"run__seed": 2}, "run.seed"),
    ({"parallel__evaluations": 4}, "parallel.evaluations"),
    ({"task__options": {"timeout_s": 5}}, "task.options.timeout_s"),
    ({"strategy__params": {"islands": 3}}, "strategy.params.islands"),
])
def test_experiment_changes_need_force_with_a_one_line_reason(edit: dict, key: str) -> None:
    changes = compare_configs(SAVED, changed(**edit))
    assert [c.key for c in changes.experiment] == [key]
    message = changes.refusal("r")
    assert message is not None and "\n" not in message
    assert message.startswith(f"run 'r' was started with a different experiment ({key}: ")
    assert message.endswith("pass --force to resume it anyway, or choose another run.name")


def test_lists_are_compared_whole_and_long_values_are_cut() -> None:
    data = copy.deepcopy(SAVED)
    data["mutators"] = [{"name": "numeric", "weight": 1.0, "params": {"scale": [0.1] * 40}}]
    data["seeds"] = ["a.py", "b.py"]
    changes = compare_configs(SAVED, data)
    assert [c.key for c in changes.experiment] == ["mutators", "seeds"]
    assert all(len(line) < 220 for line in changes.notes())


def test_a_nested_change_names_the_one_parameter_not_the_whole_dict() -> None:
    saved = copy.deepcopy(SAVED)
    saved["strategy"]["params"] = {"islands": 4, "migration_interval": 5, "elite": [1, 2]}
    new = copy.deepcopy(saved)
    new["strategy"]["params"]["migration_interval"] = 10
    changes = compare_configs(saved, new)
    assert [c.describe() for c in changes.experiment] == ["strategy.params.migration_interval: 5 -> 10"]
    assert "islands" not in (changes.refusal("r") or "")


def test_an_empty_dict_is_the_same_as_no_key() -> None:
    new = copy.deepcopy(SAVED)
    del new["strategy"]["params"]
    assert not compare_configs(SAVED, new)
