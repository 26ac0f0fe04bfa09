"""P1: per-candidate overhead of a trivial torch candidate, forkserver vs fresh, side by side.

The candidate is a call job that builds a tiny ``nn.Linear`` and runs one forward, so almost all of
the time measured is sandbox overhead: in fresh mode a new interpreter importing torch, in
forkserver mode a fork of the zygote that already has it. Figures are the parent's wall time per
``Sandbox.run`` (workdir, cgroups, supervisor, worker, namespaces, reaping, clean-up included).

The forkserver is measured twice, interleaved in rounds so that load drifts hit both alike: with
every layer (private namespaces, uid 65534, memory cgroup, tmpfs workdir) and without the private
namespaces, which is what they cost per candidate.

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
ROUND = 5  # jobs per sandbox per round


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
    parser.add_argument("--forkserver", type=int, default=40, help="forkserver repeats per variant (default 40)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "candidate.py"
        path.write_text(CANDIDATE)
        job = Job.call("candidate:run", files={"candidate.py": str(path)})
        with Sandbox("forkserver", preload=("torch",)) as full, \
                Sandbox("forkserver", preload=("torch",), private_namespaces=False) as bare:
            start = time.perf_counter()
            measure(full, job, 1)  # starts the zygote (imports torch once); not counted
            startup = time.perf_counter() - start
            measure(bare, job, 1)
            fork_totals, fork_inner, bare_totals, bare_inner = [], [], [], []
            for _ in range(args.forkserver // ROUND):
                for box, totals, inner in ((full, fork_totals, fork_inner), (bare, bare_totals, bare_inner)):
                    t, i = measure(box, job, ROUND)
                    totals += t
                    inner += i
        with Sandbox("fresh") as box:
            fresh_totals, fresh_inner = measure(box, job, args.fresh)
    fork_median, fresh_median = statistics.median(fork_totals), statistics.median(fresh_totals)
    print(f"zygote start-up + first job (paid once per task): {startup * 1000:.0f} ms")
    print(f"{'mode':<26} {'n':>3} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'worker wall ms':>15}")
    rows = (("fresh", fresh_totals, fresh_inner), ("forkserver, all layers", fork_totals, fork_inner),
            ("forkserver, no namespaces", bare_totals, bare_inner))
    for name, totals, inner in rows:
        print(
            f"{name:<26} {len(totals):>3} {statistics.median(totals) * 1000:>10.1f} {min(totals) * 1000:>8.1f}"
            f" {max(totals) * 1000:>8.1f} {statistics.median(inner) * 1000:>15.1f}"
        )
    added = fork_median - statistics.median(bare_totals)
    print(f"namespaces add {added * 1000:.1f} ms per candidate (difference of medians)")
    print(f"ratio fresh/forkserver (medians): {fresh_median / fork_median:.1f}x")
    verdict = "PASS" if fork_median <= 0.015 else "MISS"
    print(f"target: forkserver with every layer <= 15 ms per candidate -> {verdict}")


if __name__ == "__main__":
    main()
