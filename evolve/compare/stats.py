"""The numbers of a comparison: per-run trajectories, per-group spreads, honest verdicts.

Everything is recomputed from the archives. Hypervolume is :func:`evolve.pareto.hypervolume`
over the same points the archive puts on its front (feasible, evaluated, every objective present),
against one reference point shared by all runs: the comparison's, or one derived from the runs
(the worst feasible value of each objective plus 10% of its range) and reported as such.

Repeats are few (often 2-5), so groups are summarised by n, median and range (min-max), never by a
mean and a standard error, and two groups are called different only when a two-sided permutation
test of the Mann-Whitney U statistic says p < 0.05 (exact over all splits when there are at most
20,000, else 10,000 random ones). With 2 vs 2 runs no split is rarer than 1 in 3, and the verdict
says so instead of pretending.
"""

from __future__ import annotations

import functools
import math
import random
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from evolve.archive import Archive, Candidate, Checkpoint, RunMeta
from evolve.archive.archive import eligible
from evolve.compare.comparison import CompareError, Comparison, check_comparable
from evolve.pareto import hypervolume, non_dominated
from evolve.tasks import Constraint, Objective, TaskError
from evolve.usage import Usage

ALPHA = 0.05
EXACT_SPLITS = 20_000
RANDOM_SPLITS = 10_000
REFERENCE_MARGIN = 0.1


@dataclass(frozen=True)
class Spent:
    """What a run had spent at some point: the four budget kinds."""

    evaluations: float = 0
    tokens: float = 0
    cost_usd: float = 0.0
    wall_s: float = 0.0

    def of(self, kind: str) -> float:
        return float(getattr(self, kind))


@dataclass(frozen=True)
class RunHistory:
    """A run as the statistics read it: candidates by id, the front, spending after each batch."""

    path: Path
    meta: RunMeta
    candidates: tuple[Candidate, ...]
    front: tuple[Candidate, ...]
    marks: tuple[tuple[int, Spent], ...]  # (candidates archived, spent) after each batch

    @property
    def name(self) -> str:
        return self.meta.run

    @classmethod
    def load(cls, run_dir: Path) -> "RunHistory":
        if not (run_dir / "archive").is_dir():
            raise CompareError(f"{run_dir} is not an evolve run (no archive/ inside)")
        with Archive.open(run_dir / "archive") as archive:
            candidates = tuple(archive.candidates())
            front = tuple(archive.front())
            checkpoints = archive.checkpoints()
            meta = archive.meta
        return cls(run_dir, meta, candidates, front, _marks(checkpoints, candidates, meta))

    def eligible_points(self) -> list[tuple[float, ...]]:
        """Objective vectors (minimisation space) of every candidate that may be on the front."""
        return _points(self.meta, [c for c in self.candidates if eligible(c, self.meta)])


def _marks(checkpoints: list[Checkpoint], candidates: Sequence[Candidate],
           meta: RunMeta) -> tuple[tuple[int, Spent], ...]:
    """Spending after each batch: the run loop's own counters when it saved them (they include
    LLM tokens of rejected mutations), else sums over the archived candidates."""
    marks = []
    for cp in checkpoints:
        if cp.next_id == 0:
            continue  # the archive's creation
        counters = cp.state.get("counters")
        if isinstance(counters, dict) and "evaluations" in counters:
            usage = Usage.from_dict(counters)
            spent = Spent(counters["evaluations"], usage.tokens, usage.cost_usd, counters.get("wall_s", 0.0))
        else:
            done = candidates[:cp.next_id]
            usage = sum((c.usage for c in done), Usage())
            spent = Spent(cp.next_id, usage.tokens, usage.cost_usd,
                          max(0.0, done[-1].created_at - (meta.created_at or done[0].created_at)))
        marks.append((cp.next_id, spent))
    return tuple(marks)


@dataclass(frozen=True)
class Trajectory:
    """Best-so-far values and hypervolume after each batch of a run."""

    spent: tuple[Spent, ...]
    best: dict[str, tuple[float, ...]]  # objective -> best feasible value so far (nan before any)
    hypervolume: tuple[float, ...]

    def x(self, kind: str) -> list[float]:
        return [s.of(kind) for s in self.spent]


def trajectory(history: RunHistory, reference: Sequence[float] | None) -> Trajectory:
    objectives = history.meta.objectives
    pool: list[tuple[float, ...]] = []  # the non-dominated eligible points so far
    best = dict.fromkeys((o.name for o in objectives), math.nan)
    bests: dict[str, list[float]] = {o.name: [] for o in objectives}
    volumes, done = [], 0
    for next_id, _ in history.marks:
        for c in history.candidates[done:next_id]:
            if not eligible(c, history.meta):
                continue
            grown = pool + _points(history.meta, [c])
            pool = [grown[i] for i in non_dominated(grown)]
            for o in objectives:
                value = float(c.metrics[o.name])
                if math.isnan(best[o.name]) or o.oriented(value) < o.oriented(best[o.name]):
                    best[o.name] = value
        done = next_id
        for o in objectives:
            bests[o.name].append(best[o.name])
        volumes.append(hypervolume(pool, reference) if reference is not None else math.nan)
    return Trajectory(tuple(s for _, s in history.marks), {k: tuple(v) for k, v in bests.items()},
                      tuple(volumes))


@dataclass(frozen=True)
class RunStats:
    group: str
    history: RunHistory
    trajectory: Trajectory
    hypervolume: float | None  # of the archive's final front; None without a reference point
    best: dict[str, float | None]  # best feasible value per objective
    to_target: Spent | None  # spent when a candidate first met the target; None if never
    final: Spent
    feasible_pct: float

    @property
    def name(self) -> str:
        return self.history.name


def run_stats(group: str, history: RunHistory, reference: Sequence[float] | None,
              target: Sequence[Constraint]) -> RunStats:
    meta = history.meta
    best: dict[str, float | None] = {}
    for o in meta.objectives:
        values = [c.metrics[o.name] for c in history.candidates if eligible(c, meta)]
        best[o.name] = min(values, key=o.oriented) if values else None
    volume = None
    if reference is not None:
        volume = hypervolume(_points(meta, history.front), reference)
    n = len(history.candidates)
    feasible = sum(1 for c in history.candidates if c.feasible)
    final = history.marks[-1][1] if history.marks else Spent()
    return RunStats(group, history, trajectory(history, reference), volume, best,
                    _spent_to_target(history, target), final, 100.0 * feasible / n if n else 0.0)


def _spent_to_target(history: RunHistory, target: Sequence[Constraint]) -> Spent | None:
    """Spending at the end of the batch that produced the first candidate meeting the target."""
    if not target:
        return None
    done = 0
    for next_id, spent in history.marks:
        for c in history.candidates[done:next_id]:
            if c.result.ok and c.feasible and all(t.satisfied(c.metrics) for t in target):
                return spent
        done = next_id
    return None


# --- summaries ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Measure:
    """A per-run number the table summarises; ``better`` is "high", "low", or None (described,
    never tested)."""

    key: str
    label: str
    better: str | None
    value: Callable[[RunStats], float | None]

    def oriented(self, run: RunStats) -> float:
        """The run's value turned into "lower is better" (missing: worst), for ranking."""
        v = self.value(run)
        if v is None or math.isnan(v):
            return math.inf
        return -v if self.better == "high" else v


@dataclass(frozen=True)
class Spread:
    """n runs, of which ``values`` have a value: median and range of those."""

    n: int
    values: tuple[float, ...]

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    @property
    def low(self) -> float | None:
        return min(self.values) if self.values else None

    @property
    def high(self) -> float | None:
        return max(self.values) if self.values else None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "with_value": len(self.values), "median": self.median,
                "min": self.low, "max": self.high, "values": list(self.values)}


@dataclass(frozen=True)
class GroupStats:
    label: str
    runs: tuple[RunStats, ...]

    def spread(self, measure: Measure) -> Spread:
        values = [measure.value(r) for r in self.runs]
        return Spread(len(self.runs), tuple(v for v in values if v is not None and not math.isnan(v)))


@dataclass(frozen=True)
class Verdict:
    """Two groups compared on one measure."""

    measure: Measure
    a: GroupStats
    b: GroupStats
    p_value: float
    method: str
    overlap: bool
    better: str | None  # the better group's label when the difference is beyond noise

    @property
    def smallest_p(self) -> float:
        """The smallest p an exact test can give at these group sizes."""
        return min(1.0, 2 / math.comb(len(self.a.runs) + len(self.b.runs), len(self.a.runs)))

    def text(self) -> str:
        n = f"n={len(self.a.runs)} vs {len(self.b.runs)}"
        ranges = "ranges overlap" if self.overlap else "ranges do not overlap"
        figures = f"Mann-Whitney p={self.p_value:.2g} {self.method}, {n}; {ranges}"
        head = f"{self.a.label} vs {self.b.label} on {self.measure.label}: "
        if self.better is not None:
            worse = self.b.label if self.better == self.a.label else self.a.label
            return f"{head}{self.better} better than {worse} ({figures})"
        if self.smallest_p >= ALPHA:
            figures += f"; p<{ALPHA:g} is out of reach at this n"
        return f"{head}within noise ({figures})"


def verdict(measure: Measure, a: GroupStats, b: GroupStats) -> Verdict:
    xs = [measure.oriented(r) for r in a.runs]
    ys = [measure.oriented(r) for r in b.runs]
    p, method = rank_test(xs, ys)
    overlap = max(min(xs), min(ys)) <= min(max(xs), max(ys))
    better = None
    if p < ALPHA:
        better = a.label if statistics.median(xs) < statistics.median(ys) else b.label
    return Verdict(measure, a, b, p, method, overlap, better)


def rank_test(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, str]:
    """Two-sided permutation p-value of the Mann-Whitney U statistic (ties count one half)."""
    pooled, n = list(xs) + list(ys), len(xs)
    everyone = range(len(pooled))

    def u(chosen: Iterable[int]) -> float:
        inside = set(chosen)
        return sum(1.0 if pooled[i] > pooled[j] else 0.5 if pooled[i] == pooled[j] else 0.0
                   for i in inside for j in everyone if j not in inside)

    center = n * len(ys) / 2
    observed = abs(u(range(n)) - center) - 1e-9
    total = math.comb(len(pooled), n)
    if total <= EXACT_SPLITS:
        extreme = sum(1 for split in combinations(everyone, n) if abs(u(split) - center) >= observed)
        return extreme / total, "exact"
    rng = random.Random(0)
    extreme = sum(1 for _ in range(RANDOM_SPLITS)
                  if abs(u(rng.sample(everyone, n)) - center) >= observed)
    return (extreme + 1) / (RANDOM_SPLITS + 1), f"permutation ({RANDOM_SPLITS} random splits)"


# --- the whole comparison -------------------------------------------------------------------------
@dataclass(frozen=True)
class ComparisonStats:
    comparison: Comparison
    task: str
    objectives: tuple[Objective, ...]
    reference: tuple[float, ...] | None  # minimisation space
    reference_derived: bool
    target: tuple[Constraint, ...]
    groups: tuple[GroupStats, ...]
    measures: tuple[Measure, ...]
    verdicts: tuple[Verdict, ...]

    @property
    def runs(self) -> list[RunStats]:
        return [r for g in self.groups for r in g.runs]

    def reference_natural(self) -> dict[str, float] | None:
        if self.reference is None:
            return None
        return {o.name: o.oriented(v) for o, v in zip(self.objectives, self.reference)}

    def to_dict(self) -> dict[str, Any]:
        c = self.comparison
        return _finite_dict({
            "name": c.name, "task": self.task, "budget_kind": c.budget_kind, "budget": c.budget,
            "objectives": [{"name": o.name, "goal": o.goal, "unit": o.unit} for o in self.objectives],
            "reference": self.reference_natural(), "reference_derived": self.reference_derived,
            "target": [str(t) for t in self.target],
            "groups": [{"label": g.label,
                        "measures": {m.key: g.spread(m).to_dict() for m in self.measures},
                        "runs": [{"name": r.name, "path": str(r.history.path),
                                  **{m.key: m.value(r) for m in self.measures}} for r in g.runs]}
                       for g in self.groups],
            "verdicts": [{"measure": v.measure.key, "a": v.a.label, "b": v.b.label, "p": v.p_value,
                          "method": v.method, "ranges_overlap": v.overlap, "better": v.better,
                          "text": v.text()} for v in self.verdicts],
        })


def compute(comparison: Comparison) -> ComparisonStats:
    """Load every run of ``comparison`` and compute trajectories, spreads and verdicts."""
    histories = {}
    for group in comparison.groups:
        for path in group.runs:
            if not (path / "archive").is_dir():
                raise CompareError(f"comparison {comparison.name!r}: run {path} does not exist"
                                   + (f" yet (finish it with `evolve compare {comparison.source}`)"
                                      if comparison.source else ""))
        histories[group.label] = [RunHistory.load(path) for path in group.runs]
    everyone = [h for hs in histories.values() for h in hs]
    check_comparable([(h.path, h.meta) for h in everyone])
    objectives = everyone[0].meta.objectives
    try:
        target = tuple(Constraint.parse(t) for t in comparison.target)
    except TaskError as exc:
        raise CompareError(f"comparison {comparison.name!r}: target: {exc}") from None
    reference, derived = _reference(comparison, objectives, everyone)
    groups = tuple(GroupStats(label, tuple(run_stats(label, h, reference, target) for h in hs))
                   for label, hs in histories.items())
    runs = [r for g in groups for r in g.runs]
    measures = tuple(_measures(comparison.budget_kind, objectives, reference is not None, bool(target),
                               runs))
    tested = [m for m in measures if m.better is not None]
    verdicts = tuple(verdict(m, a, b) for a, b in combinations(groups, 2) for m in tested)
    return ComparisonStats(comparison, everyone[0].meta.task, objectives, reference, derived, target,
                           groups, measures, verdicts)


def _reference(comparison: Comparison, objectives: tuple[Objective, ...],
               histories: list[RunHistory]) -> tuple[tuple[float, ...] | None, bool]:
    if comparison.reference is not None:
        names = [o.name for o in objectives]
        if sorted(comparison.reference) != sorted(names):
            raise CompareError(f"reference point: give one value per objective ({', '.join(names)}; "
                               f"got {', '.join(comparison.reference) or 'none'})")
        return tuple(o.oriented(float(comparison.reference[o.name])) for o in objectives), False
    return derive_reference([p for h in histories for p in h.eligible_points()]), True


def derive_reference(points: Sequence[Sequence[float]]) -> tuple[float, ...] | None:
    """Worst value of each coordinate plus a margin (10% of the range, or of the value when all
    points agree), so the worst points still add volume. None without points."""
    if not points:
        return None
    reference = []
    for k in range(len(points[0])):
        worst, best = max(p[k] for p in points), min(p[k] for p in points)
        margin = REFERENCE_MARGIN * (worst - best) or REFERENCE_MARGIN * abs(worst) or 1.0
        reference.append(worst + margin)
    return tuple(reference)


def _measures(kind: str, objectives: tuple[Objective, ...], has_reference: bool, has_target: bool,
              runs: list[RunStats]) -> list[Measure]:
    """What the table shows: hypervolume, best per objective and budget to target are tested
    between groups; the rest describe the runs."""
    found: list[Measure] = []
    if has_reference:
        found.append(Measure("hypervolume", "hypervolume", "high", lambda r: r.hypervolume))
    for o in objectives:
        found.append(Measure(f"best:{o.name}", f"best {o.name}", "high" if o.goal == "max" else "low",
                             functools.partial(_best, name=o.name)))
    if has_target:
        found.append(Measure("to_target", f"{SHORT_BUDGET_LABELS[kind]} to target", "low",
                             lambda r: r.to_target.of(kind) if r.to_target else None))
        for other in ("evaluations", "tokens", "cost_usd"):  # what else reaching it took, if spent
            if other != kind and any(r.final.of(other) for r in runs):
                found.append(Measure(f"to_target:{other}", f"{SHORT_BUDGET_LABELS[other]} to target", None,
                                     functools.partial(_to_target, kind=other)))
    found.append(Measure("feasible_pct", "feasible %", None, lambda r: r.feasible_pct))
    if len({r.final.evaluations for r in runs}) > 1:
        found.append(Measure("evaluations", "evals", None, lambda r: r.final.evaluations))
    if any(r.final.tokens for r in runs):
        found.append(Measure("tokens", "tokens", None, lambda r: r.final.tokens))
    if any(r.final.cost_usd for r in runs):
        found.append(Measure("cost_usd", "cost $", None, lambda r: r.final.cost_usd))
    found.append(Measure("wall_s", "wall s", None, lambda r: r.final.wall_s))
    return found


BUDGET_LABELS = {"evaluations": "evaluations", "tokens": "tokens", "cost_usd": "cost ($)",
                 "wall_s": "wall time (s)"}
SHORT_BUDGET_LABELS = {"evaluations": "evals", "tokens": "tokens", "cost_usd": "cost $", "wall_s": "wall s"}


def _finite(value: Any) -> Any:
    """Strict JSON: non-finite floats become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _points(meta: RunMeta, candidates: Sequence[Candidate]) -> list[tuple[float, ...]]:
    """The objective vectors of ``candidates`` that have one (all of them, for eligible ones)."""
    return [p for c in candidates if (p := meta.point(c.metrics)) is not None]


def _best(r: RunStats, name: str) -> float | None:
    return r.best[name]


def _to_target(r: RunStats, kind: str) -> float | None:
    return r.to_target.of(kind) if r.to_target else None


def _finite_dict(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = _finite(data)
    return out
