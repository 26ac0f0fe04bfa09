"""What changed between the config a run was started (or last resumed) with and the one resuming it.

``--resume`` used to accept any config silently, so a run could switch strategy or model halfway
and still be compared as one experiment. The keys fall in two groups:

- **free**: budgets and targets (say how: grown, shrunk, added, removed), and the plumbing that
  cannot change what is computed: where the endpoint lives and how long to wait for it
  (``llm.base_url``, ``api_key_env``, ``timeout_s``, ``retries``, ``replay``), how many requests
  run at once (``parallel.llm_requests``: each child has its own RNG, so thread timing never
  changes results), where evaluations run (``parallel.backend``, ``parallel.address``: a node runs
  the same evaluation as this machine), where the run directory lives.
- **experiment**: everything else (task, seeds, strategy, mutators, models and sampling, the run
  seed, the batch size, the sandbox limits). Resuming with such a change needs ``--force``.

Both configs are the plain dicts of ``RunConfig.to_yaml_dict()``; nested dicts are compared key by
key (a change names ``strategy.params.migration_interval``, not the whole dict), lists (seeds,
mutators, models) whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Keys (dotted) or key prefixes that may differ on resume without changing the experiment.
FREE_PREFIXES = ("budget.", "target")
FREE_KEYS = frozenset({"run.output_dir", "llm.base_url", "llm.api_key_env", "llm.timeout_s", "llm.retries",
                       "llm.replay", "parallel.llm_requests", "parallel.backend",
                       "parallel.address"})


@dataclass(frozen=True)
class Change:
    key: str
    old: Any
    new: Any

    def describe(self) -> str:
        """One line, e.g. ``budget.max_evaluations: 30 -> 60 (grown)``."""
        text = f"{self.key}: {_show(self.old)} -> {_show(self.new)}"
        if self.key.startswith("budget."):
            if self.old is None:
                text += " (added)"
            elif self.new is None:
                text += " (removed)"
            elif isinstance(self.old, (int, float)) and isinstance(self.new, (int, float)):
                text += " (grown: the run goes on)" if self.new > self.old else " (shrunk: the run may stop at once)"
        return text


@dataclass(frozen=True)
class ConfigChanges:
    free: tuple[Change, ...] = ()
    experiment: tuple[Change, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.free or self.experiment)

    def notes(self) -> list[str]:
        """What the user is told on resume, one line per changed key."""
        return [f"config changed since the run's last session: {c.describe()}" for c in self.free + self.experiment]

    def refusal(self, run: str) -> str | None:
        """The one-line error when the experiment changed (resuming needs ``--force``), else None."""
        if not self.experiment:
            return None
        changed = "; ".join(c.describe() for c in self.experiment)
        return (f"run {run!r} was started with a different experiment ({changed}); "
                "pass --force to resume it anyway, or choose another run.name")


def compare_configs(saved: dict[str, Any], new: dict[str, Any]) -> ConfigChanges:
    """The differing keys of two config dicts, sorted into free and experiment changes."""
    old_flat, new_flat = _flatten(saved), _flatten(new)
    free: list[Change] = []
    experiment: list[Change] = []
    for key in sorted(old_flat.keys() | new_flat.keys()):
        old, now = old_flat.get(key), new_flat.get(key)
        if old == now:
            continue
        change = Change(key, old, now)
        (free if key in FREE_KEYS or key.startswith(FREE_PREFIXES) else experiment).append(change)
    return ConfigChanges(tuple(free), tuple(experiment))


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys down to the leaves (``strategy.params.islands``), so a refusal names the one
    parameter that changed, not the whole dict; an empty dict is the same as no key."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
