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
