"""Mutators turn a parent program into a child program (or a rejection with its reason).

``make_mutator(name, llm=client, **params)`` is the registry the run loop uses; the LLM mutators
need ``llm`` (an :class:`evolve.llm.LLMClient`), the others ignore it. Exports are lazy: the numeric
mutators never import the LLM client (nor the OpenAI SDK).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evolve.mutators.base import EditError, Mutation, MutationContext, Mutator, MutatorError
from evolve.plugins import plugin_class

if TYPE_CHECKING:
    from evolve.llm.client import LLMClient
    from evolve.mutators.llm import LLMDiffMutator, LLMRewriteMutator
    from evolve.mutators.numeric import NumericMutator, RandomMutator

#: The one list of mutator names: name -> "module:class" (imported when first used).
MUTATORS: dict[str, str] = {
    "llm-diff": "evolve.mutators.llm:LLMDiffMutator",
    "llm-rewrite": "evolve.mutators.llm:LLMRewriteMutator",
    "numeric": "evolve.mutators.numeric:NumericMutator",
    "random": "evolve.mutators.numeric:RandomMutator",
}


def mutator_class(name: str) -> type[Mutator]:
    """The Mutator subclass registered as ``name``; raises :class:`MutatorError` for another name."""
    found: type[Mutator] = plugin_class(MUTATORS, name, Mutator, "mutator", MutatorError)
    return found


def make_mutator(name: str, *, llm: "LLMClient | None" = None, **params: Any) -> Mutator:
    """Build the mutator ``name``; a wrong name or parameter raises :class:`MutatorError` (one line)."""
    cls = mutator_class(name)
    cls.parse(params)
    if cls.needs_llm:
        if llm is None:
            raise MutatorError(f"mutator {name!r} needs an LLM client (configure the llm section)")
        return cls(llm, **params)  # type: ignore[call-arg]  # the llm-* constructors take the client first
    return cls(**params)


def check_mutator(name: str, params: dict[str, Any]) -> None:
    """Validate a mutator's name and parameters at config load, without building it."""
    mutator_class(name).parse(params)


def __getattr__(name: str) -> Any:
    homes = {"LLMDiffMutator": "llm-diff", "LLMRewriteMutator": "llm-rewrite", "NumericMutator": "numeric",
             "RandomMutator": "random"}
    if name not in homes:
        raise AttributeError(f"module 'evolve.mutators' has no attribute {name!r}")
    return mutator_class(homes[name])


__all__ = [
    "EditError", "LLMDiffMutator", "LLMRewriteMutator", "MUTATORS", "Mutation", "MutationContext",
    "Mutator", "MutatorError", "NumericMutator", "RandomMutator", "check_mutator", "make_mutator",
    "mutator_class",
]
