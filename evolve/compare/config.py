"""COMPARE.yaml: one ordinary run config ("base"), variants that override parts of it, repeats.

A comparison is only fair when every cell spends the same budget, so the budget is set once, at
the top level, as exactly one kind (evaluations, tokens, cost or wall time), and ``base`` may not
carry its own. Each cell is validated as a complete :class:`~evolve.config.RunConfig`, so every
rule of run configs holds here too. Errors are one line ``file: key.path: reason``::

    compare.yaml: variants.1.strategy.name: Input should be 'islands', ... (got 'islnds')
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evolve.config import ConfigError, RunConfig, apply_overrides, parse_config, reblamed, resolve_objectives
from evolve.tasks import Constraint, Objective, TaskError, task_class

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
BudgetKind = Literal["evaluations", "tokens", "cost_usd", "wall_s"]
BUDGET_KINDS: tuple[str, ...] = ("evaluations", "tokens", "cost_usd", "wall_s")
#: The run-config budget key each comparison budget kind sets.
RUN_BUDGET_KEY = {"evaluations": "max_evaluations", "tokens": "max_tokens",
                  "cost_usd": "max_cost_usd", "wall_s": "max_wall_s"}
#: Keys of ``base`` that a comparison sets itself.
_OWNED_BY_COMPARISON = {
    "run": "set name and output_dir at the top level; repeats choose the seeds",
    "budget": "set the budget at the top level (one kind, applied equally to every cell)",
    "target": "set target at the top level: a comparison measures it without stopping runs early",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CompareBudget(_Strict):
    evaluations: int | None = Field(default=None, ge=1)
    tokens: int | None = Field(default=None, ge=1)
    cost_usd: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    wall_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_kind(self) -> "CompareBudget":
        given = [k for k, v in self.model_dump().items() if v is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of evaluations, tokens, cost_usd, wall_s "
                             f"(got {', '.join(given) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k, v in self.model_dump().items() if v is not None)

    @property
    def amount(self) -> float:
        value: float = getattr(self, self.kind)
        return value


class Variant(_Strict):
    """What one arm of the comparison changes in ``base``; each given section replaces base's."""

    name: str = Field(pattern=NAME_PATTERN, max_length=40)
    strategy: dict[str, Any] | None = None
    mutators: list[dict[str, Any]] | None = None
    llm: dict[str, Any] | None = None
    #: Shorthand for replacing only ``llm.models``.
    models: list[dict[str, Any]] | None = None


class CompareConfig(_Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=60)
    output_dir: Path = Path("runs")
    base: dict[str, Any]
    variants: list[Variant] = Field(min_length=1)
    repeats: int = Field(default=3, ge=1, le=100)
    #: Repeat k runs with run.seed = seed + k.
    seed: int = 0
    budget: CompareBudget
    #: Measured, never used to stop a cell: budget spent until a feasible candidate meets all of these.
    target: list[str] = Field(default_factory=list)
    #: Hypervolume reference point per objective, in the objective's own units; derived if absent.
    reference: dict[str, float] | None = None

    @model_validator(mode="after")
    def _shape(self) -> "CompareConfig":
        for key, why in _OWNED_BY_COMPARISON.items():
            if key in self.base:
                raise ValueError(f"base.{key}: {why}")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variants: names must be unique (got {', '.join(names)})")
        return self

    @property
    def directory(self) -> Path:
        """Where the comparison keeps its cells (one run directory each) and its results."""
        return self.output_dir / self.name


@dataclass(frozen=True)
class Cell:
    """One run of the matrix: a variant at one seed, as a complete run config."""

    variant: str
    seed: int
    config: RunConfig

    @property
    def name(self) -> str:
        return self.config.run.name

    @property
    def run_dir(self) -> Path:
        return self.config.run_dir


@dataclass(frozen=True)
class CompareSpec:
    """A validated comparison: its config, every cell, and what the statistics need to know."""

    config: CompareConfig
    cells: tuple[Cell, ...]
    objectives: tuple[Objective, ...]
    source: str
    overrides: tuple[str, ...] = ()  # the command line's --set values, merged into the file

    @property
    def command(self) -> str:
        """The command that runs (or continues) this comparison, overrides included."""
        return " ".join(["evolve compare", shlex.quote(self.source),
                         *(f"--set {shlex.quote(o)}" for o in self.overrides)])

    @property
    def directory(self) -> Path:
        return self.config.directory


def load_compare(path: Path | str, overrides: Sequence[str] = ()) -> CompareSpec:
    """Read and validate a COMPARE.yaml file, with command-line overrides (``--set key.path=value``,
    e.g. ``repeats=2`` or ``base.parallel.evaluations=1``) merged in before validation."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such comparison file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{line}: invalid YAML: {getattr(exc, 'problem', None) or 'invalid YAML'}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    return parse_compare(data, str(path), base_dir=path.resolve().parent, overrides=overrides)


def parse_compare(data: Any, source: str = "<compare>", base_dir: Path | None = None,
                  overrides: Sequence[str] = ()) -> CompareSpec:
    """Validate a mapping (parsed YAML) into a :class:`CompareSpec`, or raise ConfigError. Seed
    paths are relative to ``base_dir`` (the comparison file's folder) when given, as in a run config;
    ``overrides`` are merged in first, so they get the file's checks, and an error names the
    ``--set`` that caused it."""
    if overrides:
        data = apply_overrides(data, overrides)
    try:
        return _parse_compare(data, source, base_dir, tuple(overrides))
    except ConfigError as exc:
        raise reblamed(exc, source, overrides) from None


def _parse_compare(data: Any, source: str, base_dir: Path | None, overrides: tuple[str, ...]) -> CompareSpec:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with name, base, variants and budget")
    try:
        cfg = CompareConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        reason = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            reason = "unknown key"
        elif err["type"] == "missing":
            reason = "required key is missing"
        if where == "(top level)" and ": " in reason:  # a model-level check names its own key
            where, reason = reason.split(": ", 1)
        raise ConfigError(f"{source}: {where}: {reason}") from None
    _cell_config(cfg, None, cfg.seed, source, base_dir)  # base errors are reported as base.*, once
    cells = tuple(Cell(v.name, cfg.seed + k, _cell_config(cfg, i, cfg.seed + k, source, base_dir))
                  for i, v in enumerate(cfg.variants) for k in range(cfg.repeats))
    objectives = _objectives(cells[0].config, source)
    _check_measures(cfg, objectives, source)
    return CompareSpec(cfg, cells, objectives, source, overrides)


def _cell_config(cfg: CompareConfig, index: int | None, seed: int, source: str,
                 base_dir: Path | None = None) -> RunConfig:
    """The run config of variant ``index`` (None: base alone) at ``seed``; errors name the key
    in the comparison file."""
    data = dict(cfg.base)
    variant = cfg.variants[index] if index is not None else None
    name = f"{variant.name}-s{seed}" if variant else "base"
    data["run"] = {"name": name, "output_dir": str(cfg.directory), "seed": seed}
    data["budget"] = {RUN_BUDGET_KEY[cfg.budget.kind]: cfg.budget.amount}
    where = "base"
    if variant is not None:
        where = f"variants.{index}"
        for key in ("strategy", "mutators", "llm"):
            if getattr(variant, key) is not None:
                data[key] = getattr(variant, key)
        if variant.models is not None:
            if not isinstance(data.get("llm"), dict):
                raise ConfigError(f"{source}: variants.{index}.models: needs an llm section in base or the variant")
            data["llm"] = {**data["llm"], "models": variant.models}
    prefix = f"{source}: {where}"
    try:
        run_cfg = parse_config(data, prefix, base_dir=base_dir)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace(f"{prefix}: ", f"{prefix}.", 1)) from None
    if variant is not None and cfg.budget.kind in ("tokens", "cost_usd") and not spends_tokens(run_cfg):
        raise ConfigError(f"{prefix}: a {cfg.budget.kind} budget never ends a run that uses no LLM "
                          "(add an llm-* mutator or an agent strategy, or budget evaluations or wall_s)")
    return run_cfg


def spends_tokens(cfg: RunConfig) -> bool:
    """Does a run with this config spend LLM tokens (so a token or cost budget can end it)?"""
    return any(m.name.startswith("llm-") for m in cfg.mutators) or cfg.strategy.name.startswith("agent")


def _objectives(cfg: RunConfig, source: str) -> tuple[Objective, ...]:
    try:
        return resolve_objectives(cfg, task_class(cfg.task.ref).objectives)
    except TaskError as exc:  # pragma: no cover - parse_config has already checked this task
        raise ConfigError(f"{source}: base.task: {exc}") from None


def _check_measures(cfg: CompareConfig, objectives: tuple[Objective, ...], source: str) -> None:
    for i, text in enumerate(cfg.target):
        try:
            Constraint.parse(text)
        except TaskError as exc:
            raise ConfigError(f"{source}: target.{i}: {exc}") from None
    if cfg.reference is not None:
        names = [o.name for o in objectives]
        if sorted(cfg.reference) != sorted(names):
            raise ConfigError(f"{source}: reference: give a value for each objective and nothing else "
                              f"({', '.join(names)}; got {', '.join(cfg.reference) or 'none'})")
