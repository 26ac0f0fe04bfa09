"""Scaling on Ray: evaluations per second against workers, and what the driver costs per evaluation.

A one-machine Ray cluster (a head with no CPUs + ``--nodes`` worker nodes that declare 64 CPUs
between them, far more than the machine's 2 cores) evaluates the sleep task
(``evolve/testing/sleep_task.py``, a task file: each candidate sleeps ``--sleep`` seconds in the
sandbox), so the wall time of an evaluation is the sleep and N workers should give N / sleep
evaluations per second. ``--isolation forkserver`` (the default) forks each candidate from the
script zygote, as the toy task does; ``fresh`` (the sleep task's own mode) starts an interpreter per
candidate. Side by side in one run, medians over ``--reps``:

- **evaluator**: ``RayEvaluator`` with N slots, ``--rounds`` x N evaluations queued at once (N in
  flight all the time): evaluations/s, the speed-up over 1 worker divided by N (goal >= 0.9), the
  ratio to N perfect local slots, and the driver process's CPU per evaluation (all its threads:
  dispatch, Ray's client);
- **run**: a whole ``evolve run`` (batch mode, numeric mutator, ``parallel.evaluations: N``) from
  its seed being filed to its stop: evaluations/s, ratio, and the driver's CPU per evaluation
  (mutation, archive commit, dispatch);
- **the limits**: one evaluation without Ray (wall time, and the CPU the sandbox costs), hence where 2 cores stop keeping up (cores x wall / CPU per evaluation), and the
  archive's commits per second (``bench/archive_commit.py``'s records, batches of 1, 8, 32), hence
  where one driver saturates.

    python bench/scaling_ray.py [--sleep 1.0] [--rounds 3] [--reps 3] [--nodes 2] [--workers 1,2,4,8,16,32,64]
                                [--isolation forkserver|fresh]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/archive_commit.py

import ray  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from archive_commit import add_batch_ms  # noqa: E402
from evolve.config import parse_config  # noqa: E402
from evolve.parallel.local import LocalEvaluator  # noqa: E402
from evolve.parallel.ray_cluster import RayEvaluator, TaskSpec  # noqa: E402
from evolve.run import EvolutionRun  # noqa: E402
from evolve.tasks import load_task_file  # noqa: E402
from evolve.testing import sleep_task  # noqa: E402

TOTAL_CPUS = 64
#: The sleep task in forkserver mode: a task file of its own (it travels to the nodes as text).
FORKED_TASK = """from evolve.testing.sleep_task import SleepTask


class ForkedSleepTask(SleepTask):
    isolation = "forkserver"


TASK = ForkedSleepTask
"""


def task_file(isolation: str, folder: Path) -> Path:
    """The sleep task's file for ``isolation``."""
    if isolation == "fresh":
        return Path(sleep_task.__file__)
    path = folder / "forked_sleep_task.py"
    path.write_text(FORKED_TASK, encoding="utf-8")
    return path


def evaluator_point(address: str, spec: TaskSpec, n: int, rounds: int) -> tuple[float, float]:
    """Evaluations/s with n in flight, and the driver's CPU ms per evaluation."""
    evaluator = RayEvaluator(spec, address=address, slots=n)
    try:
        evaluator.evaluate_all([sleep_task.SEED] * n)  # every slot's actor is up and has run once
        cpu, start = time.process_time(), time.perf_counter()
        results = evaluator.evaluate_all([sleep_task.SEED] * (rounds * n))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        evaluator.close()
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    return len(results) / wall, cpu * 1000 / len(results)


def run_point(root: Path, address: str, spec_file: Path, n: int, rounds: int, sleep_s: float,
              rep: int) -> tuple[float, float]:
    """A whole run's evaluations/s (seed filed -> stop) and the driver's CPU ms per evaluation."""
    root.mkdir(parents=True, exist_ok=True)
    seed = root / "seed.py"
    seed.write_text(sleep_task.SEED)
    config = parse_config({
        "run": {"name": f"n{n}-r{rep}", "output_dir": str(root / "runs"), "seed": rep},
        "task": {"file": str(spec_file), "options": {"sleep_s": sleep_s}},
        "seeds": [str(seed)], "mutators": [{"name": "numeric"}],
        "budget": {"max_evaluations": 1 + rounds * n},
        "parallel": {"evaluations": n, "backend": "ray", "address": address},
    })
    marks: list[tuple[float, float, int]] = []  # (wall, driver CPU, evaluations) after the seed and each batch

    def progress(run: EvolutionRun) -> None:
        marks.append((time.perf_counter(), time.process_time(), run.counters.evaluations))

    EvolutionRun(config).execute(progress)
    (wall0, cpu0, done0), (wall1, cpu1, done1) = marks[0], marks[-1]
    assert done1 - done0 == rounds * n
    return (done1 - done0) / (wall1 - wall0), (cpu1 - cpu0) * 1000 / (done1 - done0)


def local_evaluation(spec: TaskSpec, root: Path, jobs: int = 6, cpu_jobs: int = 40) -> tuple[float, float]:
    """One evaluation of the sleep task on this machine, no Ray: its wall time (s, over ``jobs``) and
    the CPU (ms, all processes) it costs. The CPU is the difference between an evaluator that ran
    1 + ``cpu_jobs`` evaluations and one that ran 1 (the sleep set to 0: sleeping costs none), each
    counted after its close: a forkserver's jobs are the zygote's children, whose CPU reaches this
    process only when the zygote is reaped."""
    root.mkdir(parents=True, exist_ok=True)
    with LocalEvaluator(spec.build(root), root / "scratch", slots=1) as evaluator:
        evaluator.evaluate_all([sleep_task.SEED])
        start = time.perf_counter()
        for _ in range(jobs):
            evaluator.evaluate_all([sleep_task.SEED])
        wall = (time.perf_counter() - start) / jobs
    task = replace(spec, options={**spec.options, "sleep_s": 0.0}).build(root)
    cpu = []
    for extra in (0, cpu_jobs):
        before = _cpu_with_children()
        with LocalEvaluator(task, root / f"scratch{extra}", slots=1) as evaluator:
            evaluator.evaluate_all([sleep_task.SEED] * (1 + extra))
        cpu.append(_cpu_with_children() - before)
    return wall, max(cpu[1] - cpu[0], 0.0) * 1000 / cpu_jobs


def _cpu_with_children() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def idle_driver_ms_per_s(seconds: float = 3.0) -> float:
    """The driver process's CPU while nothing happens: Ray's client threads poll. It is part of every
    'driver ms' figure, spread over the evaluations of that second (large at low rates)."""
    cpu = time.process_time()
    time.sleep(seconds)
    return (time.process_time() - cpu) * 1000 / seconds


def wait_for_free_cpus() -> None:
    """Until the last point's actors are gone (close() kills them from a background thread)."""
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0) < TOTAL_CPUS and time.monotonic() < deadline:
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds each candidate sleeps")
    parser.add_argument("--rounds", type=int, default=3, help="evaluations per worker per measurement")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=2, help="worker nodes sharing the 64 declared CPUs")
    parser.add_argument("--workers", default="1,2,4,8,16,32,64")
    parser.add_argument("--no-run", action="store_true", help="measure the evaluator only")
    parser.add_argument("--isolation", choices=("forkserver", "fresh"), default="forkserver",
                        help="how the sandbox starts each candidate")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # the cluster's processes inherit it: nothing is sent

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(args.nodes):
            cluster.add_node(num_cpus=TOTAL_CPUS // args.nodes)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level=logging.ERROR, log_to_driver=False)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            path = task_file(args.isolation, root)
            spec = TaskSpec.of(load_task_file(path)(sleep_s=args.sleep), str(path))
            measure(args, workers, spec, path, cluster.address, root)
    finally:
        ray.shutdown()
        cluster.shutdown()


def measure(args: argparse.Namespace, workers: list[int], spec: TaskSpec, path: Path, address: str,
            root: Path) -> None:
    print(f"sleep task ({args.isolation}): {args.sleep:g} s per candidate; {args.nodes} worker nodes declaring "
          f"{TOTAL_CPUS} CPUs on {os.cpu_count()} real cores; {args.rounds} evaluations per worker; medians of "
          f"{args.reps}; load average before: {os.getloadavg()[0]:.2f}")
    local_s, node_ms = local_evaluation(spec, root / "local")
    cores = os.cpu_count() or 1
    print(f"one evaluation without Ray (LocalEvaluator, 1 slot): {local_s:.2f} s wall, {node_ms:.0f} ms CPU "
          f"(the sandbox, {args.isolation}) -> {cores} cores keep up with at most "
          f"{cores * local_s * 1000 / max(node_ms, 0.1):.0f} busy workers")
    print("eval/s: evaluations per second; xN: the speed-up over 1 worker divided by N (goal >= 0.9);")
    print(f"x local: eval/s over N / {local_s:.2f} s (N perfect local slots); driver ms: the driver's CPU per evaluation")
    print(f"{'workers':>7} | {'evaluator eval/s':>16} {'xN':>5} {'x local':>7} {'driver ms':>9} | "
          f"{'run eval/s':>10} {'xN':>5} {'x local':>7} {'driver ms':>9}")
    driver_ms = []
    one: dict[str, float] = {}
    for n in workers:
        ev, run = [], []
        for rep in range(args.reps):
            wait_for_free_cpus()
            ev.append(evaluator_point(address, spec, n, args.rounds))
            if not args.no_run:
                wait_for_free_cpus()
                run.append(run_point(root / f"n{n}", address, path, n, args.rounds, args.sleep, rep))
        ideal = n / local_s
        rate, ms = statistics.median(r for r, _ in ev), statistics.median(m for _, m in ev)
        one.setdefault("evaluator", rate / n)
        line = f"{n:7d} | {rate:16.2f} {rate / n / one['evaluator']:5.2f} {rate / ideal:7.2f} {ms:9.2f} |"
        if run:
            run_rate, run_ms = statistics.median(r for r, _ in run), statistics.median(m for _, m in run)
            one.setdefault("run", run_rate / n)
            driver_ms.append(run_ms)
            line += f" {run_rate:10.2f} {run_rate / n / one['run']:5.2f} {run_rate / ideal:7.2f} {run_ms:9.2f}"
        print(line, flush=True)
    for batch in (1, 8, 32):
        ms, _ = add_batch_ms(root / "commits", 160, batch)
        print(f"archive add_batch, batch of {batch:2d}: {ms:.2f} ms per candidate = {1000 / ms:.0f} commits/s")
    idle = idle_driver_ms_per_s()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"the driver's CPU while idle (Ray's client threads): {idle:.1f} ms per second")
    if driver_ms:
        busiest = driver_ms[-1]
        print(f"driver CPU per evaluation in a run: {driver_ms[0]:.1f} ms at {workers[0]} worker(s), {busiest:.1f} ms at "
              f"{workers[-1]} -> one driver saturates near {1000 / busiest:.0f} evaluations/s, i.e. "
              f"{1000 / busiest * args.sleep:.0f} workers of {args.sleep:g} s, {1000 / busiest * 60:.0f} workers of 60 s")


if __name__ == "__main__":
    main()
