"""Benchmark the two microgpt seeds side by side, and the cost of evaluating a candidate.

1. baseline.py vs optimized.py on the public run (seed 42, full names file), alternating, each run
   in the fresh sandbox the task uses: median peak RSS and wall time, and whether stdout is identical;
2. one ``microgpt`` evaluation of optimized.py with the task defaults (50-step public and hidden
   runs, 200-step full check) on an empty reference cache and again on the warm cache, with the
   time of each stage.

Usage: python bench/microgpt_seeds.py [--steps 50] [--repeats 3] [--full]
``--full`` adds one 1000-step pair (the baseline alone takes ~6 minutes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from evaluators.microgpt import NAMES
from evolve.evaluation import evaluate
from evolve.sandbox import Job, Limits, ProcessResult, Sandbox
from evolve.tasks import get_task

SEEDS = Path(__file__).resolve().parent.parent / "seeds" / "microgpt"
PROGRAMS = {"baseline": SEEDS / "baseline.py", "optimized": SEEDS / "optimized.py"}


def run(sandbox: Sandbox, program: Path, steps: int) -> ProcessResult:
    job = Job.script("program.py", "--data", "names.txt", "--steps", str(steps), "--seed", "42",
                     files={"program.py": str(program), "names.txt": str(NAMES)})
    proc = sandbox.run(job, limits=Limits(timeout_s=60 + 4 * steps, memory_mb=512, processes=1))
    if not proc.ok:
        sys.exit(f"{program.name} failed: {proc.error}")
    return proc


def compare_seeds(sandbox: Sandbox, steps: int, repeats: int) -> None:
    runs: dict[str, list[ProcessResult]] = {name: [] for name in PROGRAMS}
    for _ in range(repeats):
        for name, program in PROGRAMS.items():
            runs[name].append(run(sandbox, program, steps))
    rss = {name: statistics.median(r.peak_rss_mib for r in rs) for name, rs in runs.items()}
    wall = {name: statistics.median(r.wall_s for r in rs) for name, rs in runs.items()}
    outputs = {r.stdout for rs in runs.values() for r in rs}
    print(f"\n== seeds, {steps} steps, median of {repeats} (public run: seed 42, 32,033 names) ==")
    for name in PROGRAMS:
        print(f"{name:10s} peak RSS {rss[name]:6.1f} MiB   wall {wall[name]:7.2f} s")
    print(f"ratio      peak RSS {rss['baseline'] / rss['optimized']:6.2f}x      wall {wall['baseline'] / wall['optimized']:7.2f}x")
    print(f"stdout identical across all {2 * repeats} runs: {len(outputs) == 1}")


def evaluation_cost(sandbox: Sandbox) -> None:
    with tempfile.TemporaryDirectory(prefix="microgpt-bench-cache-") as cache:
        task = get_task("microgpt", cache_dir=cache)
        print(f"\n== one evaluation of optimized.py, task defaults {task.options['steps']}/{task.options['full_steps']} steps ==")
        for label in ("cold cache", "warm cache"):
            start = time.perf_counter()
            result = evaluate(task, PROGRAMS["optimized"], sandbox)
            total = time.perf_counter() - start
            stages = "  ".join(f"{name} {phase['wall_s']:.2f} s" for name, phase in result.phases.items())
            print(f"{label}: {total:7.2f} s total, {result.info['reference_runs']} reference runs; "
                  f"candidate runs: {stages}; feasible={result.feasible} peak={result.metrics.get('peak_rss_mib', 0):.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="also run one 1000-step pair")
    args = parser.parse_args()
    with Sandbox() as sandbox:
        compare_seeds(sandbox, args.steps, args.repeats)
        if args.full:
            compare_seeds(sandbox, 1000, 1)
        evaluation_cost(sandbox)


if __name__ == "__main__":
    main()
