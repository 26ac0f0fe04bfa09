"""Plots of runs and comparisons as PNG bytes (matplotlib, Agg, no pyplot global state).

Comparison: best-so-far per objective and hypervolume against the budget (median line, min-max
band over repeats), and the final Pareto fronts overlaid. One run: the same trajectories with every
evaluated candidate behind them, and the candidates in objective space with the front.
Each function returns ``{name: png_bytes}`` so callers can write files or embed them in HTML.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from evolve.compare.stats import BUDGET_LABELS, ComparisonStats, RunStats
from evolve.tasks import Objective

GRID_POINTS = 300
MARKERS = "osD^vP*Xh<>"
DPI = 100


def comparison_figures(stats: ComparisonStats) -> dict[str, bytes]:
    return {"best_so_far": best_so_far(stats), "hypervolume": hypervolume_vs_budget(stats),
            "fronts": final_fronts(stats)}


def run_figures(stats: ComparisonStats) -> dict[str, bytes]:
    """Figures for a single run (a comparison of one group of one run)."""
    figures = {"progress": run_progress(stats)}
    if _constraints_moved(stats):
        figures["constraints"] = constraint_progress(stats)
    if len(stats.objectives) >= 2:
        figures["candidates"] = run_candidates(stats)
    return figures


def save_figures(figures: dict[str, bytes], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, png in figures.items():
        path = directory / f"{name}.png"
        path.write_bytes(png)
        paths.append(path)
    return paths


# --- comparison ---------------------------------------------------------------------------------
def best_so_far(stats: ComparisonStats) -> bytes:
    fig, axes = _figure(len(stats.objectives))
    kind = stats.comparison.budget_kind
    for ax, o in zip(axes, stats.objectives):
        for color, group in zip(_colors(), stats.groups):
            _band(ax, [(r.trajectory.x(kind), r.trajectory.best[o.name]) for r in group.runs],
                  color, f"{group.label} (n={len(group.runs)})")
        _objective_axis(ax, o, [v for r in stats.runs for v in r.trajectory.best[o.name]])
        ax.set_xlabel(BUDGET_LABELS[kind])
        ax.set_title(f"best feasible {o.name} so far")
        ax.legend(fontsize=8)
    fig.suptitle(f"{stats.comparison.title}: median and min–max over repeats")
    return _png(fig)


def hypervolume_vs_budget(stats: ComparisonStats) -> bytes:
    fig, (ax,) = _figure(1)
    kind = stats.comparison.budget_kind
    if stats.reference is None:
        _empty(ax, "hypervolume undefined: no run has a feasible candidate")
    else:
        for color, group in zip(_colors(), stats.groups):
            _band(ax, [(r.trajectory.x(kind), r.trajectory.hypervolume) for r in group.runs],
                  color, f"{group.label} (n={len(group.runs)})")
        ax.legend(fontsize=8)
        ax.set_ylabel("hypervolume")
    ax.set_xlabel(BUDGET_LABELS[kind])
    ax.set_title(f"{stats.comparison.title}: hypervolume\nmedian and min–max over repeats")
    return _png(fig)


def final_fronts(stats: ComparisonStats) -> bytes:
    fig, (ax,) = _figure(1)
    objectives = stats.objectives
    if not any(r.history.front for r in stats.runs):
        _empty(ax, "no run has a feasible candidate")
    elif len(objectives) == 1:
        _best_strip(ax, stats)
    else:
        x, y = objectives[0], objectives[1]
        for color, group in zip(_colors(), stats.groups):
            for k, run in enumerate(group.runs):
                points = sorted((c.metrics[x.name], c.metrics[y.name]) for c in run.history.front)
                if not points:
                    continue
                xs, ys = zip(*points)
                ax.plot(xs, ys, color=color, marker=MARKERS[k % len(MARKERS)],
                        drawstyle="steps-post" if x.goal == "min" else "steps-pre",
                        label=group.label if k == 0 else None)
        ax.set_xlabel(_axis_label(x))
        ax.set_ylabel(_axis_label(y))
        ax.legend(fontsize=8)
        more = f" (first two of {len(objectives)} objectives)" if len(objectives) > 2 else ""
        ax.set_title(f"final Pareto fronts, one line per run{more}")
    return _png(fig)


def _best_strip(ax: Axes, stats: ComparisonStats) -> None:
    o = stats.objectives[0]
    for i, (color, group) in enumerate(zip(_colors(), stats.groups)):
        values = [v for r in group.runs if (v := r.best[o.name]) is not None]
        ax.scatter([i] * len(values), values, color=color, s=40, zorder=3)
    ax.set_xticks(range(len(stats.groups)), [g.label for g in stats.groups])
    ax.set_ylabel(_axis_label(o))
    ax.set_title(f"final best {o.name}, one point per run")


# --- one run ------------------------------------------------------------------------------------
def run_progress(stats: ComparisonStats) -> bytes:
    (run,) = stats.runs
    panels = len(stats.objectives) + (stats.reference is not None)
    fig, axes = _figure(panels)
    kind = stats.comparison.budget_kind
    x = run.trajectory.x(kind)
    meta = run.history.meta
    per_candidate = _candidate_x(run, kind)
    for ax, o in zip(axes, stats.objectives):
        ok = [(per_candidate[c.id], c.metrics[o.name], c.feasible) for c in run.history.candidates
              if c.result.ok and meta.point(c.metrics) is not None]
        for feasible, color, marker, label in ((False, "0.6", "x", "infeasible"), (True, "tab:blue", "o", "feasible")):
            chosen = [(cx, cv) for cx, cv, f in ok if f == feasible]
            if chosen:
                xs, ys = zip(*chosen)
                ax.scatter(xs, ys, s=12, alpha=0.6, color=color, marker=marker, label=label)
        ax.plot(x, run.trajectory.best[o.name], color="tab:red", drawstyle="steps-post",
                label="best feasible so far")
        _objective_axis(ax, o, [v for _, v, _ in ok])
        ax.set_xlabel(BUDGET_LABELS[kind])
        ax.set_title(o.name)
        ax.legend(fontsize=8)
    if stats.reference is not None:
        ax = axes[len(stats.objectives)]
        ax.plot(x, run.trajectory.hypervolume, color="tab:green", drawstyle="steps-post")
        ax.set_xlabel(BUDGET_LABELS[kind])
        ax.set_title("hypervolume of the front")
    fig.suptitle(f"run {run.name}")
    return _png(fig)


def run_candidates(stats: ComparisonStats) -> bytes:
    (run,) = stats.runs
    fig, (ax,) = _figure(1)
    x, y = stats.objectives[0], stats.objectives[1]
    cands = [c for c in run.history.candidates
             if c.result.ok and x.name in c.metrics and y.name in c.metrics]
    infeasible = [(c.metrics[x.name], c.metrics[y.name]) for c in cands if not c.feasible]
    feasible = [(c.metrics[x.name], c.metrics[y.name]) for c in cands if c.feasible]
    if infeasible:
        ax.scatter(*_columns(infeasible), color="0.6", marker="x", s=14, label="infeasible")
    if feasible:
        ax.scatter(*_columns(feasible), color="tab:blue", s=14, alpha=0.7, label="feasible")
    front = sorted((c.metrics[x.name], c.metrics[y.name]) for c in run.history.front)
    if front:
        ax.plot(*zip(*front), color="tab:red", marker="o", label="Pareto front",
                drawstyle="steps-post" if x.goal == "min" else "steps-pre")
    if not cands:
        _empty(ax, "no candidate was evaluated successfully")
    else:
        ax.legend(fontsize=8)
    ax.set_xlabel(_axis_label(x))
    ax.set_ylabel(_axis_label(y))
    ax.set_title(f"run {run.name}: every evaluated candidate")
    return _png(fig)


def constraint_progress(stats: ComparisonStats) -> bytes:
    """Each constraint metric per candidate with its threshold and best so far, and the least
    violation so far: the progress of a run whose objectives stay flat (a repair) or that has
    nothing feasible yet."""
    (run,) = stats.runs
    meta = run.history.meta
    kind = stats.comparison.budget_kind
    per_candidate = _candidate_x(run, kind)
    evaluated = [c for c in run.history.candidates if c.result.ok and c.id in per_candidate]
    metrics = [k for k in dict.fromkeys(k.metric for k in meta.constraints)
               if any(k in c.metrics for c in evaluated)]
    fig, axes = _figure(len(metrics) + 1)
    for ax, name in zip(axes, metrics):
        points = [(per_candidate[c.id], c.metrics[name]) for c in evaluated if name in c.metrics]
        ax.scatter(*_columns(points), s=12, alpha=0.6, color="tab:blue", label="candidate")
        rules = [k for k in meta.constraints if k.metric == name]
        high = any(k.op == ">=" for k in rules)
        best = np.maximum.accumulate if high else np.minimum.accumulate
        xs, ys = zip(*points)
        ax.plot(xs, best(np.asarray(ys, float)), color="tab:red", drawstyle="steps-post",
                label="best so far")
        for k in rules:
            ax.axhline(k.value, color="tab:green", linestyle="--", label=f"{k.op} {k.value:g}")
        _wide_range_axis(ax, [*ys, *(k.value for k in rules)])
        ax.set_title(name)
        ax.set_xlabel(BUDGET_LABELS[kind])
        ax.legend(fontsize=8)
    ax = axes[len(metrics)]
    violations = [(per_candidate[c.id], c.violation) for c in evaluated if math.isfinite(c.violation)]
    if violations:
        xs, ys = zip(*violations)
        ax.scatter(xs, ys, s=12, alpha=0.6, color="tab:orange", label="candidate")
        ax.plot(xs, np.minimum.accumulate(np.asarray(ys, float)), color="tab:red",
                drawstyle="steps-post", label="least so far")
        _wide_range_axis(ax, ys)
        ax.legend(fontsize=8)
    else:
        _empty(ax, "no candidate was evaluated successfully")
    ax.set_title("constraint violation (0 = feasible)")
    ax.set_xlabel(BUDGET_LABELS[kind])
    fig.suptitle(f"run {run.name}: constraints")
    return _png(fig)


def _constraints_moved(stats: ComparisonStats) -> bool:
    """Worth a figure: the run has constraints and some evaluated candidate violated one."""
    (run,) = stats.runs
    return bool(run.history.meta.constraints) and any(
        c.result.ok and not c.feasible for c in run.history.candidates)


def _candidate_x(run: RunStats, kind: str) -> dict[int, float]:
    """Where each candidate sits on the budget axis: the spending of the batch that produced it."""
    where, done = {}, 0
    for next_id, spent in run.history.marks:
        for c in run.history.candidates[done:next_id]:
            where[c.id] = spent.of(kind)
        done = next_id
    return where


# --- helpers ------------------------------------------------------------------------------------
def _figure(panels: int) -> tuple[Figure, list[Axes]]:
    cols = min(panels, 3)
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(5.2 * cols, 4.0 * rows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(panels)]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _columns(points: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """x values and y values of (x, y) points, for ``scatter``."""
    return [p[0] for p in points], [p[1] for p in points]


def _colors() -> list[str]:
    return [f"C{i % 10}" for i in range(100)]


def _band(ax: Axes, runs: Sequence[tuple[Sequence[float], Sequence[float]]], color: str,
          label: str) -> None:
    """Median line and min-max band of step functions sampled on a common grid; a run counts
    from its first value on (before it, e.g. before any feasible candidate, it has none)."""
    arrays = [(np.asarray(x, float), np.asarray(y, float)) for x, y in runs if len(x)]
    if not arrays:
        return
    end = max(x[-1] for x, _ in arrays)
    grid = np.linspace(0.0, end, GRID_POINTS) if end > 0 else np.zeros(1)
    sampled = np.vstack([_step_at(x, y, grid) for x, y in arrays])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no run has a value yet
        median = np.nanmedian(sampled, axis=0)
        low, high = np.nanmin(sampled, axis=0), np.nanmax(sampled, axis=0)
    ax.plot(grid, median, color=color, label=label)
    if len(runs) > 1:
        ax.fill_between(grid, low, high, color=color, alpha=0.2, linewidth=0)


def _step_at(x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The step function through (x, y) (value held until the next x) at ``grid``; nan before x[0]."""
    index = np.searchsorted(x, grid, side="right") - 1
    return np.where(index >= 0, y[np.clip(index, 0, None)], np.nan)


def _objective_axis(ax: Axes, o: Objective, values: Sequence[float]) -> None:
    ax.set_ylabel(_axis_label(o))
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if finite and min(finite) > 0 and max(finite) / min(finite) > 100:
        ax.set_yscale("log")


def _wide_range_axis(ax: Axes, values: Sequence[float]) -> None:
    """A logarithmic axis (linear around zero) when values span more than two decades, so a few
    wild candidates do not flatten the progress of the others."""
    finite = [v for v in values if math.isfinite(v)]
    positive = [abs(v) for v in finite if v != 0]
    if not positive or max(positive) / min(positive) <= 100:
        return
    if min(finite) > 0:
        ax.set_yscale("log")
    else:
        ax.set_yscale("symlog", linthresh=min(positive))
        if min(finite) >= 0:
            ax.set_ylim(bottom=0)


def _axis_label(o: Objective) -> str:
    arrow = "lower is better" if o.goal == "min" else "higher is better"
    return f"{o.name}" + (f" ({o.unit})" if o.unit else "") + f", {arrow}"


def _empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
