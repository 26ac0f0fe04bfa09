"""Plots of real toy runs: valid, non-trivial PNGs that draw every group, and sane empty cases."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from evolve.compare import Comparison, Group
from evolve.compare.stats import compute
from evolve.config import parse_config
from evolve.report.plots import comparison_figures, run_figures, save_figures
from evolve.run import EvolutionRun

ROOT = Path(__file__).resolve().parents[2]
GROUP_COLOURS = [(0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)]  # matplotlib's C0 and C1


def toy_run(output_dir: Path, name: str, *, strategy: str = "hillclimb", seed: int = 1, evaluations: int = 6,
            **task: Any) -> Path:
    config = parse_config({
        "run": {"name": name, "output_dir": str(output_dir), "seed": seed},
        "task": {"name": "toy", "constraints": ["error <= 12"], **task},
        "seeds": [str(ROOT / "seeds/toy/start.py")],
        "strategy": {"name": strategy},
        "mutators": [{"name": "numeric"}],
        "budget": {"max_evaluations": evaluations},
        "parallel": {"evaluations": 2},
    })
    EvolutionRun(config).execute()
    return config.run_dir


def image(png: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(png))
    assert picture.format == "PNG"
    return picture.convert("RGB")


def colours(picture: Image.Image) -> set[tuple[int, int, int]]:
    return {rgb for _, rgb in picture.getcolors(maxcolors=10_000_000)}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("plots")
    return {"hill0": toy_run(out, "hill0", seed=1), "hill1": toy_run(out, "hill1", seed=2),
            "isl0": toy_run(out, "isl0", strategy="islands", seed=1),
            "single": toy_run(out, "single", objectives=["error"]),
            "hopeless": toy_run(out, "hopeless", evaluations=3, constraints=["error <= 0.0001"])}


def test_comparison_figures_draw_each_group(runs: dict[str, Path]) -> None:
    comparison = Comparison("c", runs["hill0"].parent, (Group("hill", (runs["hill0"], runs["hill1"])),
                                                        Group("isl", (runs["isl0"],))))
    figures = comparison_figures(compute(comparison))
    assert set(figures) == {"best_so_far", "hypervolume", "fronts"}
    for name, png in figures.items():
        picture = image(png)
        assert picture.width >= 400 and picture.height >= 300
        found = colours(picture)
        assert len(found) > 50, name
        assert all(c in found for c in GROUP_COLOURS), name  # both groups' lines are drawn


def test_run_figures(runs: dict[str, Path], tmp_path: Path) -> None:
    figures = run_figures(compute(Comparison.single(runs["hill0"])))
    assert set(figures) == {"progress", "constraints", "candidates"}  # the toy's seed is infeasible
    for png in figures.values():
        assert len(colours(image(png))) > 50
    paths = save_figures(figures, tmp_path / "figs")
    assert sorted(p.name for p in paths) == ["candidates.png", "constraints.png", "progress.png"]
    assert all(p.read_bytes() == figures[p.stem] for p in paths)


def test_a_single_objective_has_no_objective_space_plot(runs: dict[str, Path]) -> None:
    stats = compute(Comparison.single(runs["single"]))
    assert list(run_figures(stats)) == ["progress", "constraints"]
    assert len(colours(image(comparison_figures(stats)["fronts"]))) > 20


def test_without_feasible_candidates_the_plots_say_so(runs: dict[str, Path]) -> None:
    stats = compute(Comparison.single(runs["hopeless"]))
    assert stats.reference is None
    figures = comparison_figures(stats)
    for name in ("hypervolume", "fronts"):
        picture = image(figures[name])
        assert picture.width >= 400 and len(colours(picture)) > 5  # axes and the message
    assert len(colours(image(run_figures(stats)["progress"]))) > 50  # every candidate is still plotted


def test_constraint_panels_go_logarithmic_only_over_wide_ranges():
    from matplotlib.figure import Figure

    from evolve.report.plots import _wide_range_axis

    scales = []
    for values in ([1.0, 2.0, 0.5], [0.5, 3000.0], [0.0, 1.3, 3000.0]):
        ax = Figure().add_subplot()
        _wide_range_axis(ax, values)
        scales.append((ax.get_yscale(), ax.get_ylim()[0] if ax.get_yscale() == "symlog" else None))
    assert scales == [("linear", None), ("log", None), ("symlog", 0.0)]
