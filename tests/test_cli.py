"""The ``evolve`` command line: exit codes and one-line errors for every kind of bad input.

Most cases call :func:`evolve.cli.main` in-process (fast); the installed console script is run
once as a real subprocess to pin the entry point itself.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evolve.archive import Archive
from evolve.cli import main

ROOT = Path(__file__).resolve().parents[1]
TOY_SEED = ROOT / "seeds/toy/start.py"


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("evolve: "), err
    return err[0]


def test_console_script_lists_the_tasks() -> None:
    exe = shutil.which("evolve")
    if exe is None:
        pytest.skip("the package is not installed (pip install -e .): no evolve console script")
    proc = subprocess.run([exe, "tasks"], capture_output=True, text=True, timeout=60, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    for task in ("adder", "sorter", "microgpt", "toy"):
        assert task in proc.stdout


def test_a_run_as_a_program_skips_the_finalization_but_nothing_it_wrote(tmp_path: Path) -> None:
    # Rule: ``run`` leaves with os._exit once everything is closed (the interpreter's finalization
    # cost 0.3-0.5 s); the exit handlers run, the output is flushed, the archive is whole.
    config = {"run": {"name": "exit", "output_dir": "runs"}, "task": {"name": "toy"},
              "seeds": [str(TOY_SEED)], "mutators": [{"name": "numeric", "params": {}}],
              "budget": {"max_evaluations": 6}, "parallel": {"evaluations": 2}}
    (tmp_path / "exit.yaml").write_text(yaml.safe_dump(config))
    hook = tmp_path / "sitecustomize.py"  # an exit handler, as a library would register one
    hook.write_text("import atexit\natexit.register(lambda: open('handler-ran', 'w').close())\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{tmp_path}:{ROOT}", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "evolve.cli", "run", "exit.yaml"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "6 evaluations" in proc.stderr and "results in runs/exit/" in proc.stderr  # flushed
    assert (tmp_path / "handler-ran").exists()
    archive = tmp_path / "runs/exit/archive"
    assert subprocess.run(["git", "status", "--porcelain"], cwd=archive, capture_output=True, text=True).stdout == ""
    with Archive.open(archive) as a:
        assert len(a) == 6 and a.best() is not None
        assert subprocess.run(["git", "rev-parse", "best"], cwd=archive, capture_output=True,
                              text=True).stdout.strip() == a.best().sha
    assert '"event": "run.stop"' in (tmp_path / "runs/exit/run.log").read_text()


def test_eval_prints_metrics_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "toy", str(TOY_SEED), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "ok" and result["metrics"]["error"] == pytest.approx(1.0 + 0.25 + 0.0625 + 9.0)
    assert main(["eval", "toy", str(TOY_SEED)]) == 0
    assert "error" in capsys.readouterr().out


def test_eval_of_a_crashing_program_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    program = tmp_path / "crash.py"
    program.write_text("raise RuntimeError('boom')\n")
    assert main(["eval", "toy", str(program)]) == 1
    assert "boom" in capsys.readouterr().out


def test_eval_shows_a_program_s_error_as_text_not_markup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Rule: a candidate's words are text, never rich markup ("[/]" raised MarkupError in evolve eval)
    program = tmp_path / "crash.py"
    program.write_text("raise RuntimeError('[/] [bold red]boom[/]')\n")
    assert main(["eval", "toy", str(program)]) == 1
    assert "[/] [bold red]boom[/]" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "fragment"), [
    (["eval", "toy", "no/such/program.py"], "no/such/program.py"),
    (["eval", "nosuchtask", str(TOY_SEED)], "unknown task 'nosuchtask'"),
    (["eval", "toy", str(TOY_SEED), "--option", "novalue"], "expected KEY=VALUE"),
    (["eval", "toy", str(TOY_SEED), "--option", "bogus=1"], "unknown option 'bogus'"),
    (["run", "no/such/config.yaml"], "no such config file"),
    (["resume", "no-such-run"], "no such run 'no-such-run'"),
    (["show", "no-such-run"], "no such run 'no-such-run'"),
    (["archive", "reindex", "no-such-run"], "no such run 'no-such-run'"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert fragment in one_line_error(capsys)


def test_eval_of_a_syntax_error_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    program = tmp_path / "broken.py"
    program.write_text("def f(:\n")
    assert main(["eval", "toy", str(program)]) == 2
    assert "broken.py" in one_line_error(capsys)


@pytest.mark.slow
def test_eval_of_an_adder_without_its_interface_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    program = tmp_path / "noformat.py"
    program.write_text("import torch\n\ndef build_model():\n    return torch.nn.Linear(2, 2)\n")
    assert main(["eval", "adder", str(program)]) == 2
    assert "defines no FORMAT" in one_line_error(capsys)


def test_show_of_a_directory_that_is_not_an_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notarun" / "archive").mkdir(parents=True)
    assert main(["show", str(tmp_path / "notarun")]) == 2
    one_line_error(capsys)
    assert main(["archive", "reindex", str(tmp_path / "notarun")]) == 2
    one_line_error(capsys)


def test_show_of_an_unknown_candidate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = {
        "run": {"name": "c", "output_dir": str(tmp_path / "runs")}, "task": {"name": "toy"},
        "seeds": [str(TOY_SEED)], "budget": {"max_evaluations": 2},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    run_dir = str(tmp_path / "runs/c")
    assert main(["show", run_dir, "999"]) == 2
    assert "999" in one_line_error(capsys)
    assert main(["show", run_dir, "1", "--diff"]) == 0
    # Running the same config again without --resume is refused, and the archive is untouched.
    before = subprocess.run(["git", "rev-list", "--all", "--count"], cwd=f"{run_dir}/archive", capture_output=True, text=True).stdout
    capsys.readouterr()
    assert main(["run", str(path)]) == 2
    assert "--resume" in one_line_error(capsys)
    after = subprocess.run(["git", "rev-list", "--all", "--count"], cwd=f"{run_dir}/archive", capture_output=True, text=True).stdout
    assert before == after


def test_bad_config_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = {
        "run": {"name": "bad", "output_dir": str(tmp_path / "runs")}, "task": {"name": "toy"},
        "seeds": [str(TOY_SEED)], "budget": {"max_evaluations": 0},
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path)]) == 2
    assert "budget.max_evaluations" in one_line_error(capsys)
    assert not (tmp_path / "runs").exists()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from evolve import __version__

    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0 and capsys.readouterr().out == f"evolve {__version__}\n"


def test_a_mistyped_command_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shwo", "x"]) == 2
    assert one_line_error(capsys) == "evolve: unknown command 'shwo'; did you mean 'show'? (evolve --help lists them)"
    assert main(["frobnicate"]) == 2
    assert "did you mean" not in one_line_error(capsys)


def test_a_mistyped_run_name_gets_a_suggestion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "runs" / "adder-repair").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert main(["show", "adder-repiar"]) == 2
    assert one_line_error(capsys).endswith("did you mean 'adder-repair'?")


def test_the_end_of_a_run_says_where_results_are_and_what_to_run(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = {"run": {"name": "steps", "output_dir": str(tmp_path / "runs")}, "task": {"name": "toy"},
              "seeds": [str(TOY_SEED)], "budget": {"max_evaluations": 2}}
    path = tmp_path / "steps.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path)]) == 0
    err = capsys.readouterr().err
    run_dir = tmp_path / "runs" / "steps"
    assert f"results in {run_dir}/" in err
    for command in (f"evolve show {run_dir}", f"evolve report {run_dir}"):
        assert command in err
    # The toy's seed is infeasible, so the export line names the least-violating candidate.
    export = next(line.split("#")[0].strip() for line in err.splitlines() if "evolve export" in line)
    assert export.endswith(" -o closest.py")  # nothing feasible: the least-violating one
    argv = export.split()[1:]
    argv[-1] = str(tmp_path / argv[-1])
    assert main(argv) == 0  # the advice works as printed
    assert (tmp_path / "closest.py").read_text() == Archive.open(run_dir / "archive").best().source


def test_a_broken_preload_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import evolve.evaluation
    from evolve.sandbox.zygote import ForkServerError

    def zygote_fails(*args: object, **kwargs: object) -> None:
        raise ForkServerError("fork server did not start: preload 'torch' failed: ModuleNotFoundError\n"
                              "Traceback (most recent call last): ...")

    monkeypatch.setattr(evolve.evaluation, "evaluate", zygote_fails)
    assert main(["eval", "toy", str(TOY_SEED)]) == 2
    assert one_line_error(capsys) == ("evolve: fork server did not start: preload 'torch' failed: "
                                      "ModuleNotFoundError")


def test_a_bug_is_not_dressed_up_as_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import evolve.evaluation

    def bug(*args: object, **kwargs: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(evolve.evaluation, "evaluate", bug)
    with pytest.raises(KeyError, match="a bug"):  # the traceback reaches the user; Python exits 1
        main(["eval", "toy", str(TOY_SEED)])


def test_run_overrides_are_what_the_archive_saves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """--name/--seed/--max-evaluations/--set from another directory: the effective config is saved."""
    monkeypatch.chdir(tmp_path)
    argv = ["run", str(ROOT / "configs/toy-islands.yaml"), "--name", "007", "--seed", "5",
            "--max-evaluations", "3", "--set", "strategy.params.islands=2"]
    assert main(argv) == 0
    with Archive.open(tmp_path / "runs" / "007" / "archive") as archive:
        saved, n = archive.meta.config, len(archive)
    assert n == 3 and saved["run"]["name"] == "007" and saved["run"]["seed"] == 5
    assert saved["budget"]["max_evaluations"] == 3 and saved["strategy"]["params"]["islands"] == 2
    assert Path(saved["seeds"][0]).is_file()  # absolute: `evolve resume` works from anywhere
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["resume", str(tmp_path / "runs" / "007")]) == 0  # budget spent: resumes, stops at once
    assert "evaluation budget spent (3)" in capsys.readouterr().err
    assert not (elsewhere / "runs").exists()


@pytest.mark.parametrize(("extra", "fragment"), [
    (["--set", "budget.max_evals=3"], "--set budget.max_evals=3: budget.max_evals: unknown key; did you mean 'max_evaluations'?"),
    (["--max-evaluations", "0"], "--set budget.max_evaluations=0: budget.max_evaluations: "),
    (["--name", "bad name"], "--set run.name=\"bad name\": run.name: "),
])
def test_bad_run_override_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str], extra: list[str],
                                             fragment: str) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(ROOT / "configs/toy-islands.yaml"), *extra]) == 2
    assert one_line_error(capsys).startswith(f"evolve: {fragment}")
    assert not (tmp_path / "runs").exists()


# --- `evolve resume RUN` takes --set / --max-evaluations under the config-change rules -------------
@pytest.fixture
def small_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A finished 2-evaluation toy run under tmp_path/runs/r."""
    monkeypatch.chdir(tmp_path)
    argv = ["run", str(ROOT / "configs/toy-islands.yaml"), "--name", "r", "--max-evaluations", "2"]
    assert main(argv) == 0
    return tmp_path / "runs" / "r"


def saved_config(run_dir: Path) -> tuple[dict, int]:
    with Archive.open(run_dir / "archive") as archive:
        return (archive.state() or {})["config"], len(archive)


def test_resume_with_a_bigger_budget_continues_and_saves_it(small_run: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["resume", "r", "--max-evaluations", "4", "--set", "budget.max_wall_s=600"]) == 0
    err = capsys.readouterr().err
    assert "budget.max_evaluations: 2 -> 4" in err and "evaluation budget spent (4)" in err
    config, n = saved_config(small_run)
    assert n == 4 and config["budget"] == {"max_evaluations": 4, "max_wall_s": 600}


def test_resume_refuses_an_experiment_change_without_force(small_run: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Rule: config_changes.refusal (experiment keys need --force), the same as `run --resume`."""
    capsys.readouterr()
    assert main(["resume", "r", "--set", "strategy.params.islands=2", "--max-evaluations", "3"]) == 2
    line = one_line_error(capsys)
    assert "a different experiment (strategy.params.islands: 3 -> 2)" in line and "pass --force" in line
    assert saved_config(small_run)[1] == 2  # nothing evaluated
    assert main(["resume", "r", "--set", "strategy.params.islands=2", "--max-evaluations", "3", "--force"]) == 0
    config, n = saved_config(small_run)
    assert n == 3 and config["strategy"]["params"]["islands"] == 2


@pytest.mark.parametrize(("extra", "fragment"), [
    # rule: validated like the file, the error blames the --set (config._blame)
    (["--set", "budget.max_evaluations=0"], "--set budget.max_evaluations=0: budget.max_evaluations: "),
    (["--max-evaluations", "0"], "--set budget.max_evaluations=0: budget.max_evaluations: "),
    (["--set", "strategy.parms.x=1"], "--set strategy.parms.x=1: strategy.parms: unknown key; did you mean 'params'?"),
    # rule: cmd_resume keeps the run where it is
    (["--set", "run.name=other"], "--set run.name=other: a resumed run keeps its name and folder"),
    (["--set", "run.output_dir=/tmp/x"], "--set run.output_dir=/tmp/x: a resumed run keeps its name"),
    # rule: config.parse_override
    (["--set", "budget"], "--set 'budget': expected KEY.PATH=VALUE"),
])
def test_bad_resume_override_is_one_line_exit_2(small_run: Path, capsys: pytest.CaptureFixture[str],
                                                extra: list[str], fragment: str) -> None:
    capsys.readouterr()
    assert main(["resume", "r", *extra]) == 2
    assert one_line_error(capsys).startswith(f"evolve: {fragment}")
    assert saved_config(small_run)[1] == 2


def test_a_run_is_preferred_over_a_folder_of_the_same_name(small_run: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`evolve run r/config.yaml` from the folder holding the task's folder ``r/`` makes runs/r:
    `evolve show r` shows that run, not the task's folder."""
    (small_run.parent.parent / "r").mkdir()
    capsys.readouterr()
    assert main(["show", "r"]) == 0
    assert "run r" in capsys.readouterr().out


def test_eval_flags_a_declared_metric_the_task_does_not_return(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A task file whose evaluate says ``Error`` for its objective ``error``: eval names it MISSING."""
    skeleton = tmp_path / "sk"
    assert main(["new-task", "sk", "-o", str(skeleton)]) == 0
    task = skeleton / "sk.py"
    task.write_text(task.read_text().replace('metrics = {"error": error', 'metrics = {"Error": error'))
    capsys.readouterr()
    assert main(["eval", str(task), str(skeleton / "seed.py")]) == 0
    out = capsys.readouterr().out
    assert "<= 0.01 MISSING" in out
    assert "the task declares error but evaluate returned no such metric (it returned: Error, chars)" in out
