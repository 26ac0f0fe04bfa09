"""COMPARE.yaml: cells expand from base + variants x repeats; every error is one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from evolve.compare import load_compare, parse_compare
from evolve.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "seeds/toy/start.py")


def compare_dict(**over: object) -> dict:
    data: dict = {
        "name": "cmp",
        "output_dir": "out",
        "base": {"task": {"name": "toy"}, "seeds": [SEED], "mutators": [{"name": "numeric"}],
                 "parallel": {"evaluations": 2}},
        "variants": [{"name": "hill", "strategy": {"name": "hillclimb"}},
                     {"name": "isl", "strategy": {"name": "islands", "params": {"islands": 2}}}],
        "repeats": 2,
        "seed": 5,
        "budget": {"evaluations": 9},
    }
    data.update(over)
    return data


def error_of(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_compare(data, "c.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_cells_are_complete_run_configs_with_equal_budgets_and_distinct_seeds() -> None:
    spec = parse_compare(compare_dict(), "c.yaml")
    assert [c.name for c in spec.cells] == ["hill-s5", "hill-s6", "isl-s5", "isl-s6"]
    assert {c.config.budget.max_evaluations for c in spec.cells} == {9}
    assert [c.config.run.seed for c in spec.cells] == [5, 6, 5, 6]
    assert [c.config.strategy.name for c in spec.cells] == ["hillclimb"] * 2 + ["islands"] * 2
    assert spec.cells[2].config.strategy.params == {"islands": 2}
    assert {c.run_dir.parent for c in spec.cells} == {Path("out/cmp")}
    assert [o.name for o in spec.objectives] == ["error", "chars"]


def test_a_variant_replaces_whole_sections_and_models_only_the_model_list() -> None:
    llm = {"base_url": "http://127.0.0.1:1/v1", "models": [{"name": "a"}]}
    data = compare_dict(variants=[
        {"name": "small", "mutators": [{"name": "llm-diff"}], "models": [{"name": "small-model"}]},
        {"name": "num", "mutators": [{"name": "numeric"}, {"name": "random"}]},
    ])
    data["base"]["llm"] = llm
    spec = parse_compare(data)
    small, num = spec.cells[0].config, spec.cells[2].config
    assert [m.name for m in small.llm.models] == ["small-model"]
    assert small.llm.base_url == llm["base_url"]
    assert [m.name for m in num.mutators] == ["numeric", "random"]


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["base"].update(budget={"max_evaluations": 3}), "c.yaml: base.budget: set the budget at the top level"),
    (lambda d: d["base"].update(run={"name": "x"}), "c.yaml: base.run: set name and output_dir"),
    (lambda d: d["base"].update(target=["error <= 1"]), "c.yaml: base.target: set target at the top level"),
    (lambda d: d.update(budget={"evaluations": 3, "wall_s": 10}), "c.yaml: budget: set exactly one of"),
    (lambda d: d.update(budget={}), "c.yaml: budget: set exactly one of"),
    (lambda d: d.pop("budget"), "c.yaml: budget: required key is missing"),
    (lambda d: d.update(repeats=0), "c.yaml: repeats: Input should be greater than or equal to 1"),
    (lambda d: d["variants"].append({"name": "hill"}), "c.yaml: variants: names must be unique"),
    (lambda d: d["variants"][1].update(parallel={"evaluations": 1}), "c.yaml: variants.1.parallel: unknown key"),
    (lambda d: d["variants"][1].update(name="a b"), "c.yaml: variants.1.name: String should match pattern"),
    (lambda d: d["variants"][1]["strategy"].update(name="islnds"), "c.yaml: variants.1.strategy.name: unknown strategy (known: agent, agent-cli, hillclimb, islands, random) (got 'islnds')"),
    (lambda d: d["base"].update(seeds=["nope.py"]), "c.yaml: base.seeds.0: no such seed file 'nope.py'"),
    (lambda d: d["base"]["task"].update(name="nosuchtask"), "c.yaml: base.task: unknown task 'nosuchtask'"),
    (lambda d: d.update(budget={"tokens": 1000}), "c.yaml: variants.0: a tokens budget never ends a run that uses no LLM"),
    (lambda d: d["variants"][0].update(models=[{"name": "m"}]), "c.yaml: variants.0.models: needs an llm section"),
    (lambda d: d.update(target=["error about 3"]), "c.yaml: target.0: cannot parse constraint 'error about 3'"),
    (lambda d: d.update(reference={"error": 1.0}), "c.yaml: reference: give a value for each objective"),
    (lambda d: d.update(extra=1), "c.yaml: extra: unknown key"),
])
def test_bad_comparisons_are_one_line_errors_naming_the_key(change, expected: str) -> None:
    data = compare_dict()
    change(data)
    assert error_of(data).startswith(expected)


def test_yaml_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such comparison file"):
        load_compare(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbase: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+: invalid YAML"):
        load_compare(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"list.yaml: expected a mapping"):
        load_compare(listed)


@pytest.mark.parametrize("name", ["compare-toy.yaml", "compare-adder.yaml"])
def test_shipped_comparisons_are_valid_and_offline(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    spec = load_compare(ROOT / "configs" / name)
    assert len({c.config.strategy.name for c in spec.cells}) >= 2
    assert all(c.config.llm is None for c in spec.cells)
    assert spec.config.budget.kind == "evaluations"
    assert yaml.safe_load((ROOT / "configs" / name).read_text())["name"] == spec.config.name


def test_comparison_seed_paths_are_relative_to_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # not the checkout: ../seeds/ resolves against configs/
    spec = load_compare(ROOT / "configs" / "compare-toy.yaml")
    assert all(seed.is_file() for cell in spec.cells for seed in cell.config.seeds)
    assert not spec.directory.is_absolute()  # results go under the current directory
