"""Light package faces: a small concept does not drag in the OpenAI SDK, GitPython, torch or plots.

Each case imports in a fresh interpreter (``sys.modules`` of this process is already full) and
lists which heavy modules got loaded.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("openai", "git", "torch", "matplotlib", "rich", "pydantic", "yaml")


def loaded_and_printed(code: str) -> tuple[set[str], str]:
    """The heavy modules ``code`` loaded in a fresh interpreter, and the last line it printed."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True,
                         cwd=ROOT, timeout=300)
    lines = out.stdout.strip().splitlines()
    return set(json.loads(lines[-1])), lines[-2] if len(lines) > 1 else ""


def loaded_after(code: str) -> set[str]:
    return loaded_and_printed(code)[0]


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


def test_evolve_tasks_loads_no_torch_no_llm_no_git_no_plots() -> None:
    """The task modules describe themselves without torch (it is imported only by their sandbox phases)."""
    loaded = loaded_after("from evolve.cli import main\nmain(['tasks'])")
    assert not loaded & {"torch", "openai", "git", "matplotlib"}, loaded


@pytest.mark.parametrize("options, outcome", [
    ({"hidden_cases": 0}, "task: task 'adder': hidden_cases: must be >= 1 (got 0)"),
    ({"hidden_cases": 5}, "ok"),
])
def test_config_check_of_a_torch_task_loads_no_torch_no_llm_no_git(tmp_path: Path, options: dict[str, int],
                                                                    outcome: str) -> None:
    """A config error (and a good config's check) answers without importing what only a run needs."""
    data = yaml.safe_load((ROOT / "configs" / "adder-repair.yaml").read_text())
    data["task"]["options"] = options
    data["seeds"] = [str((ROOT / "configs" / s).resolve()) for s in data["seeds"]]  # relative to configs/
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(data))
    code = ("from evolve.config import load_config\nfrom evolve.errors import UserError\n"
            f"try:\n    load_config({str(config)!r}); print('ok')\nexcept UserError as e:\n    print(e)")
    loaded, printed = loaded_and_printed(code)
    assert printed.endswith(outcome), printed
    assert not loaded & {"torch", "openai", "git"}, loaded


def test_a_run_without_an_llm_loads_no_openai(tmp_path: Path) -> None:
    """A numeric run (the README's first command is one) does not import the OpenAI SDK: ~0.6 s of
    its start. evolve.run needs only the LLM's failure types, and evolve.llm exports lazily."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "run": {"name": "n", "output_dir": str(tmp_path / "runs")}, "task": {"name": "toy"},
        "seeds": [str(ROOT / "seeds" / "toy" / "start.py")], "budget": {"max_evaluations": 2}}))
    loaded, printed = loaded_and_printed(f"from evolve.cli import main\nprint('exit', main(['run', {str(config)!r}]))")
    assert printed == "exit 0", printed
    assert "openai" not in loaded and "git" in loaded, loaded  # it did run (and archive)


# --- layering: who may import whom, read from the source (lazy imports inside functions count) ----
EVOLVE = ROOT / "evolve"

#: (importer, imported): data never depends on its presentation. ``compare/`` computes, ``report/``
#: draws; the number formats both need live in the leaf ``evolve/numbers.py``.
FORBIDDEN = [
    ("evolve.compare", "evolve.report"),
    ("evolve.archive", "evolve.report"),
    ("evolve.archive", "evolve.compare"),
    ("evolve.archive", "evolve.run"),
]
#: Leaves: they import nothing of evolve, so anything may use them without dragging a package in.
LEAVES = ("evolve.pareto", "evolve.numbers", "evolve.usage", "evolve.errors")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def evolve_imports(path: Path, root: Path = ROOT) -> set[str]:
    """Every ``evolve...`` module ``path`` names in an import statement, relative ones resolved."""
    name = module_name(path, root).split(".")
    package = name if path.name == "__init__.py" else name[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] if node.level else [])
            module = ".".join(p for p in (base, node.module or "") if p)
            found |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return {m for m in found if m == "evolve" or m.startswith("evolve.")}


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_layering_rules_hold() -> None:
    broken = [f"{module_name(path)} imports {imported}"
              for path in sorted(EVOLVE.rglob("*.py"))
              for importer, forbidden in FORBIDDEN if within(module_name(path), importer)
              for imported in sorted(evolve_imports(path)) if within(imported, forbidden)]
    assert broken == []


@pytest.mark.parametrize("leaf", LEAVES)
def test_a_leaf_imports_nothing_of_evolve(leaf: str) -> None:
    path = ROOT / (leaf.replace(".", "/") + ".py")
    assert evolve_imports(path) == set()


def test_the_layering_check_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The rule above would pass vacuously if the parser missed an import form: it must not."""
    probe = tmp_path / "evolve" / "compare" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from evolve.report.show import x\nfrom ..report import html\n"
                     "import evolve.report.plots\n")
    assert evolve_imports(probe, tmp_path) >= {"evolve.report.show", "evolve.report.html", "evolve.report.plots"}
