"""The one way a plugin (task, strategy, mutator) declares its parameters: a small pydantic model.

A plugin class sets ``Params`` to a subclass of :class:`Params` (field = parameter, with its type,
default and bounds); :func:`parse_params` turns a config mapping into that frozen model or raises
the plugin's :class:`~evolve.errors.UserError` subclass with a one-line message such as
``mutator 'numeric': max_edits: must be >= 1 (got 0)``. Config validation calls it without building
the plugin, so a plugin is built once (by the run) and a bug in its constructor is a bug, with its
traceback, never a "config error".
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from evolve.errors import UserError


class Params(BaseModel):
    """Base of every plugin's parameter model: unknown keys rejected, no coercion ("3" is not 3,
    ``true`` is not 1), frozen once parsed."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


P = TypeVar("P", bound=Params)


class _RelativeToConfig:
    """The mark of a path parameter (see :data:`ConfigPath`)."""

    def __repr__(self) -> str:
        return "RELATIVE_TO_CONFIG"


RELATIVE_TO_CONFIG = _RelativeToConfig()
#: A path parameter: written in a config, a relative value is read against the config file's folder
#: (like the seeds and ``task.file``), so a config works from any directory; ``~`` is expanded.
#: Given on the command line (``evolve eval --option``) it is relative to the current directory.
ConfigPath = Annotated[str, RELATIVE_TO_CONFIG]


def path_params(model: type[Params]) -> tuple[str, ...]:
    """Names of the :data:`ConfigPath` fields of ``model`` (``ConfigPath | None`` too)."""
    def marked(annotation: Any) -> bool:
        if get_origin(annotation) is Annotated:
            return any(m is RELATIVE_TO_CONFIG for m in annotation.__metadata__)
        return any(marked(arg) for arg in get_args(annotation))

    return tuple(name for name, f in model.model_fields.items()
                 if any(m is RELATIVE_TO_CONFIG for m in f.metadata) or marked(f.annotation))

_BOUNDS = {"greater_than_equal": ">= {ge}", "greater_than": "> {gt}", "less_than_equal": "<= {le}",
           "less_than": "< {lt}"}


def parse_params(model: type[P], data: Mapping[str, Any], owner: str, error: type[UserError],
                 noun: str = "option") -> P:
    """Validate ``data`` into ``model``; ``owner`` names the plugin in the message (``"mutator 'numeric'"``)."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        known = ", ".join(sorted(model.model_fields)) or "none"
        raise error(f"{owner}: unknown {noun} {field!r} (known: {known})") from None
    bound = _BOUNDS.get(err["type"])
    reason = ("must be " + bound.format(**err.get("ctx", {}))) if bound else err["msg"].removeprefix("Value error, ")
    where = f"{field}: " if field else ""
    got = "" if isinstance(err.get("input"), dict) else f" (got {err.get('input')!r})"
    raise error(f"{owner}: {where}{reason}{got}") from None


def plugin_class(registry: Mapping[str, str], name: str, base: type, what: str,
                 error: type[UserError]) -> Any:
    """The class registered as ``name`` in ``registry`` (name -> ``"module:Class"``, the one list of
    names), imported on first use so a registry costs nothing until a plugin is built."""
    if name not in registry:
        raise error(f"unknown {what} {name!r} (known: {', '.join(sorted(registry))})")
    module, _, attr = registry[name].partition(":")
    found = getattr(importlib.import_module(module), attr)
    assert isinstance(found, type) and issubclass(found, base), f"{registry[name]} is not a {base.__name__}"
    return found
