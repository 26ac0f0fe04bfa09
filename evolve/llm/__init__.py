"""LLM access through the ``openai`` client: model pool, retries, usage and cost, response cache."""

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

__all__ = ["Completion", "EndpointFailing", "EndpointLost", "EndpointRefused", "LLMCancelled", "LLMClient", "LLMError", "LLMRequestError",
           "LLMRunFailure", "LLMUnreachable", "ModelSpec", "ReplayMiss", "ResponseCache", "RetriesExhausted", "Totals", "client_from_config",
           "request_key"]
