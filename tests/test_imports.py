"""Light package faces: a small concept does not drag in the OpenAI SDK, GitPython, torch or plots.

Each case imports in a fresh interpreter (``sys.modules`` of this process is already full) and
lists which heavy modules got loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("openai", "git", "torch", "matplotlib", "rich", "pydantic", "yaml")


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True,
                         cwd=ROOT, timeout=300)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("code, allowed", [
    ("import evolve.pareto", set()),  # the leaf: nothing at all
    ("import evolve.candidate, evolve.errors", set()),
    ("from evolve.archive import RunMeta, Candidate", set()),
    ("from evolve.tasks import Objective\nfrom evolve.strategies import make_strategy\n"
     "make_strategy('islands', (Objective('x'),)).ranker.front([])", {"pydantic"}),  # parameter models
    ("from evolve.mutators import make_mutator\nmake_mutator('numeric')", {"pydantic"}),
])
def test_light_faces(code: str, allowed: set[str]) -> None:
    assert loaded_after(code) <= allowed


def test_evolve_tasks_loads_no_llm_no_git_no_plots() -> None:
    loaded = loaded_after("from evolve.cli import main\nmain(['tasks'])")
    # torch: the adder and sorter evaluator modules import it at their top (see the issue-15 note).
    assert not loaded & {"openai", "git", "matplotlib"}, loaded
