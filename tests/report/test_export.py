"""``evolve export``: the best program by an objective, one id, or the front, as files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evolve.archive import Archive, Candidate, RunMeta
from evolve.cli import main
from evolve.evaluation import EvalResult
from evolve.tasks import Constraint, Objective

ACCURACY = Constraint("accuracy", ">=", 0.9)
META = RunMeta(run="exp", task="toy", constraints=(ACCURACY,),
               objectives=(Objective("params", "min"), Objective("rss_mib", "min", "MiB")))


def record(params: float, rss: float, accuracy: float = 1.0, parents: tuple[int, ...] = ()) -> Candidate:
    metrics = {"params": params, "rss_mib": rss, "accuracy": accuracy}
    result = EvalResult(status="ok", metrics=metrics, feasible=ACCURACY.satisfied(metrics),
                        violation=ACCURACY.violation(metrics))
    return Candidate(source=f"PARAMS = {params}\nRSS = {rss}\n", result=result, parents=parents)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """#0 infeasible, #1 fewest params, #2 least memory, #3 dominated."""
    with Archive.create(tmp_path / "exp" / "archive", META) as a:
        a.add_batch([record(5, 5, accuracy=0.1), record(10, 50), record(40, 20), record(50, 60)], {})
    return tmp_path / "exp"


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("evolve: "), err
    return err[0]


def test_the_best_by_the_first_objective_goes_to_stdout(run_dir, capsys):
    assert main(["export", str(run_dir)]) == 0
    assert capsys.readouterr().out == "PARAMS = 10\nRSS = 50\n"


def test_best_by_a_chosen_objective_into_a_file(run_dir, tmp_path, capsys):
    out = tmp_path / "best.py"
    assert main(["export", str(run_dir), "--by", "rss_mib", "-o", str(out)]) == 0
    assert out.read_text() == "PARAMS = 40\nRSS = 20\n"
    assert f"wrote #2 to {out}" in capsys.readouterr().err


def test_a_given_id_even_infeasible_into_a_folder(run_dir, tmp_path):
    assert main(["export", str(run_dir), "0", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "0.py").read_text() == "PARAMS = 5\nRSS = 5\n"


def test_the_front_as_files_with_their_metrics(run_dir, tmp_path):
    out = tmp_path / "front"
    assert main(["export", str(run_dir), "--front", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["1.py", "2.py", "front.json"]
    listed = json.loads((out / "front.json").read_text())
    assert [(c["id"], c["file"], c["metrics"]["params"]) for c in listed["candidates"]] == [
        (1, "1.py", 10), (2, "2.py", 40)]
    assert (out / "2.py").read_text() == "PARAMS = 40\nRSS = 20\n"


@pytest.mark.parametrize(("args", "fragment"), [
    (["nosuchrun"], "no such run 'nosuchrun'"),
    (["RUN", "99"], "no candidate #99"),
    (["RUN", "--by", "accuracy"], "--by 'accuracy': not an objective of this run (objectives: params, rss_mib)"),
    (["RUN", "1", "--by", "params"], "not both"),
    (["RUN", "1", "--front", "-o", "x"], "not both"),
    (["RUN", "--front"], "give the folder with -o DIR"),
    (["RUN", "-o", "no/such/dir/best.py"], "no such directory"),
])
def test_bad_input_is_one_line_and_exit_2(run_dir, capsys, args, fragment):
    argv = ["export", *(str(run_dir) if a == "RUN" else a for a in args)]
    assert main(argv) == 2
    assert fragment in one_line_error(capsys)


def test_front_into_a_file_is_refused(run_dir, tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    assert main(["export", str(run_dir), "--front", "-o", str(tmp_path / "taken")]) == 2
    assert "not a directory" in one_line_error(capsys)


def test_nothing_feasible_is_one_line_and_exit_1(tmp_path, capsys):
    with Archive.create(tmp_path / "bad" / "archive", META) as a:
        a.add_batch([record(5, 5, accuracy=0.1)], {})
    assert main(["export", str(tmp_path / "bad")]) == 1
    assert one_line_error(capsys).endswith("has no feasible candidate yet; the least violating is #0: "
                                           f"evolve export {tmp_path / 'bad'} 0")
    assert capsys.readouterr().out == ""
    assert main(["export", str(tmp_path / "bad"), "--front", "-o", str(tmp_path / "f")]) == 1
    assert "empty front" in one_line_error(capsys)
