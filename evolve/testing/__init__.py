"""Test doubles that are real: an OpenAI-compatible HTTP server on loopback with scripted replies."""

from evolve.testing.fake_llm import (
    Die,
    FakeLLMServer,
    Garbage,
    HTTPFault,
    Reply,
    Slow,
    Truncated,
    count_tokens,
    forbidden,
    model_not_found,
    rate_limited,
    server_error,
    unauthorized,
)

__all__ = [
    "Die", "FakeLLMServer", "Garbage", "HTTPFault", "Reply", "Slow", "Truncated",
    "count_tokens", "forbidden", "model_not_found", "rate_limited", "server_error", "unauthorized",
]
