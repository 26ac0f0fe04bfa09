"""``evolve new-task NAME``: write a working task skeleton (task file, seed, config, test) to start from.

The skeleton is the documented template of a task (README, "Your own task"): copied files from
``evolve/templates/task/`` with the name filled in, so what a user starts from is what the tests run.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from evolve.errors import UserError

#: Template file -> file written (``{name}`` is the task's name).
FILES = {"task.py": "{name}.py", "seed.py": "seed.py", "config.yaml": "config.yaml", "test_task.py": "test_{name}.py"}


class NewTaskError(UserError, ValueError):
    """A bad task name or an output folder that would overwrite files."""


def write_skeleton(name: str, out: Path) -> list[Path]:
    """Write the skeleton of task ``name`` into ``out``; never overwrites a file."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise NewTaskError(f"task name {name!r}: use lower-case letters, digits and _ (a Python module name)")
    targets = {template: out / pattern.format(name=name) for template, pattern in FILES.items()}
    clashes = [str(p) for p in targets.values() if p.exists()]
    if clashes:
        raise NewTaskError(f"{clashes[0]} already exists (choose another folder with -o)")
    out.mkdir(parents=True, exist_ok=True)
    folder = resources.files("evolve") / "templates" / "task"
    for template, path in targets.items():
        path.write_text((folder / f"{template}.tmpl").read_text().replace("{{name}}", name))
    return list(targets.values())
