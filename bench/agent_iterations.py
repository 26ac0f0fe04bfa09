"""Agent baselines on the toy task: iterations per minute and the per-iteration overhead evolve adds.

Side by side in one run:
- ``agent`` against the scripted fake OpenAI server: each iteration is three turns (edit, evaluate,
  submit) and one evaluation;
- ``agent-cli`` with the scripted fake agent CLI (tests/agents/fake_agent.py, mode ``perturb``): one
  git worktree, one external process, one re-score per iteration.
Both agents write a new program every iteration (the target shifted by 0.001 x iteration), so every
iteration evaluates exactly once.

For each: median wall time of an iteration (from one progress callback to the next, so everything
is in: agent, sandbox evaluation, archive commit, checkpoint), iterations per minute, and its split:
the agent itself (LLM requests / the external command), the worktree (create + remove), the
re-score (sandbox evaluation), and the rest (prompt, archive commit of the attempt and of the
iteration's checkpoint). "evolve overhead" = worktree + re-score + rest: what a comparison against
a bare coding-agent loop pays for fairness and the archive. Medians over ``--iterations`` (>= 5).

    python bench/agent_iterations.py [--iterations 9]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "agents"))  # the scripted fake agent CLI and edit helpers

from agent_helpers import VALUES, call, candidates, iteration, turn

from evaluators.toy import TARGET
from evolve.config import parse_config
from evolve.run import EvolutionRun
from evolve.testing.fake_llm import FakeLLMServer, Reply

FAKE_AGENT = ROOT / "tests" / "agents" / "fake_agent.py"


def config(root: Path, name: str, strategy: dict[str, Any], iterations: int, **extra: Any) -> dict[str, Any]:
    return {"run": {"name": name, "output_dir": str(root), "seed": 1}, "task": {"name": "toy"},
            "seeds": [str(ROOT / "seeds/toy/start.py")], "strategy": strategy,
            "budget": {"max_evaluations": iterations + 3}, **extra}


def timed_run(data: dict[str, Any], wrap: Callable[[EvolutionRun], None] | None = None) -> tuple[EvolutionRun, list[float]]:
    """Run to its budget; returns the run and the wall times of iterations 2..n-1 (the first warms
    caches up, the budget cuts the last one short)."""
    run = EvolutionRun(parse_config(data))
    if wrap:
        wrap(run)
    marks: list[float] = []
    outcome = run.execute(progress=lambda _: marks.append(time.perf_counter()))
    if outcome.counters.rejected:
        raise SystemExit(f"{run.config.run.name}: {outcome.counters.rejected} iterations evaluated nothing")
    return run, [b - a for a, b in zip(marks, marks[1:])][:-1]


def model(body: dict[str, Any]) -> Reply:
    shifted = [t + 0.001 * iteration(body) for t in TARGET]
    line = VALUES.search(body["messages"][1]["content"]).group(0)
    steps = [call("edit_program", search=line, replace=f"values = {json.dumps(shifted)}"),
             call("evaluate", intent="shift"), call("submit", summary="shifted")]
    return steps[turn(body)]


def bench_agent(root: Path, iterations: int) -> dict[str, list[float]]:
    llm_s: list[float] = []

    def time_llm(run: EvolutionRun) -> None:
        complete = run.llm.complete

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return complete(*args, **kwargs)
            finally:
                llm_s.append(time.perf_counter() - start)
        run.llm.complete = timed  # type: ignore[method-assign]

    with FakeLLMServer(model) as server:
        llm = {"base_url": server.base_url, "api_key_env": None, "models": [{"name": "fake-model"}]}
        run, walls = timed_run(config(root, "agent", {"name": "agent"}, iterations, llm=llm), time_llm)
    attempts = candidates(run)[2:]  # those of the complete iterations after the first
    agent = [sum(llm_s[3 * i:3 * i + 3]) for i in range(1, len(walls) + 1)]
    return split(walls, agent, [0.0] * len(walls), [c.result.wall_s for c in attempts])


def bench_cli(root: Path, iterations: int) -> dict[str, list[float]]:
    command = [sys.executable, str(FAKE_AGENT), "perturb", "{workdir}", "{iteration}"]
    run, walls = timed_run(config(root, "cli", {"name": "agent-cli", "params": {"command": command}}, iterations))
    attempts = candidates(run)[2:2 + len(walls)]
    timing = [c.extra["timing"] for c in attempts]
    return split(walls, [t["agent_s"] for t in timing], [t["checkout_s"] + t["cleanup_s"] for t in timing],
                 [c.result.wall_s for c in attempts])


def split(walls: list[float], agent: list[float], worktree: list[float], score: list[float]) -> dict[str, list[float]]:
    rest = [w - a - t - s for w, a, t, s in zip(walls, agent, worktree, score)]
    overhead = [t + s + r for t, s, r in zip(worktree, score, rest)]
    return {"iteration": walls, "agent": agent, "worktree": worktree, "score": score, "rest": rest,
            "overhead": overhead}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=9)
    args = parser.parse_args()
    if args.iterations < 5:
        parser.error("--iterations must be >= 5 (medians)")
    with tempfile.TemporaryDirectory() as tmp:
        results = {"agent (fake LLM)": bench_agent(Path(tmp), args.iterations),
                   "agent-cli (fake CLI)": bench_cli(Path(tmp), args.iterations)}
    rows = [("iterations per minute", lambda r: 60.0 / statistics.median(r["iteration"]), "{:.0f}"),
            ("iteration (median ms)", lambda r: 1000 * statistics.median(r["iteration"]), "{:.0f}"),
            ("  agent: LLM / command", lambda r: 1000 * statistics.median(r["agent"]), "{:.0f}"),
            ("  worktree create+remove", lambda r: 1000 * statistics.median(r["worktree"]), "{:.0f}"),
            ("  re-score in the sandbox", lambda r: 1000 * statistics.median(r["score"]), "{:.0f}"),
            ("  archive + checkpoint + prompt", lambda r: 1000 * statistics.median(r["rest"]), "{:.0f}"),
            ("evolve overhead (median ms)", lambda r: 1000 * statistics.median(r["overhead"]), "{:.0f}"),
            ("overhead share of an iteration", lambda r: statistics.median(
                [o / w for o, w in zip(r["overhead"], r["iteration"])]), "{:.0%}")]
    names = list(results)
    n = min(len(r["iteration"]) for r in results.values())
    print(f"toy task, medians over {n} iterations (the first and the last are not counted)")
    print(f"{'':34}" + "".join(f"{name:>22}" for name in names))
    for label, fn, fmt in rows:
        print(f"{label:34}" + "".join(f"{fmt.format(fn(results[name])):>22}" for name in names))


if __name__ == "__main__":
    main()
