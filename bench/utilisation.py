"""Benchmark: how busy the evaluation slots are, ``parallel.mode: batch`` against ``async``.

The same run in both modes, side by side in each repeat: the toy's vector evolved by ``llm-diff``
through the fake LLM on loopback (every answer after ``--latency`` seconds, default 2), judged by a
file task whose evaluation sleeps a heavy-tailed time (lognormal, median ``--eval-median`` s,
sigma ``--sigma``, capped at 20 medians),
``--evaluations`` slots, ``--llm-requests`` mutations in flight, ``--children`` children a run.

Figures per run, then medians over ``--repeats``:

- **throughput**: children filed per second, from the first child's evaluation start to the last
  child's evaluation end (the seed and the first LLM wait, the same in both modes, are outside);
- **busy**: the share of that span the slots spent evaluating (the task's own start/end times), and
  the same share until the last child started (after it nothing is left to give a free slot).

The k-th evaluation of a run sleeps the k-th draw of a lognormal seeded by the repeat's number, so
in each repeat both modes meet the same durations and only the scheduling differs.

``--scale 0.1`` divides every latency and sleep by 10 for a quick look (then the driver's own
costs, a git commit per filing, weigh ten times more).

    python bench/utilisation.py [--repeats 3] [--children 40] [--scale 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evolve.config import parse_config  # noqa: E402
from evolve.run import EvolutionRun  # noqa: E402
from evolve.runlog import read_events  # noqa: E402
from evolve.testing import FakeLLMServer, Slow  # noqa: E402

TARGET = (3.0, -1.5, 0.25, 8.0)
VALUES = re.compile(r"^values = \[([^\]\n]*)\].*$", re.MULTILINE)

#: The task: the k-th evaluation of a run sleeps the k-th draw of a seeded lognormal (both modes
#: meet the same durations), then appends "start end" to $BUSY_LOG.
TASK = '''
import os, random, re, threading, time
from evolve.evaluation import EvalResult
from evolve.tasks import Objective, Task

TARGET = (3.0, -1.5, 0.25, 8.0)
VALUES = re.compile(r"^values = \\[([^\\]\\n]*)\\].*$", re.MULTILINE)
DRAWS = random.Random(SEED)
LOCK = threading.Lock()


class SlowToy(Task):
    name = "slow-toy"
    description = "the toy's vector; each evaluation takes a heavy-tailed time"
    objectives = (Objective("error", "min"),)

    def evaluate(self, program, sandbox):
        text = program.read_text()
        with LOCK:
            seconds = min(MEDIAN * DRAWS.lognormvariate(0.0, SIGMA), 20 * MEDIAN)
        start = time.time()
        time.sleep(seconds)
        with open(os.environ["BUSY_LOG"], "a") as log:
            log.write(f"{start} {time.time()}\\n")
        values = [float(v) for v in VALUES.search(text).group(1).split(",")]
        return EvalResult(status="ok", metrics={"error": sum((v - t) ** 2 for v, t in zip(values, TARGET))})


TASK = SlowToy
'''


class Model:
    """Moves the parent's vector halfway to the target; a counter keeps every child's source unique."""

    def __init__(self, latency: float) -> None:
        self.latency, self.served, self.lock = latency, 0, threading.Lock()

    def __call__(self, request: dict[str, Any]) -> Any:
        with self.lock:
            self.served += 1
            n = self.served
        parent = VALUES.search(request["messages"][-1]["content"])
        assert parent, "the prompt shows the parent program"
        old = [float(v) for v in parent.group(1).split(",")]
        new = [round(o + (t - o) / 2, 4) for o, t in zip(old, TARGET)]
        reply = ("Halfway to the target.\n<<<<<<< SEARCH\n" + parent.group(0) + "\n=======\n"
                 f"values = {json.dumps(new)}  # attempt {n}\n>>>>>>> REPLACE\n")
        return Slow(self.latency, reply)


def one_run(out: Path, mode: str, base_url: str, args: argparse.Namespace, seed: int) -> dict[str, float]:
    task = out / f"slow_toy_{mode}.py"
    task.write_text(TASK.replace("MEDIAN", repr(args.eval_median * args.scale)).replace("SIGMA", repr(args.sigma))
                    .replace("SEED", repr(seed)))
    busy_log = out / f"busy-{mode}.txt"
    os.environ["BUSY_LOG"] = str(busy_log)
    data = {
        "run": {"name": mode, "output_dir": str(out / "runs"), "seed": 7},
        "task": {"file": str(task)},
        "seeds": [str(ROOT / "seeds/toy/start.py")],
        "strategy": {"name": "islands", "params": {"islands": 2}},
        "mutators": [{"name": "llm-diff"}],
        "llm": {"base_url": base_url, "api_key_env": None, "timeout_s": 120, "models": [{"name": "fake-model"}]},
        "budget": {"max_evaluations": args.children + 1},
        "parallel": {"evaluations": args.evaluations, "llm_requests": args.llm_requests, "mode": mode},
    }
    run = EvolutionRun(parse_config(data))
    outcome = run.execute()
    assert outcome.counters.evaluations == args.children + 1, outcome.stop_reason
    spans = sorted(tuple(map(float, line.split())) for line in busy_log.read_text().splitlines())[1:]  # not the seed
    begin, end = spans[0][0], max(e for _, e in spans)
    busy = sum(e - s for s, e in spans) / (args.evaluations * (end - begin))
    last_start = spans[-1][0]  # after it there is nothing left to start: the tail is the slowest child
    queued = sum(max(0.0, min(e, last_start) - s) for s, e in spans) / (args.evaluations * (last_start - begin))
    assert sum(e["event"] == "evaluation" for e in read_events(run.log.path)) == args.children + 1
    return {"throughput": len(spans) / (end - begin), "busy": busy, "busy_queued": queued, "span_s": end - begin}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--children", type=int, default=40)
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per LLM answer")
    parser.add_argument("--eval-median", type=float, default=1.0, help="median seconds per evaluation")
    parser.add_argument("--sigma", type=float, default=1.0, help="lognormal sigma of the evaluation time")
    parser.add_argument("--evaluations", type=int, default=2)
    parser.add_argument("--llm-requests", type=int, default=4)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every latency and sleep (0.1: quick)")
    args = parser.parse_args()
    figures: dict[str, list[dict[str, float]]] = {"batch": [], "async": []}
    with FakeLLMServer(Model(args.latency * args.scale)) as server, tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for mode in ("batch", "async"):
                out = Path(tmp) / f"r{r}"
                out.mkdir(exist_ok=True)
                f = one_run(out, mode, server.base_url, args, seed=r)
                figures[mode].append(f)
                print(f"repeat {r + 1} {mode:5}: {f['throughput']:.3f} children/s, busy {f['busy']:.1%} "
                      f"({f['busy_queued']:.1%} until the last start), {f['span_s']:.1f} s", flush=True)
    med = {mode: {k: statistics.median(f[k] for f in runs) for k in ("throughput", "busy", "busy_queued")}
           for mode, runs in figures.items()}
    print(f"\n{args.children} children, {args.evaluations} slots, {args.llm_requests} LLM requests, "
          f"LLM {args.latency * args.scale:g} s, evaluations lognormal(median {args.eval_median * args.scale:g} s, "
          f"sigma {args.sigma:g}); medians of {args.repeats}:")
    for mode in ("batch", "async"):
        print(f"  {mode:5}: {med[mode]['throughput']:.3f} children/s, slots busy {med[mode]['busy']:.1%} "
              f"({med[mode]['busy_queued']:.1%} until the last child started)")
    print(f"  async / batch throughput: {med['async']['throughput'] / med['batch']['throughput']:.2f}x")


if __name__ == "__main__":
    main()
