"""Task ``toy``: a seconds-fast task for trying evolve's machinery (strategies, archive, reports).

The candidate is a script that prints one JSON list of numbers as its last stdout line. The
evaluator (in the trusted parent, reading the output as data) scores the squared distance of that
list to a fixed target vector and the program's size. It exists for tests, demos and benchmarks of
the search itself, where a torch task would make every experiment minutes long.

Rules against a hostile candidate (``tests/evaluators/test_redteam.py``):

- ``chars`` is the program's size in UTF-8 bytes, not in code points: a program packed two source
  bytes to a character and unpacked by ``exec`` (``exec(bytes("...", "utf-16"))``) would otherwise
  halve the figure without shrinking the program. For ASCII programs the two are equal.
- The output is data parsed here, in the trusted parent: anything that is not a flat JSON list of
  numbers (an integer too big for a float, a list nested past the parser's recursion limit) is a
  failed candidate, never an exception that would stop the run; a number whose square overflows
  (``1e200``) scores ``error`` inf.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from pydantic import Field

from evolve.evaluation import EvalResult
from evolve.sandbox import Job, Limits, Sandbox
from evolve.plugins import Params as PluginParams
from evolve.tasks import Constraint, Objective, Task

TARGET = (3.0, -1.5, 0.25, 8.0)


class ToyTask(Task):
    name = "toy"
    description = "print a JSON list close to a fixed target vector (fast; for tests and demos)"
    objectives = (Objective("error", "min"), Objective("chars", "min", "chars"))
    constraints = (Constraint("error", "<=", 0.5),)
    # Script jobs fork from a zygote that has started Python already (evolve/sandbox/script.py), with
    # every layer of fresh mode: ~20 ms of interpreter start-up less per candidate. Its memory figures
    # are relative to that zygote, which is fine here: memory is not an objective of this task.
    isolation = "forkserver"

    class Params(PluginParams):
        timeout_s: float = Field(10.0, gt=0)  # wall-clock limit of one run of the candidate

    def evaluate(self, program: Path, sandbox: Sandbox) -> EvalResult:
        limits = Limits(timeout_s=float(self.options["timeout_s"]), memory_mb=1024)
        proc = sandbox.run(Job.script("program.py", files={"program.py": str(program)}), limits=limits)
        if not proc.ok:
            return EvalResult.failed(proc, "run")
        lines = proc.stdout.strip().splitlines()
        try:
            values = [float(v) for v in json.loads(lines[-1])]
        except (IndexError, ValueError, TypeError, OverflowError, RecursionError):
            return EvalResult(status="error", error="the last line of stdout is not a JSON list of numbers",
                              phases={"run": proc.summary()})
        # products, not ** 2: a float's ** 2 raises OverflowError past 1e154 where a product is inf
        error = sum((v - t) * (v - t) for v, t in zip(values, TARGET)) + sum(t * t for t in TARGET[len(values):])
        error += sum(v * v for v in values[len(TARGET):])
        metrics = {"error": error if math.isfinite(error) else math.inf, "chars": float(len(program.read_bytes()))}
        return EvalResult(status="ok", metrics=metrics, phases={"run": proc.summary()})


TASK = ToyTask
