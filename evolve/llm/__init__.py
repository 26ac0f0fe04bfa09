"""LLM access through the ``openai`` client: model pool, retries, usage and cost, response cache."""

from evolve.llm.cache import ResponseCache, request_key
from evolve.llm.client import Completion, LLMClient, LLMError, LLMRequestError, ModelSpec, Usage, client_from_config

__all__ = ["Completion", "LLMClient", "LLMError", "LLMRequestError", "ModelSpec", "ResponseCache", "Usage", "client_from_config",
           "request_key"]
