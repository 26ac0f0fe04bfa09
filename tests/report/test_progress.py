"""The live bar and the end-of-run summary of ``evolve run``, in a real pseudo-terminal at 80 columns:
the least-violating candidate while nothing is feasible, ``-v`` lines, resumed counters, no stale ETA."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evolve.testing.terminal import run_in_pty

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs/toy-islands.yaml")
#: The toy never reaches this error in a few evaluations: nothing is feasible.
IMPOSSIBLE = ["--set", "task.constraints=[error <= 0.0001]"]
BAR = re.compile(r"^p .*\d+/\d+ ")


def in_pty(argv: list[str], cwd: Path, columns: int = 80) -> list[str]:
    """Every screen line ``evolve ARGV`` draws (each re-draw of the bar is its own line)."""
    lines = re.split(r"[\r\n]", run_in_pty(argv, columns=columns, cwd=cwd))
    return [line.rstrip() for line in lines if line.strip()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list[str], Path]:
    """A 6-evaluation infeasible run with -v, then resumed to 10 (from another directory's config)."""
    cwd = tmp_path_factory.mktemp("progress")
    first = in_pty(["run", CONFIG, "--name", "p", "--max-evaluations", "6", "-v", *IMPOSSIBLE], cwd)
    second = in_pty(["run", CONFIG, "--name", "p", "--max-evaluations", "10", "--resume", *IMPOSSIBLE], cwd)
    return first, second, cwd


def test_lines_fit_80_columns(runs: tuple[list[str], list[str], Path]) -> None:
    first, second, _ = runs
    for line in first + second:
        assert len(line) <= 80, line


def test_bar_names_the_closest_candidate_while_nothing_is_feasible(runs) -> None:
    first, _, _ = runs
    bars = [line for line in first if BAR.match(line)]
    assert any("closest #" in line and "error=" in line for line in bars), bars
    assert not any("none feasible" in line for line in bars)


def test_summary_shows_the_closest_not_an_empty_front(runs) -> None:
    first, _, _ = runs
    screen = "\n".join(first)
    assert "Pareto front: 0 of 0" not in screen
    match = re.search(r"No feasible candidate yet\. Closest: #(\d+) \(total violation [\d.]+\): error=", screen)
    assert match, screen
    assert "closest candidate" in screen


def test_verbose_prints_one_line_per_evaluation(runs) -> None:
    first, second, _ = runs
    ids = [int(m.group(1)) for line in first if (m := re.match(r"^#(\d+) <- (seed|#\d+) ", line))]
    assert ids == list(range(6))
    assert not any(re.match(r"^#\d+ <- ", line) for line in second)  # no -v on the resumed run


def test_resumed_bar_counts_from_the_archive_and_drops_the_eta(runs) -> None:
    first, second, cwd = runs
    counts = [re.search(r" (\d+)/10 ", line) for line in second if BAR.match(line)]
    assert counts and all(counts)
    assert int(counts[0].group(1)) == 6  # never 0/10 on resume
    for bars in (first, second):
        last = [line for line in bars if BAR.match(line)][-1]
        assert len(re.findall(r"\d+:\d\d:\d\d", last)) == 1 and "-:--:--" not in last, last  # elapsed only
    assert (cwd / "runs" / "p" / "archive").is_dir()  # runs go under the current directory
