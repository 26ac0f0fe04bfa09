"""Tasks: options as a typed model checked without building the task, and tasks from a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from evolve.cli import main
from evolve.config import ConfigError, load_config
from evolve.tasks import TaskError, get_task

ROOT = Path(__file__).resolve().parents[1]

#: A task written against the documented interface only: the candidate prints a number, the
#: trusted parent reads it as data; ``target`` is a typed option.
HALF = '''
from pathlib import Path
from pydantic import Field
from evolve.evaluation import EvalResult
from evolve.plugins import Params as PluginParams
from evolve.sandbox import Job, Limits, Sandbox
from evolve.tasks import Objective, Task


class Half(Task):
    name = "half"
    description = "print a number close to the target"
    objectives = (Objective("error", "min"),)

    class Params(PluginParams):
        target: float = Field(0.5, ge=0)

    def evaluate(self, program: Path, sandbox: Sandbox) -> EvalResult:
        job = Job.script("program.py", files={"program.py": str(program)})
        proc = sandbox.run(job, limits=Limits(timeout_s=20))
        if not proc.ok:
            return EvalResult.failed(proc, "run")
        value = float(proc.stdout.split()[-1])
        return EvalResult(status="ok", metrics={"error": abs(value - self.params.target)},
                          phases={"run": proc.summary()})
'''


def task_file(folder: Path, body: str = HALF + "\nTASK = Half\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "half.py"
    path.write_text(body)
    return path


def test_eval_of_a_task_file_runs_the_candidate_in_the_sandbox(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    program = tmp_path / "p.py"
    program.write_text("print(0.25)\n")
    assert main(["eval", str(task_file(tmp_path)), str(program), "--option", "target=1.0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["error"] == 0.75


@pytest.mark.parametrize("body, fragment", [
    (None, "no such file"),
    ("def broken(:\n", "line 1: syntax error"),
    ("X = 1\n", "does not define TASK"),
    (HALF + "\nTASK = Half\n", "task 'half': target: must be >= 0"),
    (HALF + "\nclass Forked(Half):\n    isolation = 'forkserver'\n    stdlib_only = True\n\nTASK = Forked\n",
     "stdlib_only needs isolation = 'fresh'"),
])
def test_bad_task_file_is_one_line_and_exit_2(tmp_path: Path, body: str | None, fragment: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = task_file(tmp_path, body) if body is not None else tmp_path / "missing.py"
    program = tmp_path / "p.py"
    program.write_text("print(0.25)\n")
    assert main(["eval", str(path), str(program), "--option", "target=-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


def config_for(folder: Path, task: dict[str, object]) -> Path:
    (folder / "seed.py").write_text("print(0.25)\n")
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump({"run": {"name": "t"}, "task": task, "seeds": [str(folder / "seed.py")],
                                    "mutators": [{"name": "numeric"}], "budget": {"max_evaluations": 2}}))
    return path


def test_config_task_file_is_relative_to_the_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    task_file(tmp_path / "cfg" / "tasks")
    config = config_for(tmp_path / "cfg", {"file": "tasks/half.py", "options": {"target": 2.0}})
    monkeypatch.chdir(tmp_path)  # not the config's folder
    cfg = load_config(config)
    assert cfg.task.file == str(tmp_path / "cfg" / "tasks" / "half.py")
    task_file(tmp_path / "cfg")
    moved = load_config(config, overrides=["task.file=half.py"])  # a --set path: the same rule
    assert moved.task.file == str(tmp_path / "cfg" / "half.py") and Path(moved.task.file).is_file()


@pytest.mark.parametrize("task, fragment", [
    ({"name": "toy", "file": "half.py"}, "exactly one of name"),
    ({"options": {}}, "exactly one of name"),
    ({"file": "half.txt"}, "ends in .py"),
    ({"file": "nope.py"}, "no such file"),
    ({"file": "half.py", "options": {"target": "x"}}, "task 'half': target"),
])
def test_bad_task_section_is_one_line(tmp_path: Path, task: dict[str, object], fragment: str) -> None:
    task_file(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config(config_for(tmp_path, task))
    assert "\n" not in str(err.value) and fragment in str(err.value), str(err.value)


def test_config_check_does_not_build_the_task(tmp_path: Path) -> None:
    """Options are checked from the declaration; the constructor runs once, in the run."""
    body = HALF + "\n    def __init__(self, **kw):\n        raise RuntimeError('built')\n\nTASK = Half\n"
    task_file(tmp_path, body)
    load_config(config_for(tmp_path, {"file": "half.py", "options": {"target": 1.0}}))
    with pytest.raises(RuntimeError, match="built"):
        get_task(str(tmp_path / "half.py"))


def test_task_options_are_typed_and_strict() -> None:
    assert get_task("toy", timeout_s=3).options == {"timeout_s": 3.0}
    for bad in ({"timeout_s": "3"}, {"timeout_s": True}, {"timeout_s": 0}, {"nope": 1}):
        with pytest.raises(TaskError, match="task 'toy'"):
            get_task("toy", **bad)


#: The researcher's bug: the task's own ``evaluate`` raises on every candidate.
BROKEN = HALF.replace("value = float(proc.stdout.split()[-1])", "value = float(proc.stdout.split()[-1]) / 0")


def test_a_task_file_that_raises_is_one_line_naming_file_and_line(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Rule evaluation._task_evaluate: a task file's exception is its author's bug, reported as one
    line (file, line, exception) with exit 2, not a traceback."""
    path = task_file(tmp_path, BROKEN + "\nTASK = Half\n")
    program = tmp_path / "p.py"
    program.write_text("print(0.25)\n")
    assert main(["eval", str(path), str(program)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    line = BROKEN.splitlines().index(next(l for l in BROKEN.splitlines() if "/ 0" in l)) + 1
    assert len(err) == 1 and "evaluate raised ZeroDivisionError: float division by zero" in err[0], err
    assert f"(at half.py:{line})" in err[0], err


def test_a_run_whose_task_file_raises_stops_in_one_line_and_resumes_once_fixed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The run stops at the first evaluation with one line; run.log holds the traceback; nothing
    is lost, and --resume evaluates the seeds once the task is fixed."""
    path = task_file(tmp_path, BROKEN + "\nTASK = Half\n")
    config = config_for(tmp_path, {"file": str(path)})
    data = yaml.safe_load(config.read_text())
    data["run"]["output_dir"] = str(tmp_path / "runs")
    config.write_text(yaml.safe_dump(data))
    assert main(["run", str(config)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar's line
    assert last.startswith("evolve: task file ") and "evaluate raised ZeroDivisionError" in last, last
    assert "then --resume" in last
    events = [json.loads(l) for l in (tmp_path / "runs" / "t" / "run.log").read_text().splitlines()]
    assert events[-1]["reason"] == "task file error" and "ZeroDivisionError" in events[-1]["traceback"]
    task_file(tmp_path)  # fixed
    assert main(["run", str(config), "--resume"]) == 0
    capsys.readouterr()
    assert main(["show", str(tmp_path / "runs" / "t"), "--all", "--json"]) == 0
    candidates = json.loads(capsys.readouterr().out)["candidates"]
    assert len(candidates) == 2 and candidates[0]["status"] == "ok"  # the seed, then one child
