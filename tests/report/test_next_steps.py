"""The lines that end every run: where the results are and what to run next."""

from __future__ import annotations

from pathlib import Path

from test_export import META, record

from evolve.archive import Archive
from evolve.report.next_steps import next_steps


def test_a_run_under_runs_is_named_and_a_feasible_best_is_exported(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Archive.create(Path("runs/exp/archive"), META) as a:
        a.add_batch([record(10, 50)], {})
    text = next_steps(Path("runs/exp"), Path("runs/exp/archive"))
    assert text.splitlines()[0].startswith("results in runs/exp/")
    assert "evolve show exp " in text and "evolve report exp " in text
    assert "evolve export exp -o best.py" in text and "nothing feasible" not in text
    assert max(map(len, text.splitlines())) <= 80


def test_an_absolute_path_under_runs_is_named_and_long_paths_drop_the_notes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Archive.create(tmp_path / "runs" / "exp" / "archive", META) as a:
        a.add_batch([record(5, 5, accuracy=0.1)], {})
    text = next_steps(tmp_path / "runs" / "exp", tmp_path / "runs" / "exp" / "archive")
    assert "  evolve export exp 0 -o closest.py  # nothing feasible: the closest" in text
    far = tmp_path / ("a-rather-long-folder-name-" * 3) / "exp"
    far.mkdir(parents=True)
    (tmp_path / "runs" / "exp").rename(far)
    lines = next_steps(far, far / "archive").splitlines()
    assert f"  evolve report {far}" in lines  # the command alone: nothing wraps it mid-way
    assert all(len(line) <= 80 or "#" not in line for line in lines)
