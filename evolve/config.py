"""Run configuration: YAML in, a typed, validated :class:`RunConfig` out.

Every error is one line naming the file, the key path and the reason, e.g.
``configs/x.yaml: budget.max_evaluations: must be >= 1 (got 0)``; an unknown key names the closest
known one. Loading writes nothing. Seed paths, ``task.file`` and the task's path options
(:data:`~evolve.plugins.ConfigPath`, e.g. microgpt's ``reference``) are resolved against the config
file's folder (the config, its seeds and its task travel together, so ``evolve run
/abs/configs/x.yaml`` works from anywhere);
``run.output_dir`` is resolved against the current directory (runs land where the user works).
Command-line overrides (``--set key.path=value``) are merged into the parsed YAML before validation,
so they get exactly the file's checks and messages; the effective config is what a run saves.
String values may name environment variables: ``${NAME}`` (must be set) or ``${NAME:-default}``,
so one config can point at whichever LLM endpoint the user's environment provides.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from pathlib import Path
from typing import Any, Literal, Sequence, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from evolve.errors import UserError
from evolve.mutators import MUTATORS
from evolve.plugins import path_params
from evolve.strategies import STRATEGIES
from evolve.tasks import Constraint, Objective, Task, TaskError, task_class


class ConfigError(UserError, ValueError):
    """A configuration problem; ``str()`` is the one-line message for the user."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunSection(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)
    output_dir: Path = Path("runs")
    seed: int = 0


class ObjectiveSpec(_Strict):
    name: str
    goal: Literal["min", "max"] = "min"
    unit: str = ""


class TaskSection(_Strict):
    #: A task of the ``evaluators`` package (``evolve tasks`` lists them) ...
    name: str | None = None
    #: ... or a task file (relative to the config file's folder): exactly one of the two.
    file: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    #: Override the task's objectives: names of task objectives, or full specs.
    objectives: list[str | ObjectiveSpec] | None = None
    #: Override the task's constraints, e.g. ["accuracy >= 0.99"].
    constraints: list[str] | None = None

    @model_validator(mode="after")
    def _one_task(self) -> "TaskSection":
        if (self.name is None) == (self.file is None):
            raise ValueError("give exactly one of name (a built-in task) and file (a task file)")
        if self.file is not None and not self.file.endswith(".py"):
            raise ValueError(f"file: a task file ends in .py (got {self.file!r})")
        return self

    @property
    def ref(self) -> str:
        """What :func:`evolve.tasks.task_class` takes: the task's name or its file."""
        return self.file if self.file is not None else str(self.name)


def _registered(name: str, names: dict[str, str], what: str) -> str:
    """The name, if the plugin registry (the one list of names) has it."""
    if name not in names:
        raise ValueError(f"unknown {what} (known: {', '.join(sorted(names))})")
    return name


class StrategySection(_Strict):
    name: str = "hillclimb"
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return _registered(v, STRATEGIES, "strategy")


class MutatorSection(_Strict):
    name: str
    weight: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return _registered(v, MUTATORS, "mutator")


class ModelSection(_Strict):
    name: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    #: USD per million tokens, used for cost accounting and the cost budget.
    price_in: float = Field(default=0.0, ge=0)
    price_out: float = Field(default=0.0, ge=0)


class LLMSection(_Strict):
    provider: Literal["openai", "local"] = "openai"
    base_url: str | None = None
    api_key_env: str | None = "OPENAI_API_KEY"
    #: For provider "local": the name of a locally installed model (see the README).
    local_model: str | None = None
    models: list[ModelSection] = Field(default_factory=list)
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = Field(default=4096, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    retries: int = Field(default=4, ge=0, le=20)
    #: Answer every request from the run's response cache (runs/<name>/llm-cache) and never call the
    #: endpoint: re-runs a finished run exactly, offline. A request missing from the cache is an error.
    replay: bool = False

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https:// (got {v!r})")
        return v

    @model_validator(mode="after")
    def _endpoint(self) -> "LLMSection":
        if self.provider == "openai" and not self.models:
            raise ValueError("models: at least one model is required")
        if self.provider == "local" and not self.local_model:
            raise ValueError("local_model: required when provider is 'local'")
        return self


class BudgetSection(_Strict):
    max_evaluations: int | None = Field(default=None, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)
    max_wall_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _bounded(self) -> "BudgetSection":
        if all(v is None for v in self.model_dump().values()):
            raise ValueError("set at least one of max_evaluations, max_tokens, max_cost_usd, max_wall_s")
        return self


class ParallelSection(_Strict):
    """How much runs at once: ``evaluations`` in flight (the evaluator's slots), ``llm_requests``
    mutations in flight, and how population strategies schedule them (``mode``):

    - ``batch`` (the default): propose one child per slot, mutate them all, evaluate them all, file
      the batch. Exactly reproducible: the same seed and LLM cache give the same archive, a resumed
      run files what an uninterrupted one would, and ``llm.replay`` works. Slots idle while the LLM
      answers and while the batch's slowest evaluation runs.
    - ``async``: steady state (:mod:`evolve.parallel.scheduler`); a child is proposed the moment a
      mutation slot frees, a mutated child starts the moment an evaluation slot frees, each result
      is filed as it completes. Keeps slots busy (``bench/utilisation.py``), but which child sees
      which results depends on timing, so it is not replayable (see the scheduler's docstring).

    ``batch`` is the default because reproducibility is a promise of every other part of evolve
    (resume, replay, comparisons of configs); ``async`` pays off when evaluations are slow or
    uneven, or the LLM is slow, and is one ``--set parallel.mode=async`` away.

    ``llm_requests`` defaults higher than ``evaluations`` (4 against 1): in async mode an answer
    takes longer than an evaluation as a rule, and the slots idle unless more children are being
    written than evaluated. Measured (``bench/p6_openevolve.py``, 2 slots, 0.1 s answers): 13.3
    iterations/s with 4 requests against 10.9 with 2. In batch mode a batch holds one child per slot,
    so requests beyond ``evaluations`` go unused and cost nothing; the budget is never overshot.
    """

    evaluations: int = Field(default=1, ge=1, le=64)
    llm_requests: int = Field(default=4, ge=1, le=64)
    mode: Literal["batch", "async"] = "batch"
    #: Where evaluations run: this machine ("local") or the nodes of a Ray cluster ("ray", the
    #: ``[ray]`` extra; see evolve/parallel/ray_cluster.py). The archive, strategy and LLM stay here.
    backend: Literal["local", "ray"] = "local"
    #: The Ray cluster for backend ray: "auto" (the one ``ray start`` runs on this machine, or
    #: RAY_ADDRESS) or the head node's HOST:PORT.
    address: str = "auto"

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        if v.startswith("ray://"):
            raise ValueError(RAY_CLIENT_REFUSED)
        host, sep, port = v.rpartition(":")
        if v != "auto" and not (sep and host and "/" not in host and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"expected auto or HOST:PORT of the Ray head node, e.g. 10.0.0.5:6379 (got {v!r})")
        return v


#: Why a Ray Client address is refused (here and for RAY_ADDRESS, in evolve.parallel.ray_cluster.connect).
RAY_CLIENT_REFUSED = ("Ray Client (ray://) addresses are not supported: evolve is the cluster's driver and must run "
                      "on one of its nodes (through Ray Client the run's actors die with the connection after a "
                      "30 s outage); run it on the head node with address auto or the head's HOST:PORT, e.g. "
                      "10.0.0.5:6379")


class SandboxSection(_Strict):
    timeout_s: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, ge=64)
    disk_mb: int | None = Field(default=None, ge=1)  # the job's working-directory quota (sandbox default 256)


class RunConfig(_Strict):
    run: RunSection
    task: TaskSection
    seeds: list[Path] = Field(min_length=1)
    strategy: StrategySection = StrategySection()
    mutators: list[MutatorSection] = Field(default_factory=lambda: [MutatorSection(name="numeric")], min_length=1)
    llm: LLMSection | None = None
    budget: BudgetSection
    #: Stop early once a feasible candidate also satisfies all of these (e.g. "params_unique <= 58").
    target: list[str] = Field(default_factory=list)
    parallel: ParallelSection = ParallelSection()
    sandbox: SandboxSection = SandboxSection()

    @model_validator(mode="after")
    def _llm_needed(self) -> "RunConfig":
        uses_llm = any(m.name.startswith("llm-") for m in self.mutators) or self.strategy.name == "agent"
        if uses_llm and self.llm is None:
            raise ValueError("llm: required by the llm-* mutators and the agent strategy")
        return self

    # --- derived -------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.run.output_dir / self.run.name

    def target_constraints(self) -> list[Constraint]:
        return [Constraint.parse(t) for t in self.target]

    def to_yaml_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p.startswith(("function-", "literal["))))


def _section_model(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc`` (None if it is free-form)."""
    model: type[BaseModel] | None = RunConfig
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        model = _model_in(field.annotation)
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _unknown_key(loc: tuple[Any, ...]) -> str:
    model = _section_model(loc[:-1])
    known = list(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key (known: {', '.join(known)})" if known else "unknown key"


def _reason(err: ErrorDetails) -> str:
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return _unknown_key(tuple(err["loc"]))
    if err["type"] == "missing":
        return "required key is missing"
    if "input" in err and err["type"] not in ("model_type",) and not isinstance(err["input"], dict):
        return f"{msg} (got {err['input']!r})"
    return msg


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(node: Any, source: str, where: str = "") -> Any:
    """Substitute ``${NAME}`` / ``${NAME:-default}`` in every string of the parsed YAML."""
    if isinstance(node, dict):
        return {k: _expand_env(v, source, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_env(v, source, f"{where}.{i}") for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def sub(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            if m.group(2) is None:
                raise ConfigError(f"{source}: {where}: environment variable {m.group(1)} is not set")
            return m.group(2)
        return value

    return _ENV.sub(sub, node)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``key.path=value`` → (["key", "path"], value parsed as a YAML scalar), or a one-line error."""
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"--set {text!r}: expected KEY.PATH=VALUE (e.g. budget.max_evaluations=50)")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML") from None
    return parts, value


def apply_overrides(data: Any, overrides: Sequence[str]) -> Any:
    """A copy of the parsed YAML with each ``key.path=value`` set (creating sections as needed;
    a number indexes a list, e.g. ``mutators.0.weight=2``)."""
    import copy

    data = copy.deepcopy(data) if isinstance(data, dict) else {}
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = data
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"--set {text!r}: {'.'.join(parts[:i])} has no item {part}")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if not isinstance(node.get(part), (dict, list)):
                        node[part] = {}
                    node = node[part]
            else:
                raise ConfigError(f"--set {text!r}: {'.'.join(parts[:i])} is not a section")
    return data


def relative_to_config(path: str, base_dir: Path) -> str:
    """``path`` as written in a config whose folder is ``base_dir``: ``~`` expanded, a relative path
    read against that folder (a config is portable with its seeds, task and data, wherever ``evolve``
    is started). The one rule for every path a config holds: seeds, ``task.file``, and the task's
    :data:`~evolve.plugins.ConfigPath` options."""
    expanded = Path(path).expanduser()
    return str(expanded if expanded.is_absolute() else base_dir / expanded)


def _resolve_paths(data: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """Seed paths and ``task.file`` read against ``base_dir`` (:func:`relative_to_config`)."""
    if base_dir is None:
        return data
    if isinstance(data.get("seeds"), list):
        data["seeds"] = [relative_to_config(s, base_dir) if isinstance(s, str) else s for s in data["seeds"]]
    task = data.get("task")
    if isinstance(task, dict) and isinstance(task.get("file"), str):
        data["task"] = {**task, "file": relative_to_config(task["file"], base_dir)}
    return data


def _resolve_task_paths(cfg: "RunConfig", base_dir: Path | None) -> "RunConfig":
    """The task's path options (declared :data:`~evolve.plugins.ConfigPath`) read against
    ``base_dir``, like the seeds; needs the task class, so it runs once the sections are valid."""
    if base_dir is None:
        return cfg
    try:
        params = task_class(cfg.task.ref).Params
    except UserError:
        return cfg  # an unknown task: check_task reports it, under its key
    names = path_params(params) if params is not None else ()
    options = {k: relative_to_config(v, base_dir) if k in names and isinstance(v, str) else v
               for k, v in cfg.task.options.items()}
    if options == cfg.task.options:
        return cfg
    return cfg.model_copy(update={"task": cfg.task.model_copy(update={"options": options})})


def parse_config(data: Any, source: str = "<config>", base_dir: Path | None = None,
                 overrides: Sequence[str] = ()) -> RunConfig:
    """Validate a mapping (already parsed YAML) into a :class:`RunConfig`, or raise ConfigError.
    Relative seed paths, ``task.file`` and the task's path options are resolved against ``base_dir``
    (the config file's folder) when given."""
    if not isinstance(data, dict) and not overrides:
        raise ConfigError(f"{source}: expected a mapping of sections at the top level")
    if isinstance(data, dict) and "variants" in data and "base" in data:
        raise ConfigError(f"{source}: this is a comparison config (base, variants): run it with `evolve compare {source}`")
    data = _resolve_paths(_expand_env(apply_overrides(data, overrides), source), base_dir)
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = _loc(err["loc"]) or "(top level)"
        raise ConfigError(f"{_blame(source, where, overrides)}: {where}: {_reason(err)}") from None
    cfg = _resolve_task_paths(cfg, base_dir)
    try:
        _check_semantics(cfg, source)
    except ConfigError as exc:
        raise reblamed(exc, source, overrides) from None
    return cfg


def reblamed(exc: ConfigError, source: str, overrides: Sequence[str]) -> ConfigError:
    """``exc`` (``source: key.path: reason``) naming the ``--set`` that put the bad value there."""
    message = str(exc)
    if not overrides or not message.startswith(f"{source}: "):
        return exc
    rest = message[len(source) + 2:]
    return ConfigError(f"{_blame(source, rest.partition(':')[0], overrides)}: {rest}")


def _blame(source: str, where: str, overrides: Sequence[str]) -> str:
    """Name the ``--set`` that put the bad value there, else the file."""
    for text in reversed(overrides):
        key = text.partition("=")[0].strip()
        if where == key or where.startswith(key + ".") or key.startswith(where + "."):
            return f"--set {text}"
    return source


def load_config(path: Path | str, overrides: Sequence[str] = ()) -> RunConfig:
    """Read and validate a YAML run configuration, with command-line overrides merged in."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{line}: invalid YAML: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    return parse_config(data, str(path), base_dir=path.resolve().parent, overrides=overrides)


def _check_semantics(cfg: RunConfig, source: str) -> None:
    """Checks that need more than types: seed files exist, the task and its options are known."""
    for i, seed in enumerate(cfg.seeds):
        if not seed.is_file():
            raise ConfigError(f"{source}: seeds.{i}: no such seed file {str(seed)!r}")
    for key, check in (("task", lambda: check_task(cfg)), ("target", cfg.target_constraints)):
        try:
            check()
        except UserError as exc:
            raise ConfigError(f"{source}: {key}: {exc}") from None
    if cfg.parallel.backend == "ray" and not _ray_installed():
        raise ConfigError(f"{source}: parallel.backend: ray needs Ray, which is not installed: pip install -e '.[ray]'")
    total = sum(m.weight for m in cfg.mutators)
    if not math.isfinite(total):
        raise ConfigError(f"{source}: mutators: weights must be finite")
    _check_plugins(cfg, source)


def _ray_installed() -> bool:
    """Whether Ray can be imported (without importing it: a config check stays light)."""
    import importlib.util

    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        return False


def _check_plugins(cfg: RunConfig, source: str) -> None:
    """Mutator and strategy parameters are validated by their own declarations, at load time. Only
    a user error becomes a config error: an exception of another class is a bug and propagates."""
    from evolve.mutators import check_mutator
    from evolve.strategies import strategy_class

    for i, m in enumerate(cfg.mutators):
        try:
            check_mutator(m.name, dict(m.params))
        except UserError as exc:
            raise ConfigError(f"{source}: mutators.{i}.params: {exc}") from None
    try:
        strategy_class(cfg.strategy.name).parse(dict(cfg.strategy.params))
    except UserError as exc:
        raise ConfigError(f"{source}: strategy.params: {exc}") from None


def build_task(cfg: RunConfig, hidden_seed: int | None = None) -> Task:
    """The run's task: its options, the config's objectives/constraints, and (for a task that has
    one) the run's hidden seed unless the config fixes it. The one way a task is built from a config;
    config validation checks the same inputs without building it (:func:`check_task`)."""
    cls = task_class(cfg.task.ref)
    options = dict(cfg.task.options)
    if cls.Params is not None and "hidden_seed" in cls.Params.model_fields and options.get("hidden_seed") is None and hidden_seed is not None:
        options["hidden_seed"] = hidden_seed
    return cls(objectives=resolve_objectives(cfg, cls.objectives),
               constraints=resolve_constraints(cfg, cls.constraints), **options)


def check_task(cfg: RunConfig) -> None:
    """Raise a :class:`~evolve.errors.UserError` for an unknown task, a bad option, objective or
    constraint, without building the task (a task is built once, by the run)."""
    cls = task_class(cfg.task.ref)
    cls.parse_options(dict(cfg.task.options))
    resolve_objectives(cfg, cls.objectives)
    resolve_constraints(cfg, cls.constraints)


def resolve_objectives(cfg: RunConfig, task_objectives: tuple[Objective, ...]) -> tuple[Objective, ...]:
    """The run's objectives: the task's, unless the config overrides them."""
    if cfg.task.objectives is None:
        return task_objectives
    known = {o.name: o for o in task_objectives}
    out = []
    for item in cfg.task.objectives:
        if isinstance(item, str):
            if item not in known:
                raise TaskError(f"objectives: {item!r} is not an objective of task {cfg.task.ref!r} "
                                f"(known: {', '.join(known)}); give {{name, goal}} to use another metric")
            out.append(known[item])
        else:
            out.append(Objective(item.name, item.goal, item.unit))
    if not out:
        raise TaskError("objectives: at least one objective is required")
    return tuple(out)


def resolve_constraints(cfg: RunConfig, task_constraints: tuple[Constraint, ...]) -> tuple[Constraint, ...]:
    if cfg.task.constraints is None:
        return task_constraints
    return tuple(Constraint.parse(c) for c in cfg.task.constraints)
