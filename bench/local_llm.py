"""Benchmark: the offline models as mutators of our own programs.

For every installed local model (or those named by ``--models``) the script starts the embedded
server once (assembly already cached: that start time is measured, plus the time to a first
one-token answer), then asks ``llm-rewrite`` with ``style: auto`` (what a run with the model does
by default) for ``--n`` children of each fixed prompt, each with its own request seed:

- ``toy``: ``seeds/toy/start.py``, a one-line EVOLVE-BLOCK (objective: error to a hidden vector);
- ``sorter``: ``seeds/sorter/zepto.py`` with EVOLVE-BLOCK markers added around its hyper-parameter
  block (objective: fewer parameters while still sorting every case; a 173-line prompt);
- ``toy-diff``: the toy prompt asking for SEARCH/REPLACE blocks (``llm-diff``, ``style: strict``),
  to re-check that small models cannot write them.

Prompt caching is off for these requests: repeating one prompt would otherwise reuse its computed
prefix, which a run (a different parent every time) cannot.

Per model and prompt it reports the median response time, the parse rate (the mutator produced a
child: the reply held code that parses and changes the program), the run rate (the child evaluated
with status ok) and the improvement rate (feasible and better than the parent on the task's first
objective). Models whose GGUF exceeds 1 GB get ``--n-large`` samples (a sorter answer takes minutes).

    python bench/local_llm.py [--models qwen2.5-coder-0.5b,...] [--n 5] [--n-large 3] [--prompts toy,sorter,toy-diff]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("OMP_NUM_THREADS", "1")

from evolve.evaluation import EvalResult, evaluate, task_sandbox
from evolve.llm.local import MODELS, LocalLLMClient, local_client
from evolve.mutators import make_mutator
from evolve.candidate import Candidate
from evolve.mutators.base import MutationContext
from evolve.sandbox import Sandbox
from evolve.tasks import Task, get_task

ROOT = Path(__file__).resolve().parents[1]
SORTER_BLOCK = ("USE_POSITIONAL = True", "RANDOM_BATCH = 512")


@dataclass
class Prompt:
    name: str
    task: str
    source: str
    mutator: str
    style: str


def _sorter_with_region() -> str:
    """zepto.py with its hyper-parameter block marked as the evolvable region."""
    lines = (ROOT / "seeds/sorter/zepto.py").read_text().splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.startswith(SORTER_BLOCK[0]))
    last = next(i for i, line in enumerate(lines) if line.startswith(SORTER_BLOCK[1]))
    return "".join(lines[:first] + ["# EVOLVE-BLOCK-START\n"] + lines[first:last + 1] + ["# EVOLVE-BLOCK-END\n"] + lines[last + 1:])


def prompts(names: list[str]) -> list[Prompt]:
    toy = (ROOT / "seeds/toy/start.py").read_text()
    known = {
        "toy": Prompt("toy", "toy", toy, "llm-rewrite", "auto"),
        "sorter": Prompt("sorter", "sorter", _sorter_with_region(), "llm-rewrite", "auto"),
        "toy-diff": Prompt("toy-diff", "toy", toy, "llm-diff", "strict"),
    }
    return [known[n] for n in names]


def run_program(task: Task, sandbox: Sandbox, source: str) -> EvalResult:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "program.py"
        path.write_text(source)
        return evaluate(task, path, sandbox)


def better(task: Task, child: EvalResult, parent: EvalResult) -> bool:
    if child.status != "ok" or not child.feasible:
        return False
    goal = task.objectives[0]
    a, b = child.metrics[goal.name], parent.metrics[goal.name]
    return a < b if goal.goal == "min" else a > b


def _most_common(items: list[str]) -> str:
    return max(set(items), key=items.count) if items else ""


def first_token_s(client: LocalLLMClient) -> float:
    start = time.perf_counter()
    client.complete([{"role": "user", "content": "Say OK."}], random.Random(0), max_tokens=1)
    return time.perf_counter() - start


def bench_model(name: str, jobs: list[Prompt], parents: dict[str, tuple[Task, Sandbox, EvalResult]], n: int) -> list[list[str]]:
    section = SimpleNamespace(local_model=name, base_url=None, temperature=0.7, max_tokens=1024, timeout_s=900.0, retries=0)
    start = time.perf_counter()
    client = local_client(section)
    started = time.perf_counter() - start
    rows = []
    try:
        first = first_token_s(client)
        for job in jobs:
            task, sandbox, parent_result = parents[job.name]
            mutator = make_mutator(job.mutator, llm=client, style=job.style)
            # Identical prompts would hit llama.cpp's prompt cache; in a run every parent differs.
            mutator.params["extra_body"] = {"cache_prompt": False}
            view = Candidate(id=0, source=job.source, result=parent_result)
            times, parsed, ran, improved, reasons, failures = [], 0, 0, 0, [], []
            for i in range(n):
                ctx = MutationContext(parent=view, objectives=task.objectives, constraints=task.constraints,
                                      task_description=task.description, rng=random.Random(1000 + i))
                m = mutator.mutate(ctx)
                times.append(m.meta.get("latency_s", float("nan")))
                if m.source is None:
                    reasons.append((m.error or "?")[:60])
                    continue
                parsed += 1
                result = run_program(task, sandbox, m.source)
                ran += result.status == "ok"
                if result.status != "ok":
                    failures.append(f"{result.status}: {result.error or '?'}"[:60])
                improved += better(task, result, parent_result)
            rows.append([name, job.name, str(n), f"{statistics.median(times):.1f}", f"{parsed}/{n}", f"{ran}/{n}",
                         f"{improved}/{n}", f"{started:.1f}", f"{first:.2f}", _most_common(reasons), _most_common(failures)])
            print(" | ".join(rows[-1]), flush=True)
    finally:
        client.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated registry names (default: all installed)")
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--n-large", type=int, default=3, help="samples per prompt for models whose GGUF exceeds 1 GB")
    parser.add_argument("--prompts", default="toy,toy-diff,sorter")
    args = parser.parse_args()
    names = args.models.split(",") if args.models else [m for m in MODELS if MODELS[m].missing() is None]
    jobs = prompts(args.prompts.split(","))
    parents = {}
    sandboxes: dict[str, Sandbox] = {}
    try:
        for job in jobs:
            task = get_task(job.task)
            sandbox = sandboxes.setdefault(job.task, task_sandbox(task))
            parents[job.name] = (task, sandbox, run_program(task, sandbox, job.source))
            print(f"parent {job.name}: {parents[job.name][2].status} {parents[job.name][2].metrics}", flush=True)
        header = ["model", "prompt", "n", "median s", "parsed", "ran", "improved", "start s", "first token s", "most common rejection", "most common run failure"]
        print(" | ".join(header), flush=True)
        table = [header]
        for name in names:
            large = MODELS[name].size > 1_000_000_000
            table += bench_model(name, jobs, parents, args.n_large if large else args.n)
    finally:
        for sandbox in sandboxes.values():
            sandbox.close()
    print("\n| " + " | ".join(table[0]) + " |\n|" + "---|" * len(table[0]))
    for row in table[1:]:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
