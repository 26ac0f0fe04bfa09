"""Benchmark: the offline default (configs/adder-repair.yaml) repairing nanogpt58, over run seeds.

Runs the shipped config unchanged except for ``run.seed`` and the output directory, once per seed,
and prints evaluations to the fix (the first candidate meeting the target), wall time, and the
median over seeds. The config's target: 100 % on the reference, hidden and hard cases at no more
than the seed's strict count (83: 58 weights + 25 folded constants), within 200 evaluations and 5 minutes.

    python bench/adder_repair.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from evolve.config import parse_config
from evolve.run import EvolutionRun

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "adder-repair.yaml"


def repair(seed: int, output_dir: Path) -> dict:
    data = yaml.safe_load(CONFIG.read_text())
    data["run"].update(seed=seed, output_dir=str(output_dir), name=f"adder-repair-{seed}")
    data["seeds"] = [str((ROOT / "configs" / s).resolve()) for s in data["seeds"]]
    run = EvolutionRun(parse_config(data, str(CONFIG)))
    start = time.perf_counter()
    outcome = run.execute()
    wall = time.perf_counter() - start
    fixed = outcome.target_reached
    return {"seed": seed, "fixed_by": fixed, "evaluations": outcome.counters.evaluations,
            "to_fix": None if fixed is None else fixed + 1, "wall_s": wall, "stop": outcome.stop_reason}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'seed':>4} {'evals to fix':>12} {'evaluations':>11} {'wall s':>7}  stop")
        for seed in args.seeds:
            r = repair(seed, Path(tmp))
            rows.append(r)
            to_fix = "-" if r["to_fix"] is None else str(r["to_fix"])
            print(f"{r['seed']:>4} {to_fix:>12} {r['evaluations']:>11} {r['wall_s']:>7.1f}  {r['stop']}", flush=True)
    fixed = [r for r in rows if r["to_fix"] is not None]
    print(f"fixed in {len(fixed)}/{len(rows)} runs")
    if fixed:
        print(f"median evaluations to fix {statistics.median(r['to_fix'] for r in fixed):g}, "
              f"median wall {statistics.median(r['wall_s'] for r in fixed):.1f} s "
              f"(range {min(r['wall_s'] for r in fixed):.1f}-{max(r['wall_s'] for r in fixed):.1f} s)")


if __name__ == "__main__":
    main()
