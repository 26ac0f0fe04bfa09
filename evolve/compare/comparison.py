"""Which runs a comparison compares, in which groups, at which budget: ``comparison.json``.

A comparison is either the matrix of a COMPARE.yaml (its cells live in the comparison directory)
or a set of existing runs grouped by what differs between their configs. Both are saved the same
way, so ``evolve report DIR`` and a repeated ``evolve compare`` recompute everything from the
archives: the file holds the definition, and the latest results only as a convenience for scripts.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evolve.archive import Archive, ArchiveError, RunMeta
from evolve.compare.config import RUN_BUDGET_KEY, CompareSpec
from evolve.errors import UserError

DEFINITION = "comparison.json"
DEFAULT_NAME = "comparison"  # the folder `evolve compare RUN RUN` writes to unless told (runs/comparison)


class CompareError(UserError):
    """The comparison cannot be made as asked; the message is one line meant for the user."""


@dataclass(frozen=True)
class Group:
    label: str
    runs: tuple[Path, ...]


@dataclass(frozen=True)
class Comparison:
    name: str
    directory: Path  # results, plots and (for a matrix) the cells' run directories
    groups: tuple[Group, ...]
    budget_kind: str = "evaluations"  # the x axis of the plots and the budget the table reports
    budget: float | None = None
    target: tuple[str, ...] = ()
    reference: dict[str, float] | None = None  # hypervolume reference point, objective units
    source: str = ""  # the COMPARE.yaml it came from, if any

    @property
    def runs(self) -> list[Path]:
        return [run for group in self.groups for run in group.runs]

    # --- construction ---------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: CompareSpec) -> "Comparison":
        cfg = spec.config
        groups = tuple(Group(v.name, tuple(c.run_dir for c in spec.cells if c.variant == v.name))
                       for v in cfg.variants)
        return cls(cfg.name, cfg.directory, groups, cfg.budget.kind, cfg.budget.amount,
                   tuple(cfg.target), dict(cfg.reference) if cfg.reference else None, spec.source)

    @classmethod
    def from_runs(cls, run_dirs: list[Path], directory: Path, *, budget_kind: str | None = None,
                  target: tuple[str, ...] | None = None,
                  reference: dict[str, float] | None = None) -> "Comparison":
        """Existing runs, grouped by strategy (and by mutators/models where those differ)."""
        if len(set(map(_key, run_dirs))) != len(run_dirs):
            raise CompareError("the same run is given twice")
        metas = [read_meta(d) for d in run_dirs]
        check_comparable(list(zip(run_dirs, metas)))
        labels = _labels([m.config for m in metas])
        if len(set(labels)) == 1 < len(labels):  # one strategy/setting: compare the runs themselves
            labels = _distinct([m.run for m in metas])
        groups = tuple(Group(label, tuple(d for d, lab in zip(run_dirs, labels) if lab == label))
                       for label in dict.fromkeys(labels))
        kind, amount = _shared_budget([m.config for m in metas])
        if budget_kind is not None and budget_kind != kind:
            kind, amount = budget_kind, None
        if target is None:
            targets = {tuple(m.config.get("target", ())) for m in metas}
            target = targets.pop() if len(targets) == 1 else ()
        return cls(directory.name, directory, groups, kind, amount, tuple(target), reference)

    @property
    def title(self) -> str:
        """``hillclimb vs islands``, after the comparison's name unless it is the default folder's."""
        labels = " vs ".join(g.label for g in self.groups)
        return labels if self.name in ("", DEFAULT_NAME) else f"{self.name}: {labels}"

    @classmethod
    def single(cls, run_dir: Path) -> "Comparison":
        """One run on its own (``evolve report RUN``)."""
        meta = read_meta(run_dir)
        kind, amount = _shared_budget([meta.config])
        return cls(meta.run, run_dir, (Group(meta.run, (run_dir,)),), kind, amount,
                   tuple(meta.config.get("target", ())))

    # --- persistence ----------------------------------------------------------------------
    def save(self, results: dict[str, Any] | None = None) -> Path:
        """Write ``comparison.json`` atomically; run paths inside the directory are stored
        relative to it, so the directory can be moved as a whole."""
        self.directory.mkdir(parents=True, exist_ok=True)
        document = {"name": self.name, "source": self.source, "budget_kind": self.budget_kind,
                    "budget": self.budget, "target": list(self.target), "reference": self.reference,
                    "groups": [{"label": g.label, "runs": [self._stored(r) for r in g.runs]}
                               for g in self.groups]}
        if results is not None:
            document["results"] = results
        path = self.directory / DEFINITION
        write_atomic(path, json.dumps(document, indent=2, allow_nan=False))
        return path

    def _stored(self, run: Path) -> str:
        try:
            return str(run.resolve().relative_to(self.directory.resolve()))
        except ValueError:
            return str(run.resolve())

    @classmethod
    def load(cls, directory: Path) -> "Comparison":
        path = directory / DEFINITION
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            groups = tuple(Group(g["label"], tuple(directory / r for r in g["runs"]))
                           for g in data["groups"])
            return cls(data["name"], directory, groups, data["budget_kind"], data["budget"],
                       tuple(data["target"]), data["reference"], data.get("source", ""))
        except FileNotFoundError:
            raise CompareError(f"{directory} is not a comparison (no {DEFINITION})") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CompareError(f"{path}: unreadable comparison definition ({exc})") from None


def is_comparison(directory: Path) -> bool:
    return (directory / DEFINITION).is_file()


def read_meta(run_dir: Path) -> RunMeta:
    """The run's metadata; a directory without an archive is a one-line error."""
    if not run_dir.is_dir():
        raise CompareError(f"no such run directory {str(run_dir)!r}")
    if not (run_dir / "archive").is_dir():
        raise CompareError(f"{run_dir} is not an evolve run (no archive/ inside)")
    try:
        with Archive.open(run_dir / "archive") as archive:
            return archive.meta
    except ArchiveError as exc:
        raise CompareError(f"{run_dir}: {exc}") from None


def check_comparable(runs: list[tuple[Path, RunMeta]]) -> None:
    """Runs are comparable when they share the task and the objectives."""
    first_dir, first = runs[0]
    for run_dir, meta in runs[1:]:
        if meta.task != first.task:
            raise CompareError(f"runs of different tasks cannot be compared: {first_dir} ({first.task}) "
                               f"and {run_dir} ({meta.task})")
        if _objective_key(meta) != _objective_key(first):
            raise CompareError(f"runs with different objectives cannot be compared: {first_dir} "
                               f"({_objective_key(first)}) and {run_dir} ({_objective_key(meta)})")


def write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _key(run_dir: Path) -> str:
    return str(run_dir.resolve())


def _objective_key(meta: RunMeta) -> str:
    return ", ".join(f"{o.goal} {o.name}" for o in meta.objectives)


def _labels(configs: list[dict[str, Any]]) -> list[str]:
    """A group label per run: the strategy, plus mutators and models where runs differ in them;
    runs with identical labels but different settings are told apart by a suffix."""
    parts = [{"strategy": c.get("strategy", {}).get("name", "?"),
              "mutators": "+".join(m.get("name", "?") for m in c.get("mutators", [])),
              "models": "+".join(m.get("name", "?") for m in (c.get("llm") or {}).get("models", []))}
             for c in configs]
    varying = [k for k in ("strategy", "mutators", "models") if len({p[k] for p in parts}) > 1]
    base = [" ".join(p[k] for k in (varying or ["strategy"]) if p[k]) or p["strategy"] for p in parts]
    settings = [json.dumps({k: c.get(k) for k in ("strategy", "mutators", "llm")}, sort_keys=True)
                for c in configs]
    labels: list[str] = []
    seen: dict[str, list[str]] = {}
    for label, setting in zip(base, settings):
        variants = seen.setdefault(label, [])
        if setting not in variants:
            variants.append(setting)
        index = variants.index(setting)
        labels.append(label if index == 0 else f"{label} #{index + 1}")
    return labels


def _distinct(names: list[str]) -> list[str]:
    """Run names as group labels, numbered where runs from different folders share a name."""
    return [name if names.count(name) == 1 else f"{name} #{names[:i].count(name) + 1}"
            for i, name in enumerate(names)]


def _shared_budget(configs: list[dict[str, Any]]) -> tuple[str, float | None]:
    """The budget kind and amount all runs were given, when they share exactly one; otherwise
    evaluations (what every run counts) with no common amount."""
    budgets = {tuple(sorted((k, v) for k, v in c.get("budget", {}).items() if v is not None))
               for c in configs}
    if len(budgets) == 1:
        (budget,) = budgets
        kind = {key: kind for kind, key in RUN_BUDGET_KEY.items()}.get(budget[0][0]) if budget else None
        if len(budget) == 1 and kind is not None:
            return kind, budget[0][1]
    return "evaluations", None
