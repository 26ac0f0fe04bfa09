"""Config validation: every bad config gives one precise line naming file, key and reason."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from evolve.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def good() -> dict:
    return {
        "run": {"name": "t1", "seed": 3},
        "task": {"name": "toy"},
        "seeds": [str(ROOT / "seeds/toy/start.py")],
        "strategy": {"name": "hillclimb"},
        "mutators": [{"name": "numeric", "weight": 1.0}],
        "budget": {"max_evaluations": 10},
    }


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_good_config_loads(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, good()))
    assert cfg.run.name == "t1" and cfg.budget.max_evaluations == 10
    assert cfg.run_dir == Path("runs/t1")


def test_shipped_configs_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    # compare-*.yaml are comparison configs, checked in tests/compare.
    configs = sorted(p for p in (ROOT / "configs").glob("*.yaml") if not p.name.startswith("compare-"))
    assert configs, "configs/ ships example configs"
    for path in configs:
        load_config(path.relative_to(ROOT))


def _set(data: dict, path: str, value: object) -> dict:
    data = copy.deepcopy(data)
    keys = path.split(".")
    node = data
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
    if value is _DELETE:
        del node[keys[-1]]
    elif isinstance(node, list):
        node[int(keys[-1])] = value
    else:
        node[keys[-1]] = value
    return data


_DELETE = object()

BAD = [
    # (key path, value, expected fragment of the message)
    ("run.nmae", "x", "run.nmae: unknown key"),
    ("run", _DELETE, "run: required key is missing"),
    ("run.name", "has space", "run.name:"),
    ("run.seed", "abc", "run.seed:"),
    ("task.name", "nosuchtask", "task: unknown task 'nosuchtask'"),
    ("task.options", {"bogus": 1}, "task: task 'toy': unknown option 'bogus'"),
    ("task.options", {"timeout_s": -1}, "task: task 'toy': timeout_s: must be > 0.0 (got -1)"),
    ("task.objectives", ["nope"], "'nope' is not an objective of task 'toy'"),
    ("task.constraints", ["error >> 3"], "cannot parse constraint 'error >> 3'"),
    ("seeds", [], "seeds:"),
    ("seeds", ["seeds/does/not/exist.py"], "seeds.0: no such seed file"),
    ("strategy.name", "annealing", "strategy.name: unknown strategy (known: agent, agent-cli, hillclimb, islands, random) (got 'annealing')"),
    ("mutators.0.name", "magic", "mutators.0.name: unknown mutator (known: llm-diff, llm-rewrite, numeric, random) (got 'magic')"),
    ("mutators.0.weight", 0, "mutators.0.weight:"),
    ("mutators.0.weight", "heavy", "mutators.0.weight:"),
    ("mutators", [{"name": "llm-diff"}], "llm: required by the llm-* mutators"),
    ("budget", {}, "budget: set at least one of"),
    ("budget.max_evaluations", 0, "budget.max_evaluations:"),
    ("parallel.evaluations", 0, "parallel.evaluations:"),
    ("sandbox", {"disk_mb": 0}, "sandbox.disk_mb:"),
    ("target", ["error < 3"], "target: cannot parse constraint"),
    ("extra_section", {}, "extra_section: unknown key"),
    ("mutators.0.params", {"max_edit": 2}, "mutators.0.params: mutator 'numeric': unknown option 'max_edit'"),
    ("mutators.0.params", {"max_edits": 0}, "mutators.0.params: mutator 'numeric': max_edits: must be >= 1 (got 0)"),
    ("mutators.0.params", {"max_edits": "3"}, "mutators.0.params: mutator 'numeric': max_edits: Input should be a valid integer (got '3')"),
    ("strategy.params", {"inspiration": 2}, "strategy.params: strategy 'hillclimb': unknown parameter 'inspiration'"),
    ("strategy.params", {"inspirations": -1}, "strategy.params: strategy 'hillclimb': inspirations: must be >= 0 (got -1)"),
]


@pytest.mark.parametrize("key,value,fragment", BAD, ids=[b[0] + "=" + repr(b[1])[:20] for b in BAD])
def test_bad_config_is_one_precise_line(tmp_path: Path, key: str, value: object, fragment: str) -> None:
    path = write(tmp_path, _set(good(), key, value))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(str(path) + ": ")
    assert fragment in msg, msg


def test_llm_section_errors(tmp_path: Path) -> None:
    base = _set(good(), "mutators", [{"name": "llm-rewrite"}])
    cases = [
        ({"base_url": "localhost:8000", "models": [{"name": "m"}]}, "llm.base_url: must start with http"),
        ({"base_url": "http://127.0.0.1:1/v1", "models": []}, "llm: models: at least one model is required"),
        ({"base_url": "http://127.0.0.1:1/v1", "models": [{"name": "m", "weight": -1}]}, "llm.models.0.weight:"),
        ({"provider": "local"}, "llm: local_model: required"),
        ({"base_url": "http://127.0.0.1:1/v1", "models": [{"name": "m"}], "temperature": 9}, "llm.temperature:"),
    ]
    for llm, fragment in cases:
        with pytest.raises(ConfigError) as err:
            load_config(write(tmp_path, _set(base, "llm", llm)))
        assert fragment in str(err.value), str(err.value)


def test_a_comparison_config_points_to_evolve_compare(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    with pytest.raises(ConfigError, match="comparison config .* `evolve compare configs/compare-toy.yaml`"):
        load_config("configs/compare-toy.yaml")


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(write(tmp_path, "run: [unclosed\n"))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")


def test_environment_variables_are_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _set(good(), "mutators", [{"name": "llm-diff"}])
    data["llm"] = {"base_url": "${EV_TEST_URL:-http://127.0.0.1:9/v1}", "models": [{"name": "${EV_TEST_MODEL}"}]}
    monkeypatch.setenv("EV_TEST_MODEL", "tiny")
    cfg = load_config(write(tmp_path, data))
    assert cfg.llm is not None and cfg.llm.base_url == "http://127.0.0.1:9/v1" and cfg.llm.models[0].name == "tiny"
    monkeypatch.setenv("EV_TEST_URL", "http://10.0.0.1/v1")
    assert load_config(write(tmp_path, data)).llm.base_url == "http://10.0.0.1/v1"
    monkeypatch.delenv("EV_TEST_MODEL")
    with pytest.raises(ConfigError, match=r"llm\.models\.0\.name: environment variable EV_TEST_MODEL is not set"):
        load_config(write(tmp_path, data))


def test_plugin_parameters_are_checked_without_building_the_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run builds the strategy once; config validation only parses its parameter model."""
    from evolve.strategies.hillclimb import HillClimb

    def built(*args: object, **kwargs: object) -> None:
        raise AssertionError("config validation built the strategy")

    monkeypatch.setattr(HillClimb, "__init__", built)
    load_config(write(tmp_path, good()))


# --- command-line overrides, paths against the config's folder, "did you mean" -------------------
def test_set_overrides_are_parsed_as_yaml_and_validated_like_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, good())
    cfg = load_config(path, ["budget.max_evaluations=25", "run.name=other", "mutators.0.weight=2.5",
                             "strategy.params={inspirations: 2}", "task.constraints=[error <= 1]"])
    assert cfg.budget.max_evaluations == 25 and cfg.run.name == "other"
    assert cfg.mutators[0].weight == 2.5 and cfg.strategy.params == {"inspirations": 2}
    assert cfg.to_yaml_dict()["budget"]["max_evaluations"] == 25  # the effective config is what is saved
    with pytest.raises(ConfigError) as bad:
        load_config(path, ["budget.max_evaluations=0"])
    assert str(bad.value).startswith("--set budget.max_evaluations=0: budget.max_evaluations: ")
    assert str(bad.value).endswith("(got 0)")
    with pytest.raises(ConfigError) as bad:  # a semantic check blames the --set too
        load_config(path, ["strategy.params={nope: 1}"])
    assert str(bad.value).startswith("--set strategy.params={nope: 1}: strategy.params: ")


@pytest.mark.parametrize(("override", "message"), [
    ("budget.max_evals=3", "--set budget.max_evals=3: budget.max_evals: unknown key; did you mean 'max_evaluations'?"),
    ("novalue", "--set 'novalue': expected KEY.PATH=VALUE"),
    ("budget..x=1", "--set 'budget..x=1': expected KEY.PATH=VALUE"),
    ("mutators.5.weight=1", "--set 'mutators.5.weight=1': mutators has no item 5"),
    ("run.seed=[", "--set 'run.seed=[': the value is not valid YAML"),
    ("run.seed=abc", "--set run.seed=abc: run.seed: "),
])
def test_bad_override_is_one_line(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, good()), [override])
    assert str(info.value).startswith(message), str(info.value)


def test_unknown_key_in_the_file_names_the_closest(tmp_path: Path) -> None:
    data = good()
    data["strategy"]["nmae"] = "x"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, data))
    assert str(info.value).endswith("strategy.nmae: unknown key; did you mean 'name'?")
    data = good()
    data["zzz"] = 1
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, data))
    assert "zzz: unknown key (known: run, task, seeds" in str(info.value)


def test_seed_paths_are_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "project" / "configs"
    (tmp_path / "project" / "seeds").mkdir(parents=True)
    folder.mkdir()
    (tmp_path / "project" / "seeds" / "start.py").write_text((ROOT / "seeds/toy/start.py").read_text())
    data = good()
    data["seeds"] = ["../seeds/start.py"]
    (folder / "c.yaml").write_text(yaml.safe_dump(data))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(folder / "c.yaml")
    assert cfg.seeds == [(folder / "../seeds/start.py")]
    assert cfg.seeds[0].is_file()
    assert cfg.run_dir == Path("runs/t1")  # output under the current directory
    data["seeds"] = ["../seeds/missing.py"]
    (folder / "c.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"seeds\.0: no such seed file .*configs/\.\./seeds/missing\.py"):
        load_config(folder / "c.yaml")


def test_shipped_configs_load_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        if not path.name.startswith("compare-"):
            assert all(seed.is_file() for seed in load_config(path).seeds)


# --- a task's path options (``ConfigPath``) follow the same rule as the seeds -----------------------
def microgpt_config(folder: Path, options: dict) -> Path:
    data = good()
    data["task"] = {"name": "microgpt", "options": options}
    data["seeds"] = [str(ROOT / "seeds/microgpt/optimized.py")]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "c.yaml").write_text(yaml.safe_dump(data))
    return folder / "c.yaml"


def test_task_path_options_are_relative_to_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "ref.py").write_text((ROOT / "seeds/microgpt/baseline.py").read_text())
    config = microgpt_config(folder, {"reference": "ref.py", "cache_dir": "cache"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    options = load_config(config).task.options
    assert (options["reference"], options["cache_dir"]) == (str(folder / "ref.py"), str(folder / "cache"))
    # a --set value is written into the config, so it is relative to the config's folder too
    options = load_config(config, ["task.options.cache_dir=other"]).task.options
    assert options["cache_dir"] == str(folder / "other")


def test_absolute_and_home_paths_stay_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = microgpt_config(tmp_path / "project", {"reference": str(ROOT / "seeds/microgpt/baseline.py"),
                                                     "cache_dir": "~/c"})
    options = load_config(config).task.options
    assert options["reference"] == str(ROOT / "seeds/microgpt/baseline.py")
    assert options["cache_dir"] == str(tmp_path / "home" / "c")
    assert "seed" not in options  # only declared options are touched, none added


def test_a_missing_relative_reference_names_the_resolved_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: the task's own option check (microgpt's ``reference`` must exist) sees the resolved path."""
    monkeypatch.chdir(ROOT)  # seeds/microgpt/baseline.py exists from here, not from the config's folder
    config = microgpt_config(tmp_path / "project", {"reference": "seeds/microgpt/baseline.py"})
    with pytest.raises(ConfigError, match=r"task: task 'microgpt': reference program .*project/seeds/microgpt/"
                                          r"baseline\.py not found"):
        load_config(config)


def test_path_params_finds_marked_fields_only() -> None:
    from evolve.plugins import ConfigPath, Params, path_params

    class P(Params):
        a: ConfigPath = "x"
        b: ConfigPath | None = None
        c: str = "not a path"

    assert path_params(P) == ("a", "b")
