"""The one way evolve talks to a language model: an OpenAI-compatible Chat Completions endpoint.

``LLMClient.complete(messages, rng)`` picks a model by weight with the caller's RNG (so a seeded run
makes the same choices), retries transient failures itself with exponential backoff and jitter,
accounts tokens and dollars, and caches every answer on disk so a run can be replayed exactly without
the endpoint. A per-request seed, drawn from the same RNG, is sent to the server and is part of the
cache key: two identical prompts at different points of a run are different samples, while a
resumed run (same RNG state) re-issues the same requests and gets the cached answers back.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import openai

from evolve.errors import UserError
from evolve.llm.cache import ResponseCache, request_key

#: HTTP statuses worth retrying: timeouts, conflicts, rate limits, server errors.
RETRY_STATUSES = frozenset({408, 409, 429})
#: HTTP statuses that reject this one request (e.g. prompt too long) rather than the whole setup.
REQUEST_STATUSES = frozenset({400, 413, 422})
DUMMY_KEY = "sk-local-no-key"


class LLMError(UserError, RuntimeError):
    """The endpoint cannot serve us (unreachable, auth, retries exhausted, replay miss); one line."""


class LLMUnreachable(LLMError):
    """Nothing answers at the endpoint (refused, timed out): the caller may name the alternatives."""


class LLMRequestError(LLMError):
    """The endpoint rejected this particular request (HTTP 400/413/422); other requests may work."""


@dataclass(frozen=True)
class ModelSpec:
    """One model of the pool: its name at the endpoint, its sampling weight and its prices."""

    name: str
    weight: float = 1.0
    price_in_per_mtok: float = 0.0  # USD per million prompt tokens
    price_out_per_mtok: float = 0.0  # USD per million completion tokens

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.price_in_per_mtok + completion_tokens * self.price_out_per_mtok) / 1e6


@dataclass
class Completion:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cached: bool
    latency_s: float
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # OpenAI shape: id, type, function
    finish_reason: str | None = None
    attempts: int = 1

    def as_message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation (tool-calling loops need it)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        return message


@dataclass
class Usage:
    """Running totals of one client. Costs of cached answers count too, so a replay budgets alike."""

    requests: int = 0  # complete() calls that returned
    cache_hits: int = 0
    retries: int = 0  # re-sent requests, including those of calls that finally failed
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class _BadResponse(Exception):
    """A 200 answer that is not a usable chat completion."""


def _one_line(text: object, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def is_loopback(base_url: str) -> bool:
    host = urlparse(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _connection_reason(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__ or exc
    text = str(cause)
    if "refused" in text.lower():
        return "connection refused"
    return _one_line(f"{type(cause).__name__}: {text}" if text else type(cause).__name__, 160)


class LLMClient:
    """A pool of models behind one OpenAI-compatible ``base_url``.

    ``api_key_env`` names the environment variable holding the key; None means no key is needed
    (a dummy is sent). A named but unset variable is an error, except for a loopback endpoint or
    in replay mode. ``replay=True`` answers only from ``cache_dir`` and never contacts the endpoint.
    """

    def __init__(
        self,
        base_url: str,
        models: list[ModelSpec],
        *,
        api_key_env: str | None = None,
        temperature: float = 0.7,
        max_tokens: int = 2048,
        timeout_s: float = 120.0,
        retries: int = 4,
        backoff_s: float = 1.0,
        backoff_max_s: float = 30.0,
        cache_dir: str | os.PathLike[str] | None = None,
        replay: bool = False,
        max_concurrency: int = 4,
        send_seed: bool = True,
    ) -> None:
        if not models:
            raise LLMError("LLM client: no models configured")
        if any(m.weight < 0 for m in models) or sum(m.weight for m in models) <= 0:
            raise LLMError("LLM client: model weights must be >= 0 with a positive sum")
        if replay and cache_dir is None:
            raise LLMError("LLM client: replay needs a cache_dir to replay from")
        self.base_url = base_url.rstrip("/")
        self.models = list(models)
        self.temperature, self.max_tokens = temperature, max_tokens
        self.timeout_s, self.retries = timeout_s, retries
        self.backoff_s, self.backoff_max_s = backoff_s, backoff_max_s
        self.replay, self.send_seed = replay, send_seed
        self.cache = ResponseCache(Path(cache_dir)) if cache_dir is not None else None
        self._api_key = self._resolve_key(api_key_env)
        self._client = openai.OpenAI(base_url=self.base_url, api_key=self._api_key, timeout=timeout_s, max_retries=0)
        self._slots = threading.BoundedSemaphore(max(1, max_concurrency))
        self._jitter = random.Random()  # timing only: never touches the caller's RNG stream
        self._lock = threading.Lock()
        self._usage = Usage()

    def _resolve_key(self, api_key_env: str | None) -> str:
        if api_key_env is None:
            return DUMMY_KEY
        key = os.environ.get(api_key_env)
        if key:
            return key
        if self.replay or is_loopback(self.base_url):
            return DUMMY_KEY
        raise LLMError(f"LLM endpoint {self.base_url} needs an API key: environment variable {api_key_env} is not set")

    # --- public API --------------------------------------------------------------------------
    @property
    def usage(self) -> Usage:
        """A snapshot of the running totals."""
        with self._lock:
            return replace(self._usage)

    def pick_model(self, rng: random.Random) -> ModelSpec:
        """Choose a model by weight with exactly one draw from ``rng``."""
        point = rng.random() * sum(m.weight for m in self.models)
        for model in self.models:
            point -= model.weight
            if point < 0 and model.weight > 0:
                return model
        return next(m for m in reversed(self.models) if m.weight > 0)

    def complete(self, messages: list[dict[str, Any]], rng: random.Random, **params: Any) -> Completion:
        """One chat completion. ``params`` override the defaults and pass through (tools, stop, ...).

        Draws exactly two values from ``rng`` (model choice, request seed) whatever happens, so the
        caller's stream stays aligned across cache hits, retries and failures.
        """
        spec = self.pick_model(rng)
        seed = rng.getrandbits(31)
        request = {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": seed, **params}
        key = request_key(spec.name, messages, request)
        start = time.perf_counter()
        stored = self.cache.get(key) if self.cache is not None else None
        if stored is not None:
            return self._finish(spec, stored, cached=True, start=start, attempts=0)
        if self.replay:
            where = self.cache.directory if self.cache is not None else "(no cache)"
            raise LLMError(f"replay: no cached answer for request {key[:12]} to model {spec.name} in {where}")
        sent = request if self.send_seed else {k: v for k, v in request.items() if k != "seed"}
        response, attempts = self._call_with_retries(spec.name, messages, sent)
        if self.cache is not None:
            self.cache.put(key, {"model": spec.name, "messages": messages, "params": request}, response)
        return self._finish(spec, response, cached=False, start=start, attempts=attempts)

    def check_reachable(self, timeout_s: float = 5.0) -> None:
        """Fail fast, in one line, when the endpoint does not answer (nothing to check in replay mode)."""
        if self.replay:
            return
        probe = self._client.with_options(timeout=min(timeout_s, self.timeout_s), max_retries=0)
        try:
            probe.models.list()
        except openai.APITimeoutError:
            raise LLMUnreachable(f"no LLM endpoint reachable at {self.base_url}: timed out after {timeout_s:g}s") from None
        except openai.APIConnectionError as exc:
            raise LLMUnreachable(f"no LLM endpoint reachable at {self.base_url}: {_connection_reason(exc)}") from None
        except openai.APIStatusError as exc:
            if exc.status_code in (401, 403):
                raise LLMError(f"LLM endpoint {self.base_url} rejected the API key (HTTP {exc.status_code})") from None
            if exc.status_code != 404:  # some servers have no /models route; they still serve chats
                raise LLMError(f"LLM endpoint {self.base_url} answered HTTP {exc.status_code} to GET /models") from None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "LLMClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def prompt_style(self) -> tuple[bool, bool]:
        """``(strict, diffs)`` for a mutator's ``style: auto``: an endpoint is assumed capable (the
        full prompt, SEARCH/REPLACE edits); a local registry model says otherwise."""
        return False, True

    # --- internals ---------------------------------------------------------------------------
    def _finish(self, spec: ModelSpec, response: dict[str, Any], *, cached: bool, start: float, attempts: int) -> Completion:
        pt, ct = int(response.get("prompt_tokens", 0)), int(response.get("completion_tokens", 0))
        completion = Completion(
            text=response.get("text", ""),
            model=spec.name,
            prompt_tokens=pt,
            completion_tokens=ct,
            cost_usd=spec.cost(pt, ct),
            cached=cached,
            latency_s=time.perf_counter() - start,
            tool_calls=list(response.get("tool_calls", [])),
            finish_reason=response.get("finish_reason"),
            attempts=attempts,
        )
        with self._lock:
            u = self._usage
            u.requests += 1
            u.cache_hits += cached
            u.prompt_tokens += pt
            u.completion_tokens += ct
            u.cost_usd += completion.cost_usd
        return completion

    def _call_with_retries(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> tuple[dict[str, Any], int]:
        cause = "no attempt made"
        for attempt in range(self.retries + 1):
            retry_after: float | None = None
            try:
                with self._slots:
                    raw = self._client.chat.completions.create(model=model, messages=messages,  # type: ignore[arg-type]  # plain dicts: the SDK's TypedDicts
                                                               **params)
                return _parse(raw, messages), attempt + 1
            except openai.APITimeoutError:
                cause = f"timed out after {self.timeout_s:g}s"
            except openai.APIConnectionError as exc:
                cause = _connection_reason(exc)
            except openai.APIStatusError as exc:
                cause = f"HTTP {exc.status_code}: {_status_message(exc)}"
                if exc.status_code in REQUEST_STATUSES:
                    raise LLMRequestError(f"LLM endpoint {self.base_url} rejected the request to {model}: {cause}") from None
                if exc.status_code not in RETRY_STATUSES and exc.status_code < 500:
                    raise LLMError(f"LLM endpoint {self.base_url} refused model {model}: {cause}") from None
                retry_after = _retry_after(exc.response.headers)
            except (_BadResponse, ValueError, openai.APIResponseValidationError) as exc:
                cause = f"malformed response: {_one_line(exc, 160)}"
            if attempt < self.retries:
                with self._lock:
                    self._usage.retries += 1
                time.sleep(self._delay(attempt, retry_after))
        raise LLMError(f"LLM request to {model} at {self.base_url} failed after {self.retries + 1} attempts: {cause}")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with "equal jitter"; a server's Retry-After wins when it is given."""
        if retry_after is not None:
            return min(retry_after, self.backoff_max_s) + self._jitter.uniform(0, 0.1 * self.backoff_s)
        base = min(self.backoff_max_s, self.backoff_s * 2**attempt)
        return float(base / 2 + self._jitter.uniform(0, base / 2))


def _status_message(exc: openai.APIStatusError) -> str:
    """The server's own error message, without the SDK's "Error code: N - " prefix."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return _one_line(inner["message"], 160)
    return _one_line(re.sub(r"^Error code: \d+ - ", "", exc.message), 160)


def _retry_after(headers: Any) -> float | None:
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                return None
    return None


def _parse(raw: Any, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Reduce an SDK response to the JSON-able dict we cache; reject anything unusable."""
    choices = getattr(raw, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise _BadResponse(f"no choices in answer {_one_line(raw, 80)!r}")
    message = getattr(choices[0], "message", None)
    if message is None:
        raise _BadResponse("choice without a message")
    calls = [
        {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
        for c in (getattr(message, "tool_calls", None) or [])
    ]
    text = getattr(message, "content", None) or ""
    usage = getattr(raw, "usage", None)
    if usage is not None:
        pt, ct = int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)
    else:  # some local servers omit usage: estimate ~4 characters per token so budgets still move
        pt = len(json.dumps(messages)) // 4
        ct = (len(text) + len(json.dumps(calls)) * bool(calls)) // 4
    return {
        "text": text,
        "tool_calls": calls,
        "prompt_tokens": pt,
        "completion_tokens": ct,
        "finish_reason": getattr(choices[0], "finish_reason", None),
        "model": getattr(raw, "model", None),
    }


def client_from_config(
    section: Any,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    base_url: str | None = None,
    replay: bool = False,
    max_concurrency: int = 4,
) -> LLMClient:
    """Build a client from the config's ``llm`` section (duck-typed, so this layer needs no config import).

    ``base_url`` overrides the section's, e.g. with the address of a local model server just started.
    Provider ``local`` (without such an override) assembles the registry model, starts its server and
    returns a client whose ``close()`` stops it (see :mod:`evolve.llm.local`).
    """
    if getattr(section, "provider", "openai") == "local" and base_url is None:
        from evolve.llm.local import local_client

        log = Path(cache_dir).parent / "local-llm-server.log" if cache_dir is not None else None
        return local_client(section, cache_dir, replay=replay, log_path=log)
    url = base_url or getattr(section, "base_url", None)
    if not url:
        raise LLMError(f"llm: no base_url (provider {getattr(section, 'provider', 'openai')!r} needs a running server's address)")
    models = [
        ModelSpec(m.name, getattr(m, "weight", 1.0), getattr(m, "price_in", 0.0), getattr(m, "price_out", 0.0))
        for m in getattr(section, "models", [])
    ] or [ModelSpec(getattr(section, "local_model", None) or "local")]
    return LLMClient(
        url,
        models,
        api_key_env=getattr(section, "api_key_env", None),
        temperature=section.temperature,
        max_tokens=section.max_tokens,
        timeout_s=section.timeout_s,
        retries=section.retries,
        cache_dir=cache_dir,
        replay=replay,
        max_concurrency=max_concurrency,
    )
