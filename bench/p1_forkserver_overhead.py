"""P1: per-candidate overhead of a trivial torch candidate, forkserver vs fresh, side by side.

The candidate is a call job that builds a tiny ``nn.Linear`` and runs one forward, so almost all of
the time measured is sandbox overhead: in fresh mode a new interpreter importing torch, in
forkserver mode a fork of the zygote that already has it. Figures are the parent's wall time per
``Sandbox.run`` (workdir, cgroup, supervisor, worker, reaping, clean-up included).

    python bench/p1_forkserver_overhead.py [--fresh 5] [--forkserver 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from evolve.sandbox import Job, Limits, Sandbox

CANDIDATE = """
import torch

def run():
    model = torch.nn.Linear(8, 4)
    with torch.no_grad():
        return model(torch.ones(1, 8)).shape[-1]
"""
LIMITS = Limits(timeout_s=120)


def measure(sandbox: Sandbox, job: Job, repeats: int) -> tuple[list[float], list[float]]:
    """Parent-side wall times and the sandbox's own wall_s of ``repeats`` runs."""
    totals, inner = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = sandbox.run(job, limits=LIMITS)
        totals.append(time.perf_counter() - start)
        if result.value != 4:
            raise SystemExit(f"candidate failed: {result.status}: {result.error}")
        inner.append(result.wall_s)
    return totals, inner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", type=int, default=5, help="fresh-mode repeats (default 5)")
    parser.add_argument("--forkserver", type=int, default=20, help="forkserver repeats (default 20)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "candidate.py"
        path.write_text(CANDIDATE)
        job = Job.call("candidate:run", files={"candidate.py": str(path)})
        with Sandbox("forkserver", preload=("torch",)) as box:
            start = time.perf_counter()
            measure(box, job, 1)  # starts the zygote (imports torch once); not counted
            startup = time.perf_counter() - start
            fork_totals, fork_inner = measure(box, job, args.forkserver)
        with Sandbox("fresh") as box:
            fresh_totals, fresh_inner = measure(box, job, args.fresh)
    fork_median, fresh_median = statistics.median(fork_totals), statistics.median(fresh_totals)
    print(f"zygote start-up + first job (paid once per task): {startup * 1000:.0f} ms")
    print(f"{'mode':<11} {'n':>3} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'worker wall ms':>15}")
    for name, totals, inner in (("fresh", fresh_totals, fresh_inner), ("forkserver", fork_totals, fork_inner)):
        print(
            f"{name:<11} {len(totals):>3} {statistics.median(totals) * 1000:>10.1f} {min(totals) * 1000:>8.1f}"
            f" {max(totals) * 1000:>8.1f} {statistics.median(inner) * 1000:>15.1f}"
        )
    print(f"ratio fresh/forkserver (medians): {fresh_median / fork_median:.1f}x")
    verdict = "PASS" if fork_median <= 0.050 and fresh_median / fork_median >= 60 else "MISS"
    print(f"target: forkserver <= 50 ms and >= 60x cheaper -> {verdict}")


if __name__ == "__main__":
    main()
