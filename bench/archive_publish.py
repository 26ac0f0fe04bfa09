"""Cost of keeping the archive's ``best``/``front`` branches (and the best checkout) current.

Worst case: every batch improves the best and changes the front, so every publish runs
``git read-tree`` (the checkout follows ``best``) and one ``update-ref``. Side by side, interleaved
round by round: publishing after every batch (``publish_interval_s = 0``) vs the default throttle
(at most every few seconds, and on close). Prints median ms per batch and the ratio.

    python bench/archive_publish.py [--batches 60] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from evolve.archive import Archive, Candidate, RunMeta
from evolve.archive.archive import PUBLISH_INTERVAL_S
from evolve.evaluation import EvalResult
from evolve.tasks import Objective

META = RunMeta(run="bench", task="toy", objectives=(Objective("params", "min"),))


def batch_ms(root: Path, batches: int, interval: float) -> float:
    times = []
    with Archive.create(root / "archive", META) as archive:
        archive.publish_interval_s = interval
        for i in range(batches):
            record = Candidate(source=f"PARAMS = {1000 - i}\n", parents=(i - 1,) if i else (),
                                     result=EvalResult(status="ok", metrics={"params": 1000 - i},
                                                       feasible=True, violation=0.0))
            start = time.perf_counter()
            archive.add_batch([record], {})
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    every, throttled = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            every.append(batch_ms(Path(tmp) / f"every{r}", args.batches, 0.0))
            throttled.append(batch_ms(Path(tmp) / f"throttled{r}", args.batches, PUBLISH_INTERVAL_S))
    e, t = statistics.median(every), statistics.median(throttled)
    print(f"publish after every batch: {e:.1f} ms/batch (median of {args.rounds} rounds)")
    print(f"throttled ({PUBLISH_INTERVAL_S:g} s):         {t:.1f} ms/batch")
    print(f"ratio every/throttled:     {e / t:.2f}")


if __name__ == "__main__":
    main()
