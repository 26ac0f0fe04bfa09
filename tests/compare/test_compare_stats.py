"""Comparison statistics on hand-built archives with numbers worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from compare_helpers import build_run

from evolve.archive import Archive
from evolve.pareto import hypervolume
from evolve.compare import CompareError, Comparison, Group
from evolve.compare.stats import compute, derive_reference, rank_test
from evolve.compare.table import spread_text, table_cells
from evolve.tasks import Objective

# Batch 1: the seed (4, 4). Batch 2: (2, 8), (8, 2), an infeasible (13, 1) and a crash.
# With reference (10, 10): 6*6 = 36 after batch 1; the two new boxes add 4 each -> 44.
BATCHES = [[(4, 4)], [(2, 8), (8, 2), (13, 1), None]]


def one_run(tmp_path: Path, **kw) -> Comparison:
    run = build_run(tmp_path / "a", BATCHES, **kw)
    return Comparison("c", tmp_path, (Group("g", (run,)),), reference={"error": 10, "chars": 10},
                      target=("error <= 3",))


def test_trajectory_and_final_hypervolume_by_hand(tmp_path: Path) -> None:
    stats = compute(one_run(tmp_path))
    (run,) = stats.runs
    assert run.trajectory.hypervolume == (36.0, 44.0)
    assert run.hypervolume == 44.0
    assert run.trajectory.best == {"error": (4.0, 2.0), "chars": (4.0, 2.0)}  # the infeasible (13, 1) never counts
    assert run.best == {"error": 2.0, "chars": 2.0}
    assert [s.evaluations for s in run.trajectory.spent] == [1, 5]
    assert run.to_target.evaluations == 5 and run.to_target.wall_s == 2.0
    assert run.feasible_pct == pytest.approx(60.0)


def test_hypervolume_is_the_archive_front_through_the_pareto_function(tmp_path: Path) -> None:
    stats = compute(one_run(tmp_path))
    with Archive.open(tmp_path / "a" / "archive") as archive:
        points = [archive.meta.point(c.metrics) for c in archive.front()]
    assert sorted(points) == [(2.0, 8.0), (4.0, 4.0), (8.0, 2.0)]
    assert stats.runs[0].hypervolume == hypervolume(points, stats.reference)


def test_spending_falls_back_to_the_candidates_without_run_counters(tmp_path: Path) -> None:
    stats = compute(one_run(tmp_path, counters=False, tokens=7))
    spent = stats.runs[0].trajectory.spent
    assert [s.evaluations for s in spent] == [1, 5]
    assert [s.tokens for s in spent] == [7, 35]
    assert all(s.wall_s >= 0 for s in spent)


def test_derived_reference_is_the_worst_feasible_value_plus_ten_percent_of_the_range(tmp_path: Path) -> None:
    a = build_run(tmp_path / "a", BATCHES)
    b = build_run(tmp_path / "b", [[(6, 12)], [(1, 3)]])
    stats = compute(Comparison("c", tmp_path, (Group("x", (a,)), Group("y", (b,)))))
    # feasible errors span 1..8, chars 2..12 (13 is infeasible, the crash has no point)
    assert stats.reference == pytest.approx((8 + 0.7, 12 + 1.0))
    assert stats.reference_derived
    assert derive_reference([]) is None
    assert derive_reference([(5.0, -2.0)]) == pytest.approx((5.5, -1.8))


def test_without_any_feasible_candidate_hypervolume_is_undefined_not_zero(tmp_path: Path) -> None:
    run = build_run(tmp_path / "a", [[(20, 4)], [None]])
    stats = compute(Comparison("c", tmp_path, (Group("g", (run,)),)))
    assert stats.reference is None and stats.runs[0].hypervolume is None
    assert "hypervolume" not in [m.key for m in stats.measures]
    assert stats.runs[0].best == {"error": None, "chars": None}


def test_rank_test_exact_values() -> None:
    assert rank_test([1, 2], [3, 4]) == (pytest.approx(1 / 3), "exact")
    assert rank_test([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])[0] == pytest.approx(2 / 252)
    assert rank_test([1, 1, 1], [1, 1, 1])[0] == 1.0
    p, _ = rank_test([1, 3], [2, 4])  # interleaved: U = 1 of 4, as far from the centre as U = 3
    assert p == pytest.approx(4 / 6)


def test_rank_test_falls_back_to_random_splits_for_large_groups() -> None:
    p, method = rank_test(list(range(10)), list(range(10, 20)))
    assert method.startswith("permutation") and p < 0.001


def test_verdicts_say_within_noise_when_n_cannot_show_a_difference(tmp_path: Path) -> None:
    runs = {g: [build_run(tmp_path / f"{g}{k}", [[(v + k, 4)]]) for k in range(n)]
            for g, v, n in (("good", 1, 2), ("bad", 9, 2))}
    stats = compute(Comparison("c", tmp_path, tuple(Group(g, tuple(r)) for g, r in runs.items())))
    error = next(v for v in stats.verdicts if v.measure.key == "best:error")
    assert error.better is None and not error.overlap
    assert error.text() == ("good vs bad on best error: within noise (Mann-Whitney p=0.33 exact, n=2 vs 2; "
                            "ranges do not overlap; p<0.05 is out of reach at this n)")


def test_verdicts_name_the_better_group_when_the_test_says_so(tmp_path: Path) -> None:
    runs = {g: [build_run(tmp_path / f"{g}{k}", [[(v + k / 10, 4)]]) for k in range(4)]
            for g, v in (("bad", 9), ("good", 1))}
    stats = compute(Comparison("c", tmp_path, tuple(Group(g, tuple(r)) for g, r in runs.items())))
    error = next(v for v in stats.verdicts if v.measure.key == "best:error")
    assert error.better == "good" and error.p_value == pytest.approx(2 / 70)
    assert error.text().startswith("bad vs good on best error: good better than bad (Mann-Whitney p=0.029")
    chars = next(v for v in stats.verdicts if v.measure.key == "best:chars")
    assert chars.better is None and "within noise" in chars.text()


def test_table_cells_show_median_and_range_and_missing_counts(tmp_path: Path) -> None:
    runs = [build_run(tmp_path / "a", [[(4, 4)]]), build_run(tmp_path / "b", [[(2, 8)]]),
            build_run(tmp_path / "c", [[(30, 8)]])]
    stats = compute(Comparison("c", tmp_path, (Group("g", tuple(runs)),), target=("error <= 3",)))
    headers, rows = table_cells(stats)
    (row,) = rows
    cell = dict(zip(headers, row))
    assert cell["n"] == "3"
    assert cell["best error ↓"] == "3 [2–4] (2/3)"  # the third run has no feasible candidate
    assert cell["evals to target"] == "1 (1/3)"
    hv = stats.groups[0].spread(next(m for m in stats.measures if m.key == "hypervolume"))
    assert cell["hypervolume ↑"] == spread_text(hv) and len(hv.values) == 3 and min(hv.values) == 0.0


def test_runs_of_different_tasks_or_objectives_are_refused(tmp_path: Path) -> None:
    a = build_run(tmp_path / "a", [[(4, 4)]])
    b = build_run(tmp_path / "b", [[(4, 4)]], task="adder")
    different = r"runs of different tasks cannot be compared: .*a \(toy\) and .*b \(adder\)"
    with pytest.raises(CompareError, match=different):
        Comparison.from_runs([a, b], tmp_path / "out")
    c = build_run(tmp_path / "c", [[(4, 4)]], objectives=(Objective("error", "min"),))
    with pytest.raises(CompareError, match="different objectives"):
        Comparison.from_runs([a, c], tmp_path / "out")


def test_existing_runs_are_grouped_by_what_differs_and_round_trip(tmp_path: Path) -> None:
    runs = [build_run(tmp_path / n, [[(4, 4)]], strategy=s)
            for n, s in (("h1", "hillclimb"), ("i1", "islands"), ("h2", "hillclimb"))]
    comparison = Comparison.from_runs(runs, tmp_path / "out", target=("error <= 1",))
    assert [(g.label, [r.name for r in g.runs]) for g in comparison.groups] == [
        ("hillclimb", ["h1", "h2"]), ("islands", ["i1"])]
    assert comparison.budget_kind == "evaluations" and comparison.budget == 1
    comparison.save()
    loaded = Comparison.load(tmp_path / "out")
    assert [[r.resolve() for r in g.runs] for g in loaded.groups] == [[r.resolve() for r in g.runs]
                                                                      for g in comparison.groups]
    assert loaded.target == ("error <= 1",)


def test_bad_run_sets(tmp_path: Path) -> None:
    a = build_run(tmp_path / "a", [[(4, 4)]])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CompareError, match="is not an evolve run"):
        Comparison.from_runs([a, tmp_path / "empty"], tmp_path / "out")
    with pytest.raises(CompareError, match="the same run is given twice"):
        Comparison.from_runs([a, a], tmp_path / "out")
    with pytest.raises(CompareError, match="is not a comparison"):
        Comparison.load(tmp_path / "empty")
    missing = Comparison("c", tmp_path, (Group("g", (a, tmp_path / "gone")),), source="c.yaml")
    with pytest.raises(CompareError, match=r"run .*gone does not exist yet \(finish it with `evolve compare c.yaml`\)"):
        compute(missing)
    assert math.isfinite(compute(Comparison("c", tmp_path, (Group("g", (a,)),))).runs[0].hypervolume)
