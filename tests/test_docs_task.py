"""A task written only from the docs (README "Your own task" and ``evolve/templates/task/task.py.tmpl``)
works: ``evolve eval``, a short ``evolve run`` and ``evolve show``, through the command line.

The task below was first written that way in a scratch folder, as a researcher would ("fit a
quadratic with the fewest terms": the candidate prints polynomial coefficients, the task scores
their mean squared error on its own data file and counts the nonzero terms). What got in the way,
and what now answers it:

- its data-file option, written as a plain ``str``, was read against the current directory: the
  run crashed in ``evaluate`` with a FileNotFoundError traceback when started from the parent
  folder. Now a ``ConfigPath`` option is read against the config's folder (as the seeds are), and
  the template and README say so and show an absolute default next to the task file;
- ``evolve show quad`` from the folder holding the task's folder ``quad/`` opened that folder instead
  of ``runs/quad`` ("no archive at quad/archive"). Now a run directory is preferred;
- an ``evaluate`` that names a metric differently from its objective (``MSE`` vs ``mse``) scored
  "ok" in ``evolve eval`` with no hint; every candidate would be infeasible. Now ``evolve eval``
  lists the declared metric as MISSING with a warning;
- nothing said what an exception in ``evaluate`` does (it stops the run with its traceback, and the
  run resumes once the task is fixed); the template and README say it now.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evolve.archive import Archive
from evolve.cli import main

TASK = '''"""Task quad: fit the points with a polynomial of as few terms as possible."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from evolve.evaluation import EvalResult
from evolve.plugins import ConfigPath
from evolve.plugins import Params as PluginParams
from evolve.sandbox import Job, Limits, Sandbox
from evolve.tasks import Constraint, Objective, Task


class QuadTask(Task):
    name = "quad"
    description = "print coefficients [c0, c1, ...] that fit the points with the fewest nonzero terms"
    objectives = (Objective("mse", "min"), Objective("terms", "min", "terms"))
    constraints = (Constraint("mse", "<=", 0.01),)

    class Params(PluginParams):
        data: ConfigPath = str(Path(__file__).resolve().parent / "points.csv")  # x,y per line
        timeout_s: float = Field(10.0, gt=0)

    def evaluate(self, program: Path, sandbox: Sandbox) -> EvalResult:
        job = Job.script("program.py", files={"program.py": str(program)})
        proc = sandbox.run(job, limits=Limits(timeout_s=self.params.timeout_s, memory_mb=1024))
        if not proc.ok:
            return EvalResult.failed(proc, "run")
        try:
            coeffs = [float(c) for c in json.loads(proc.stdout.strip().splitlines()[-1])]
        except (IndexError, ValueError, TypeError):
            return EvalResult(status="error", error="the last stdout line is not a list of numbers",
                              phases={"run": proc.summary()})
        points = [tuple(map(float, line.split(","))) for line in Path(self.params.data).read_text().split()]
        mse = sum((sum(c * x ** i for i, c in enumerate(coeffs)) - y) ** 2 for x, y in points) / len(points)
        terms = sum(1 for c in coeffs if abs(c) > 1e-6)
        return EvalResult(status="ok", metrics={"mse": mse, "terms": float(terms)},
                          phases={"run": proc.summary()})


TASK = QuadTask
'''
SEED = "# coefficients of 1, x, x^2, x^3\nprint([1.5, -1.0, 2.5, 0.1])\n"
CONFIG = """run:
  name: quad
task:
  file: quad.py
seeds:
  - seed.py
strategy:
  name: hillclimb
mutators:
  - name: numeric
budget:
  max_evaluations: 60
"""
POINTS = [(i / 4, 3 * (i / 4) ** 2 - 2 * (i / 4) + 1) for i in range(-8, 9)]  # y = 3x^2 - 2x + 1


def seed_mse() -> float:
    return sum((1.5 - 1.0 * x + 2.5 * x ** 2 + 0.1 * x ** 3 - y) ** 2 for x, y in POINTS) / len(POINTS)


@pytest.mark.slow
def test_a_task_written_from_the_docs_evaluates_evolves_and_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "quad"  # the task's folder, named like its run: `evolve show quad` must find the run
    folder.mkdir()
    (folder / "quad.py").write_text(TASK)
    (folder / "seed.py").write_text(SEED)
    (folder / "config.yaml").write_text(CONFIG)
    (folder / "points.csv").write_text("".join(f"{x},{y}\n" for x, y in POINTS))
    monkeypatch.chdir(tmp_path)  # the parent folder: neither the config's nor the data's

    assert main(["eval", "quad/quad.py", "quad/seed.py", "--json"]) == 0
    seed = json.loads(capsys.readouterr().out)
    assert seed["status"] == "ok" and seed["metrics"]["mse"] == pytest.approx(seed_mse())
    assert seed["metrics"]["terms"] == 4 and not seed["feasible"]

    assert main(["run", "quad/config.yaml", "--max-evaluations", "12"]) == 0
    with Archive.open(tmp_path / "runs" / "quad" / "archive") as archive:
        candidates = archive.candidates()
    assert len(candidates) == 12 and {c.status for c in candidates} == {"ok"}
    assert min(c.metrics["mse"] for c in candidates) < seed_mse()  # the search made progress

    capsys.readouterr()
    assert main(["show", "quad"]) == 0
    shown = capsys.readouterr().out
    assert "run quad" in shown and "task quad" in shown and "Closest" in shown
    assert main(["show", "quad", "0"]) == 0
    assert "print([1.5, -1.0, 2.5, 0.1])" in capsys.readouterr().out
