"""A task file whose candidates sleep: evaluations that take wall time and almost no CPU.

The Ray tests and ``bench/scaling_ray.py`` use it (as ``task: {file: <this file>}``, so it also
exercises how a task file reaches a cluster's nodes) to keep many workers busy on a 2-core machine.
The candidate reads how long to sleep from stdin (the task's ``sleep_s``), so the numeric mutator,
which edits the program's literals, never changes the duration; its last stdout line is a JSON list
scored by its squared distance to :data:`TARGET`, as in the toy task.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from evolve.evaluation import EvalResult
from evolve.plugins import Params as PluginParams
from evolve.sandbox import Job, Limits, Sandbox
from evolve.tasks import Objective, Task

TARGET = (3.0, -1.5)
#: A starting program (write it to a seed file).
SEED = "import json, sys, time\ntime.sleep(float(sys.stdin.read()))\nprint(json.dumps([1.0, 2.0]))\n"


class SleepTask(Task):
    name = "sleep"
    description = "sleep for sleep_s seconds, then print a JSON list close to a fixed target (for scaling tests)"
    objectives = (Objective("error", "min"),)
    isolation = "fresh"

    class Params(PluginParams):
        sleep_s: float = Field(1.0, ge=0)
        timeout_s: float = Field(60.0, gt=0)

    def evaluate(self, program: Path, sandbox: Sandbox) -> EvalResult:
        limits = Limits(timeout_s=float(self.options["timeout_s"]), memory_mb=1024)
        job = Job.script("program.py", files={"program.py": str(program)}, stdin=str(self.options["sleep_s"]))
        proc = sandbox.run(job, limits=limits)
        if not proc.ok:
            return EvalResult.failed(proc, "run")
        try:
            values = [float(v) for v in json.loads(proc.stdout.strip().splitlines()[-1])]
        except (IndexError, ValueError, TypeError):
            return EvalResult(status="error", error="the last line of stdout is not a JSON list of numbers",
                              phases={"run": proc.summary()})
        error = sum((v - t) ** 2 for v, t in zip(values, TARGET)) + sum(t * t for t in TARGET[len(values):])
        return EvalResult(status="ok", metrics={"error": error}, phases={"run": proc.summary()})


TASK = SleepTask
