"""The mutator interface: a parent program (plus context) in, one child program (or a rejection) out.

Mutators never evaluate anything. A child that is known to be useless before evaluation (it does not
parse, its SEARCH text matched nothing, it changes nothing, it edits outside the EVOLVE-BLOCK
regions) comes back with ``source=None`` and the reason in ``error``, so the run loop can record it
without spending an evaluation.
"""

from __future__ import annotations

import ast
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from evolve import pyast
from evolve.candidate import Candidate
from evolve.errors import UserError
from evolve.plugins import Params as PluginParams
from evolve.plugins import parse_params
from evolve.tasks import Constraint, Objective
from evolve.usage import Usage


@dataclass(frozen=True)
class MutationContext:
    """What a mutator may know: the filed parent and inspirations, the goals, the recent history."""

    parent: Candidate
    inspirations: list[Candidate] = field(default_factory=list)
    objectives: tuple[Objective, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    task_description: str = ""
    history: list[str] = field(default_factory=list)  # recent one-line summaries, oldest first
    rng: random.Random = field(default_factory=random.Random)


@dataclass(frozen=True)
class Mutation:
    """A mutator's answer: a child's source (not yet judged), or a rejection with its reason."""

    source: str | None  # None: rejected before evaluation, reason in ``error``
    mutator: str
    description: str = ""  # one human-readable line saying what changed
    usage: Usage = Usage()  # what the reply cost, and its model (nothing for a numeric mutation)
    error: str | None = None
    #: Why it was rejected, as counted in the run log: "unparseable", "invalid edit", "request rejected"...
    kind: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # JSON-able details (edited sites, cache hit...)

    @property
    def rejected(self) -> bool:
        return self.source is None


class MutatorError(UserError, ValueError):
    """A bad mutator name or parameter; one line."""


class EditError(ValueError):
    """An edit cannot be applied; the message is the one-line rejection reason."""


class Mutator(ABC):
    """Base class. Subclasses set ``name`` and implement :meth:`mutate`.

    ``feedback`` lets the run loop tell an adaptive mutator whether a child it produced improved on
    its parent; ``get_state``/``set_state`` carry whatever it learned across a resume (JSON-able).
    """

    name: str = ""
    #: The mutator's parameters (see :mod:`evolve.plugins`); the constructor takes exactly these.
    Params: ClassVar[type[PluginParams]] = PluginParams
    #: Built with an LLM client as first argument (the llm-* mutators).
    needs_llm: ClassVar[bool] = False

    @classmethod
    def parse(cls, params: dict[str, Any]) -> PluginParams:
        """Validate ``params`` (at config load and at construction); raises :class:`MutatorError`."""
        return parse_params(cls.Params, params, f"mutator {cls.name!r}", MutatorError)

    @abstractmethod
    def mutate(self, ctx: MutationContext) -> Mutation: ...

    def feedback(self, mutation: Mutation, improved: bool) -> None:
        """Called once per evaluated child; the default mutator learns nothing."""

    def get_state(self) -> dict[str, Any]:
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_state` returned."""

    def reject(self, error: str, kind: str = "invalid edit", **fields: Any) -> Mutation:
        return Mutation(source=None, mutator=self.name, description=f"rejected: {error}", error=error, kind=kind,
                        **fields)


def same_code(a: str, b: str) -> bool:
    """Whether two parsable programs differ only in formatting and comments (same AST)."""
    try:
        return ast.dump(pyast.parse(a)) == ast.dump(pyast.parse(b))
    except (SyntaxError, ValueError):
        return False


def syntax_error(source: str) -> str | None:
    """None when ``source`` parses, else a one-line reason naming the line."""
    try:
        pyast.parse(source)
    except SyntaxError as exc:
        return f"result does not parse: line {exc.lineno}: {exc.msg}"
    except ValueError as exc:  # e.g. null bytes
        return f"result does not parse: {exc}"
    return None
