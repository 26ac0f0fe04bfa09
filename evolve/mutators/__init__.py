"""Mutators turn a parent program into a child program (or a rejection with its reason).

``make_mutator(name, llm=client, **params)`` is the registry the run loop uses; the LLM mutators
need ``llm`` (an :class:`evolve.llm.LLMClient`), the others ignore it.
"""

from __future__ import annotations

import inspect
from typing import Any

from evolve.llm.client import LLMClient
from evolve.mutators.base import EditError, Mutation, MutationContext, Mutator
from evolve.mutators.llm import LLMDiffMutator, LLMRewriteMutator
from evolve.mutators.numeric import NumericMutator, RandomMutator

MUTATORS: dict[str, type[Mutator]] = {
    "llm-diff": LLMDiffMutator,
    "llm-rewrite": LLMRewriteMutator,
    "numeric": NumericMutator,
    "random": RandomMutator,
}


def make_mutator(name: str, *, llm: LLMClient | None = None, **params: Any) -> Mutator:
    """Build the mutator ``name``; a wrong name or option raises ValueError with a one-line message."""
    cls = _checked_class(name, params)
    if _needs_llm(cls):
        if llm is None:
            raise ValueError(f"mutator {name!r} needs an LLM client (configure the llm section)")
        return cls(llm, **params)
    return cls(**params)


def check_mutator(name: str, params: dict[str, Any]) -> None:
    """Validate a mutator's name and options at config load, before any LLM client exists.

    Mutators without an LLM are built once (their constructors check values); LLM mutators get
    their option names checked here and their values when the run builds them.
    """
    cls = _checked_class(name, params)
    if not _needs_llm(cls):
        cls(**params)


def _checked_class(name: str, params: dict[str, Any]) -> type[Mutator]:
    cls = MUTATORS.get(name)
    if cls is None:
        raise ValueError(f"unknown mutator {name!r} (known: {', '.join(sorted(MUTATORS))})")
    signature = inspect.signature(cls.__init__).parameters
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    options = {n for n, p in signature.items() if p.kind in named and n not in ("self", "llm")}
    unknown = sorted(set(params) - options)
    if unknown:
        raise ValueError(f"mutator {name!r}: unknown option {unknown[0]!r} (known: {', '.join(sorted(options)) or 'none'})")
    return cls


def _needs_llm(cls: type[Mutator]) -> bool:
    return "llm" in inspect.signature(cls.__init__).parameters


__all__ = [
    "EditError", "LLMDiffMutator", "LLMRewriteMutator", "MUTATORS", "Mutation", "MutationContext",
    "Mutator", "NumericMutator", "RandomMutator", "check_mutator", "make_mutator",
]
