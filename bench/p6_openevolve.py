"""Benchmark P6: evolve against OpenEvolve 0.4.1, iterations per second on the same problem.

Both evolve the toy's vector (``seeds/toy/start.py``: print a JSON list; error = squared distance to
a fixed target) for ``--iterations`` iterations (one LLM answer and one evaluation each), 2 in
parallel, against one fake LLM on loopback: every answer comes after ``--latency`` seconds and
moves the program being mutated halfway to the target with a SEARCH/REPLACE block (the same rule
for both; each prompt shows that program in its own place). Each framework runs as a whole
process, alternately, ``--repeats`` times; the bench prints the median wall time, iterations/s, the
CPU seconds of the process tree, and the ratios.

- **evolve**: ``evolve run`` with the built-in ``toy`` task (isolation on: each candidate runs as a
  script forked from the sandbox's script zygote, with every layer, limits and memory measured), islands, ``llm-diff``,
  ``parallel: {evaluations: 2, llm_requests: 2}``, once per ``--modes`` (``async`` and ``batch``).
  ``--llm-requests 4`` lets evolve write more children at once than it evaluates (OpenEvolve's
  workers each ask the LLM, then evaluate: its LLM concurrency is its evaluation concurrency).
- **OpenEvolve 0.4.1**: ``openevolve-run`` with 2 parallel evaluations (its worker processes),
  2 islands, no cascade, and an evaluator that runs the candidate in a plain subprocess (it
  isolates nothing and measures no memory; that is how its examples run programs).

OpenEvolve lives in its own venv, created on first use under ``--cache-dir`` (``python -m venv``,
then ``pip install openevolve==0.4.1``); tests never create it. evolve's modules are byte-compiled
first, as ``pip install`` leaves them (OpenEvolve's are): with ``PYTHONDONTWRITEBYTECODE`` set, as
on the project's machines, a source checkout otherwise compiles its ~60 modules at every start.

    python bench/p6_openevolve.py [--repeats 5] [--latency 0.1] [--modes async batch]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evolve.testing import FakeLLMServer, Slow  # noqa: E402

OPENEVOLVE = "openevolve==0.4.1"
TARGET = (3.0, -1.5, 0.25, 8.0)
VALUES = re.compile(r"^values = \[([^\]\n]*)\]$", re.MULTILINE)
#: Where OpenEvolve's prompt shows the program it mutates (evolve's shows the parent first).
OPENEVOLVE_CURRENT = "# Current Program\n```"

OPENEVOLVE_EVALUATOR = '''"""The toy, judged the way OpenEvolve's examples judge programs: a plain subprocess."""
import json, subprocess, sys

TARGET = (3.0, -1.5, 0.25, 8.0)


def evaluate(program_path):
    proc = subprocess.run([sys.executable, program_path], capture_output=True, text=True, timeout=10)
    try:
        values = [float(v) for v in json.loads(proc.stdout.strip().splitlines()[-1])]
    except (IndexError, ValueError, TypeError):
        return {"combined_score": 0.0, "error": 1e9}
    error = sum((v - t) ** 2 for v, t in zip(values, TARGET)) + sum(t * t for t in TARGET[len(values):])
    return {"combined_score": 1.0 / (1.0 + error), "error": error}
'''


class Model:
    """The scripted model: halfway to the target, after ``latency`` seconds; counts its answers."""

    def __init__(self, latency: float) -> None:
        self.latency, self.served, self.lock = latency, 0, threading.Lock()

    def __call__(self, request: dict[str, Any]) -> Any:
        with self.lock:
            self.served += 1
        prompt = request["messages"][-1]["content"]
        start = prompt.find(OPENEVOLVE_CURRENT)
        parent = VALUES.search(prompt, max(start, 0))
        if parent is None:
            return Slow(self.latency, "No change.")
        old = [float(v) for v in parent.group(1).split(",")]
        new = [round(o + (t - o) / 2, 4) for o, t in zip(old, TARGET)]
        return Slow(self.latency, "Halfway to the target.\n<<<<<<< SEARCH\n" + parent.group(0) +
                    f"\n=======\nvalues = {json.dumps(new)}\n>>>>>>> REPLACE\n")


def openevolve_venv(cache: Path) -> Path:
    """The venv's ``openevolve-run``, installing OpenEvolve 0.4.1 the first time."""
    venv = cache / "oe-venv"
    run = venv / "bin" / "openevolve-run"
    if not run.exists():
        print(f"creating {venv} with {OPENEVOLVE} (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", OPENEVOLVE], check=True)
    return run


def evolve_command(out: Path, base_url: str, mode: str, iterations: int, llm_requests: int) -> list[str]:
    data = {
        "run": {"name": f"p6-{mode}", "output_dir": str(out / "runs"), "seed": 42},
        "task": {"name": "toy"},
        "seeds": [str(ROOT / "seeds/toy/start.py")],
        "strategy": {"name": "islands", "params": {"islands": 2}},
        "mutators": [{"name": "llm-diff"}],
        "llm": {"base_url": base_url, "api_key_env": None, "timeout_s": 60, "models": [{"name": "fake-model"}]},
        "budget": {"max_evaluations": iterations + 1},  # the seed and one child per iteration
        "parallel": {"evaluations": 2, "llm_requests": llm_requests, "mode": mode},
    }
    path = out / f"evolve-{mode}.yaml"
    path.write_text(yaml.safe_dump(data))
    return [sys.executable, "-m", "evolve.cli", "run", str(path)]


def openevolve_command(run: Path, out: Path, base_url: str, iterations: int) -> list[str]:
    config = {
        "max_iterations": iterations, "checkpoint_interval": 1000, "log_level": "WARNING", "random_seed": 42,
        "llm": {"api_base": base_url, "api_key": "fake", "timeout": 60, "retries": 1,
                "models": [{"name": "fake-model", "weight": 1.0}]},
        "database": {"num_islands": 2},
        "evaluator": {"parallel_evaluations": 2, "cascade_evaluation": False, "timeout": 30},
        "diff_based_evolution": True,
    }
    (out / "oe.yaml").write_text(yaml.safe_dump(config))
    (out / "oe_evaluator.py").write_text(OPENEVOLVE_EVALUATOR)
    return [str(run), str(ROOT / "seeds/toy/start.py"), str(out / "oe_evaluator.py"), "--config",
            str(out / "oe.yaml"), "--iterations", str(iterations), "--output", str(out / "oe-out")]


def timed(command: list[str], log: Path) -> tuple[float, float]:
    """Wall and CPU seconds (the process and its reaped children) of one run of ``command``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "fake"}
    started = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.Popen(command, cwd=log.parent, env=env, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({proc.returncode}); see {log}:\n{log.read_text()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per LLM answer")
    parser.add_argument("--llm-requests", type=int, default=2,
                        help="evolve's mutations in flight (OpenEvolve has one per worker: 2)")
    parser.add_argument("--modes", nargs="+", default=["async", "batch"], choices=["async", "batch"])
    parser.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                        / "evolve-bench")
    args = parser.parse_args()
    oe_run = openevolve_venv(args.cache_dir)
    compileall.compile_dir(ROOT / "evolve", quiet=1)
    names = [f"evolve {m}" for m in args.modes] + ["OpenEvolve"]
    walls: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    model = Model(args.latency)
    with FakeLLMServer(model) as server, tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name in names:
                out = Path(tmp) / f"r{r}-{name.replace(' ', '-')}"
                out.mkdir()
                command = (openevolve_command(oe_run, out, server.base_url, args.iterations) if name == "OpenEvolve"
                           else evolve_command(out, server.base_url, name.split()[1], args.iterations,
                                               args.llm_requests))
                asked = model.served
                wall, cpu = timed(command, out / "output.log")
                walls[name].append(wall)
                cpus[name].append(cpu)
                print(f"repeat {r + 1} {name:12}: {wall:6.2f} s wall, {cpu:6.2f} s CPU, "
                      f"{model.served - asked} LLM answers", flush=True)
    print(f"\n{args.iterations} iterations, 2 evaluations in parallel, evolve's LLM requests {args.llm_requests}, "
          f"LLM latency {args.latency:g} s; medians of {args.repeats}:")
    rate = {n: args.iterations / statistics.median(walls[n]) for n in names}
    for name in names:
        print(f"  {name:12}: {statistics.median(walls[name]):6.2f} s wall, {rate[name]:5.2f} iterations/s, "
              f"{statistics.median(cpus[name]):6.2f} s CPU")
    for name in names[:-1]:
        print(f"  {name} / OpenEvolve iterations/s: {rate[name] / rate['OpenEvolve']:.2f}x "
              f"(CPU {statistics.median(cpus[name]) / statistics.median(cpus['OpenEvolve']):.2f}x)")


if __name__ == "__main__":
    main()
