"""``evolve new-task``: the skeleton runs as written (eval of its seed, a tiny offline run, its own tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evolve.archive import Archive
from evolve.cli import main
from evolve.config import load_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_skeleton_evaluates_evolves_and_passes_its_tests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["new-task", "demo", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "demo.py", "seed.py", "test_demo.py"]
    monkeypatch.chdir(out)  # the folder the skeleton's config comment says to run from
    capsys.readouterr()
    assert main(["eval", "demo.py", "seed.py", "--json"]) == 0
    seed = json.loads(capsys.readouterr().out)
    assert seed["status"] == "ok" and seed["metrics"]["error"] == pytest.approx(3.14159 - 1.75)
    config = yaml.safe_load((out / "config.yaml").read_text())
    config["budget"]["max_evaluations"] = 6
    (out / "config.yaml").write_text(yaml.safe_dump(config))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # seed and task file are found from the config's folder, not the cwd
    assert main(["run", str(out / "config.yaml")]) == 0
    with Archive.open(elsewhere / "runs" / "demo" / "archive") as archive:
        assert archive.meta.task == "demo" and len(archive) == 6
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_demo.py"],
                          cwd=out, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:]


def test_the_skeleton_config_names_its_seed_and_task_relative_to_its_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "demo"
    assert main(["new-task", "demo", "-o", str(out)]) == 0
    monkeypatch.chdir(tmp_path)  # not the skeleton's folder
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["seeds"] == ["seed.py"] and config["task"]["file"] == "demo.py"  # relative, as written
    cfg = load_config(out / "config.yaml")
    home = out.resolve()
    assert cfg.seeds == [home / "seed.py"] and cfg.task.file == str(home / "demo.py")


@pytest.mark.parametrize("name, fragment", [("My-Task", "lower-case letters"), ("toy", "already exists")])
def test_bad_new_task_is_one_line_and_exit_2(tmp_path: Path, name: str, fragment: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "toy.py").write_text("# mine\n")
    assert main(["new-task", name, "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert (tmp_path / "toy.py").read_text() == "# mine\n"  # nothing overwritten
