"""Should evolve's hand-written Pareto and rank-test code give way to moocore / scipy.stats?

For each size, the same inputs go to both implementations side by side: the answers must agree
(exactly for fronts, to 1e-9 for volumes and p-values) and the medians of repeated timings are
printed with their ratio (library / ours; < 1 means the library is faster). Sizes are ours: an
archive of 50-1,000 candidates with 2-3 objectives, comparisons of 3-10 runs per group.

    python bench/pareto_stats_libs.py [--repeats 7]

Needs ``moocore`` and ``scipy`` (not dependencies of evolve; pip install them by name).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from evolve.compare.stats import rank_test
from evolve.pareto import Point, hypervolume, non_dominated_sort

# --- the pure-Python code evolve used before switching to moocore (the baseline measured here) ---
def py_dominates(a: Point, b: Point) -> bool:
    """True when ``a`` is no worse than ``b`` in every coordinate and better in at least one."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def py_non_dominated_sort(points: Sequence[Point]) -> list[list[int]]:
    """Partition the indices into fronts: front 0 is non-dominated, front k is non-dominated once
    fronts 0..k-1 are removed (Deb's fast non-dominated sort, O(M N^2))."""
    n = len(points)
    dominated_by = [[] for _ in range(n)]  # i -> indices i dominates
    count = [0] * n  # how many points dominate i
    for i in range(n):
        for j in range(i + 1, n):
            if py_dominates(points[i], points[j]):
                dominated_by[i].append(j)
                count[j] += 1
            elif py_dominates(points[j], points[i]):
                dominated_by[j].append(i)
                count[i] += 1
    fronts: list[list[int]] = []
    current = [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append(current)
        following = []
        for i in current:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    following.append(j)
        current = sorted(following)
    return fronts


def py_hypervolume(points: Sequence[Point], reference: Point) -> float:
    """Volume dominated by ``points`` and bounded by ``reference`` (exact, by slicing).

    Points that do not strictly dominate the reference in every coordinate add nothing. Intended for
    1-3 objectives: the cost is O(n log n) in 2-D and O(n^2 log n) in 3-D.
    """
    inside = [tuple(p) for p in points if all(x < r for x, r in zip(p, reference))]
    if not inside:
        return 0.0
    if len(reference) == 1:
        return reference[0] - min(p[0] for p in inside)
    if len(reference) == 2:
        return py__hypervolume_2d(inside, reference)
    inside.sort(key=lambda p: p[-1])
    volume = 0.0
    for i, point in enumerate(inside):
        upper = inside[i + 1][-1] if i + 1 < len(inside) else reference[-1]
        if upper > point[-1]:
            slab = py_hypervolume([p[:-1] for p in inside[: i + 1]], reference[:-1])
            volume += slab * (upper - point[-1])
    return volume


def py__hypervolume_2d(points: list[tuple[float, ...]], reference: Point) -> float:
    """Sweep along x keeping the lowest y seen so far: the union of boxes is a staircase."""
    volume, best_y = 0.0, reference[1]
    for x, y in sorted(points):
        if y < best_y:
            volume += (reference[0] - x) * (best_y - y)
            best_y = y
    return volume




def median_s(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def points(rng: random.Random, n: int, m: int) -> list[tuple[float, ...]]:
    """Integer-valued coordinates (like parameter counts): many ties and duplicates."""
    return [tuple(float(rng.randint(0, 40)) for _ in range(m)) for _ in range(n)]


def fronts_by_rank(ranks: np.ndarray) -> list[list[int]]:
    """moocore numbers fronts from 0; ours are lists of indices, front 0 first."""
    return [sorted(int(i) for i in np.flatnonzero(ranks == r)) for r in range(int(ranks.min()), int(ranks.max()) + 1)]


def bench_pareto(repeats: int) -> None:
    import moocore

    rng = random.Random(1)
    print("| what | n | m | former pure Python (ms) | moocore (ms) | ratio | same answer |")
    print("|---|---|---|---|---|---|---|")
    for n, m in ((50, 2), (200, 2), (1000, 2), (200, 3), (1000, 3)):
        pts = points(rng, n, m)
        arr = np.asarray(pts)
        ours = py_non_dominated_sort(pts)
        theirs = fronts_by_rank(moocore.pareto_rank(arr))
        assert non_dominated_sort(pts) == theirs  # evolve.pareto is the moocore path
        a = median_s(lambda: py_non_dominated_sort(pts), repeats)
        b = median_s(lambda: moocore.pareto_rank(np.asarray(pts)), repeats)
        print(f"| non-dominated sort | {n} | {m} | {a * 1e3:.2f} | {b * 1e3:.3f} | {b / a:.3f} | {ours == theirs} |")
        ref = [41.0] * m
        hv_ours, hv_theirs = py_hypervolume(pts, ref), float(moocore.hypervolume(arr, ref=ref))
        assert abs(hypervolume(pts, ref) - hv_theirs) <= 1e-9 * max(1.0, hv_theirs)
        a = median_s(lambda: py_hypervolume(pts, ref), repeats)
        b = median_s(lambda: moocore.hypervolume(np.asarray(pts), ref=ref), repeats)
        same = abs(hv_ours - hv_theirs) <= 1e-9 * max(1.0, abs(hv_ours))
        print(f"| hypervolume | {n} | {m} | {a * 1e3:.2f} | {b * 1e3:.3f} | {b / a:.3f} | {same} |")


def u_statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mann-Whitney U of x over y (ties one half), vectorised over the leading axes."""
    greater = (x[..., :, None] > y[..., None, :]).sum(axis=(-2, -1))
    equal = (x[..., :, None] == y[..., None, :]).sum(axis=(-2, -1))
    centre = x.shape[-1] * y.shape[-1] / 2
    return np.abs(greater + 0.5 * equal - centre)


def bench_rank_test(repeats: int) -> None:
    from scipy import stats

    rng = random.Random(2)
    print("\n| groups | ours (ms) | scipy permutation_test (ms) | ratio | p ours | p scipy |")
    print("|---|---|---|---|---|---|")
    for n in (3, 4, 6, 8):
        xs = [float(rng.randint(50, 60)) for _ in range(n)]
        ys = [float(rng.randint(53, 63)) for _ in range(n)]

        def scipy_p() -> float:
            res = stats.permutation_test((np.asarray(xs), np.asarray(ys)), u_statistic, vectorized=True,
                                         permutation_type="independent", n_resamples=np.inf,
                                         alternative="greater")
            return float(res.pvalue)

        p_ours, _ = rank_test(xs, ys)
        p_scipy = scipy_p()
        a = median_s(lambda: rank_test(xs, ys), repeats)
        b = median_s(scipy_p, repeats)
        print(f"| {n} vs {n} | {a * 1e3:.2f} | {b * 1e3:.2f} | {b / a:.2f} | {p_ours:.6f} | {p_scipy:.6f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    bench_pareto(args.repeats)
    bench_rank_test(args.repeats)


if __name__ == "__main__":
    main()
