"""Test doubles that are real: an OpenAI-compatible HTTP server on loopback with scripted replies."""

from evolve.testing.fake_llm import (
    FakeLLMServer,
    Garbage,
    HTTPFault,
    Reply,
    Slow,
    Truncated,
    count_tokens,
    rate_limited,
    server_error,
)

__all__ = [
    "FakeLLMServer", "Garbage", "HTTPFault", "Reply", "Slow", "Truncated",
    "count_tokens", "rate_limited", "server_error",
]
