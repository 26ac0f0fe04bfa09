"""``evolve show`` in a real pseudo-terminal at 80 and 100 columns: every number whole and readable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evolve.archive import Archive, Candidate, RunMeta
from evolve.evaluation import EvalResult
from evolve.tasks import Constraint, Objective
from evolve.testing.terminal import run_in_pty

CONSTRAINTS = (Constraint("accuracy", ">=", 0.99), Constraint("hidden_accuracy", ">=", 0.99),
               Constraint("attention_ops", ">=", 1))
META = RunMeta(run="pty", task="adder", constraints=CONSTRAINTS,
               objectives=(Objective("params_unique", "min", "params"),
                           Objective("params_nonzero", "min", "params")))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """The adder's columns: two parameter counts, three constraints, accuracies like 0.99361."""
    path = tmp_path_factory.mktemp("pty") / "pty"
    rows = [(58, 57, 0.9194, 9.99001e-05), (57, 56, 0.99361, 12.3456), (56, 55, 0.999, 0.5)]
    with Archive.create(path / "archive", META) as a:
        for i, (unique, nonzero, accuracy, wall) in enumerate(rows):
            metrics = {"params_unique": unique, "params_nonzero": nonzero, "accuracy": accuracy,
                       "hidden_accuracy": accuracy - 0.001, "attention_ops": 2, "wall_s": wall}
            result = EvalResult(status="ok", metrics=metrics,
                                feasible=all(c.satisfied(metrics) for c in CONSTRAINTS),
                                violation=sum(c.violation(metrics) for c in CONSTRAINTS))
            a.add_batch([Candidate(source=f"V = {i}\n", result=result, parents=(i - 1,) if i else (),
                                         mutator="llm-rewrite" if i else "seed")], {})
    return path


def in_pty(argv: list[str], columns: int) -> list[str]:
    """Run ``evolve ARGV`` with its stdout on a pseudo-terminal; the screen's lines, colours removed."""
    return run_in_pty(argv, columns=columns, timeout=120).replace("\r", "").splitlines()


@pytest.mark.parametrize("columns", [80, 100])
def test_front_and_all_fit_the_terminal_with_whole_numbers(run_dir, columns):
    for argv in (["show", str(run_dir)], ["show", str(run_dir), "--all"], ["show", str(run_dir), "1"]):
        lines = in_pty(argv, columns)
        assert max(len(line) for line in lines) <= columns, "\n".join(lines)
        screen = "\n".join(lines)
        assert not re.search(r"[\d.%_]…", screen), screen  # only prose (a mutator name) may be cut
        assert "e-05" not in screen
    rows = {line.split()[0]: line.split() for line in in_pty(["show", str(run_dir), "--all"], columns)
            if line[:1].isdigit() and "candidates" not in line}
    assert rows["0"][:6] == ["0", "58", "57", "91.94%", "91.84%", "2"]
    assert rows["1"][:6] == ["1", "57", "56", "99.36%", "99.26%", "2"]
    assert rows["2"][3:5] == ["99.90%", "99.80%"]


def test_one_candidate_formats_each_metric(run_dir):
    screen = "\n".join(in_pty(["show", str(run_dir), "0"], 80))
    assert "9.99e-5" in screen and "91.94%" in screen  # wall_s of #0, its accuracy
