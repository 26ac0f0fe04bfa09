"""Benchmark: how long a real run takes to stop after Ctrl-C while its LLM requests hang.

For each strategy, a run of the toy task (``python -m evolve.cli run``, a real subprocess) talks to
the fake server, whose every answer comes after ``--delay`` seconds (default 30). Once the server
has received the run's first request, the bench sends SIGINT (what Ctrl-C sends) and measures the
time until the process has exited, and whether any request arrived after the SIGINT. It repeats
``--repeats`` times and prints the median, the maximum and the exit codes; ``--twice`` sends a
second SIGINT 0.2 s after the first (the "I really mean it" exit).

    python bench/ctrl_c.py [--strategy hillclimb islands random agent] [--repeats 5] [--delay 30]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evolve.testing import FakeLLMServer, Slow  # noqa: E402

STRATEGIES = {
    "hillclimb": ({"name": "hillclimb"}, "llm-diff"),
    "islands": ({"name": "islands", "params": {"islands": 2, "migration_interval": 2}}, "llm-diff"),
    "random": ({"name": "random"}, "llm-diff"),
    "agent": ({"name": "agent", "params": {"turns_per_iteration": 4, "evaluations_per_iteration": 2}}, None),
}


def config(out: Path, name: str, strategy: str, base_url: str) -> Path:
    params, mutator = STRATEGIES[strategy]
    data: dict[str, Any] = {
        "run": {"name": name, "output_dir": str(out), "seed": 1},
        "task": {"name": "toy"},
        "seeds": [str(ROOT / "seeds/toy/start.py")],
        "strategy": params,
        "llm": {"base_url": base_url, "api_key_env": None, "timeout_s": 120, "retries": 4,
                "models": [{"name": "fake-model"}]},
        "budget": {"max_evaluations": 20},
        "parallel": {"evaluations": 2, "llm_requests": 2},
    }
    if mutator:
        data["mutators"] = [{"name": mutator}]
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def one(out: Path, name: str, strategy: str, delay: float, twice: bool) -> tuple[float, int, int]:
    """Seconds from SIGINT to exit, the exit code, and requests received after the SIGINT."""
    with FakeLLMServer(lambda request: Slow(delay, "too late")) as server:
        path = config(out, name, strategy, server.base_url)
        proc = subprocess.Popen([sys.executable, "-m", "evolve.cli", "run", str(path)], cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not server.requests and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # let the batch's other requests go out too
        sent = len(server.requests)
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        if twice:
            time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=delay * 10 + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        return time.monotonic() - start, code, len(server.requests) - sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", nargs="+", choices=sorted(STRATEGIES), default=list(STRATEGIES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--delay", type=float, default=30.0, help="seconds before the server answers")
    parser.add_argument("--twice", action="store_true", help="send a second SIGINT 0.2 s after the first")
    args = parser.parse_args()
    print(f"{'strategy':<10} {'median s':>8} {'max s':>6} {'late requests':>13}  exit codes")
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in args.strategy:
            rows = [one(Path(tmp), f"{strategy}-{i}", strategy, args.delay, args.twice) for i in range(args.repeats)]
            seconds = [r[0] for r in rows]
            print(f"{strategy:<10} {statistics.median(seconds):>8.2f} {max(seconds):>6.2f} "
                  f"{sum(r[2] for r in rows):>13}  {sorted({r[1] for r in rows})}", flush=True)


if __name__ == "__main__":
    main()
