"""LLM access through the ``openai`` client: model pool, retries, usage and cost, response cache.

Exports are lazy: the run imports :mod:`evolve.llm.faults` (its failure types) for every run, and
a run without an LLM must not pay for the OpenAI SDK's import (~0.6 s of a numeric run's start).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evolve.llm.cache import ResponseCache, request_key
    from evolve.llm.client import Completion, LLMClient, ModelSpec, Totals, client_from_config
    from evolve.llm.faults import (
        EndpointFailing,
        EndpointLost,
        EndpointRefused,
        LLMCancelled,
        LLMError,
        LLMRequestError,
        LLMRunFailure,
        LLMUnreachable,
        ReplayMiss,
        RetriesExhausted,
    )

#: Each public name -> the module that defines it.
_HOMES = {
    **dict.fromkeys(("ResponseCache", "request_key"), "evolve.llm.cache"),
    **dict.fromkeys(("Completion", "LLMClient", "ModelSpec", "Totals", "client_from_config"), "evolve.llm.client"),
    **dict.fromkeys(("EndpointFailing", "EndpointLost", "EndpointRefused", "LLMCancelled", "LLMError",
                     "LLMRequestError", "LLMRunFailure", "LLMUnreachable", "ReplayMiss", "RetriesExhausted"),
                    "evolve.llm.faults"),
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'evolve.llm' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)


__all__ = ["Completion", "EndpointFailing", "EndpointLost", "EndpointRefused", "LLMCancelled", "LLMClient", "LLMError",
           "LLMRequestError", "LLMRunFailure", "LLMUnreachable", "ModelSpec", "ReplayMiss", "ResponseCache",
           "RetriesExhausted", "Totals", "client_from_config", "request_key"]
