"""The one way evolve talks to a language model: an OpenAI-compatible Chat Completions endpoint.

``LLMClient.complete(messages, rng)`` picks a model by weight with the caller's RNG (so a seeded run
makes the same choices), retries transient failures itself with exponential backoff and jitter,
accounts tokens and dollars, and caches every answer on disk so a run can be replayed exactly without
the endpoint. A per-request seed, drawn from the same RNG, is sent to the server and is part of the
cache key: two identical prompts at different points of a run are different samples, while a
resumed run (same RNG state) re-issues the same requests and gets the cached answers back.

Failures are sorted by owner (see :mod:`evolve.llm.faults`): a request's own failure raises
:class:`LLMRequestError` or :class:`RetriesExhausted`; a failure of the whole setup (key, model, a
lost endpoint, a replay miss) raises an :class:`LLMRunFailure` at once and makes every other thread's
request raise it too. :meth:`LLMClient.cancel` abandons all requests in flight and backoff sleeps
within milliseconds: each HTTP attempt runs in its own daemon thread while the caller waits on an
event that cancellation sets, because a blocked socket read cannot be interrupted portably. What an
abandoned attempt returns later is dropped, so nothing reaches the cache after a cancel.
Every request, retry (with its fault kind and wait) and failure is reported to ``on_event``, which
the run points at its run log.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import openai

from evolve.llm.cache import ResponseCache, request_key
from evolve.llm.faults import (
    SILENT,
    EndpointFailing,
    EndpointLost,
    EndpointRefused,
    LLMUnreachable,
    Fault,
    LLMCancelled,
    LLMError,
    LLMRequestError,
    LLMRunFailure,
    ReplayMiss,
    RetriesExhausted,
    classify,
    connection_reason,
    one_line,
    refusal,
    status_message,
)
from evolve.usage import Usage

DUMMY_KEY = "sk-local-no-key"
#: Attempts in a row (all threads together) without any HTTP answer after which the endpoint is lost.
LOST_AFTER = 3
#: Requests in a row (all threads together) that exhausted their retries: the endpoint is failing.
FAILING_AFTER = 3

#: Receives ``(event, **fields)`` for every request, retry and failure (the run log's ``write``).
EventSink = Callable[..., None]


@dataclass(frozen=True)
class ModelSpec:
    """One model of the pool: its name at the endpoint, its sampling weight and its prices."""

    name: str
    weight: float = 1.0
    price_in_per_mtok: float = 0.0  # USD per million prompt tokens
    price_out_per_mtok: float = 0.0  # USD per million completion tokens

    def usage(self, prompt_tokens: int, completion_tokens: int, reported: str | None = None) -> Usage:
        """What one answer cost at this model's prices, charged to the model the server ``reported``."""
        cost = (prompt_tokens * self.price_in_per_mtok + completion_tokens * self.price_out_per_mtok) / 1e6
        return Usage(prompt_tokens, completion_tokens, cost, reported or self.name)


@dataclass
class Completion:
    text: str
    usage: Usage  # its model is the one the server reported (else the one asked for)
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
class Totals:
    """Running totals of one client. Costs of cached answers count too, so a replay budgets alike."""

    requests: int = 0  # complete() calls that returned
    cache_hits: int = 0
    retries: int = 0  # re-sent requests, including those of calls that finally failed
    spent: Usage = field(default_factory=Usage)  # of all models: no model named


class _BadResponse(ValueError):
    """A 200 answer that is not a usable chat completion."""


def is_loopback(base_url: str) -> bool:
    host = urlparse(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Gate:
    """What all threads of one client share: the stop (cancel or run failure) and the silence streak.

    Waiting callers register an event; stopping sets them all, so every thread leaves at once.
    """

    def __init__(self, lost_after: int, failing_after: int = FAILING_AFTER) -> None:
        self.lost_after = max(1, lost_after)
        self.failing_after = max(1, failing_after)
        self._exhausted = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._failure: LLMRunFailure | None = None
        self._cancelled = False
        self._silent = 0
        self._waiting: set[threading.Event] = set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def check(self) -> None:
        """Raise if the client is stopped: a fresh exception per thread (tracebacks are per object)."""
        if not self._stopped.is_set():
            return
        if self._cancelled:
            raise LLMCancelled("LLM request cancelled")
        assert self._failure is not None
        raise type(self._failure)(str(self._failure))

    def stop(self, failure: LLMRunFailure | None = None) -> bool:
        """Cancel (no failure) or fail the client; True for the call that stopped it."""
        with self._lock:
            if self._stopped.is_set():
                return False
            self._cancelled, self._failure = failure is None, failure
            self._stopped.set()
            waiting = list(self._waiting)
        for event in waiting:
            event.set()
        return True

    def answered(self) -> None:
        with self._lock:
            self._silent = 0

    def silence(self, fault: Fault, base_url: str) -> EndpointLost | None:
        """Count an attempt that got no answer; the failure when this one makes the endpoint lost."""
        with self._lock:
            self._silent += 1
            lost = self._silent >= self.lost_after
        if not lost:
            return None
        failure = EndpointLost(f"LLM endpoint {base_url} lost: {self.lost_after} attempts in a row got no answer "
                               f"(last: {fault.detail})")
        return failure if self.stop(failure) else None

    def request_done(self, exhausted: RetriesExhausted | None, base_url: str) -> EndpointFailing | None:
        """Count a request that succeeded (None) or exhausted its retries; the failure when this one
        makes the endpoint failing."""
        with self._lock:
            self._exhausted = self._exhausted + 1 if exhausted is not None else 0
            failing = self._exhausted >= self.failing_after
        if exhausted is None or not failing:
            return None
        failure = EndpointFailing(f"LLM endpoint {base_url} failing: {self.failing_after} requests in a row failed "
                                  f"after all retries (last: {exhausted})")
        return failure if self.stop(failure) else None

    @contextlib.contextmanager
    def watch(self) -> Iterator[threading.Event]:
        """An event that is set when the client stops (and by whoever else holds it)."""
        event = threading.Event()
        with self._lock:
            self._waiting.add(event)
            if self._stopped.is_set():
                event.set()
        try:
            yield event
        finally:
            with self._lock:
                self._waiting.discard(event)

    def sleep(self, seconds: float) -> None:
        """A backoff wait that ends at once when the client stops."""
        self._stopped.wait(seconds)
        self.check()


class LLMClient:
    """A pool of models behind one OpenAI-compatible ``base_url``.

    ``api_key_env`` names the environment variable holding the key; None means no key is needed
    (a dummy is sent). A named but unset variable is an error, except for a loopback endpoint or
    in replay mode. ``replay=True`` answers only from ``cache_dir`` and never contacts the endpoint.
    ``lost_after`` attempts in a row without any HTTP answer (connection refused, timeouts; all
    threads together) make the endpoint lost; ``failing_after`` requests in a row that exhausted
    their retries make it failing. ``on_event`` receives every request, retry and failure.
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
        lost_after: int = LOST_AFTER,
        failing_after: int = FAILING_AFTER,
        on_event: EventSink | None = None,
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
        self.on_event = on_event
        self._api_key = self._resolve_key(api_key_env)
        self._client = openai.OpenAI(base_url=self.base_url, api_key=self._api_key, timeout=timeout_s, max_retries=0)
        self._slots = threading.BoundedSemaphore(max(1, max_concurrency))
        self._gate = _Gate(lost_after, failing_after)
        self._jitter = random.Random()  # timing only: never touches the caller's RNG stream
        self._lock = threading.Lock()
        self._totals = Totals()
        self._mismatches: set[tuple[str, str]] = set()

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
    def totals(self) -> Totals:
        """A snapshot of the running totals."""
        with self._lock:
            return replace(self._totals)

    @property
    def cancelled(self) -> bool:
        return self._gate.cancelled

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
        self._gate.check()  # after a cancel or a run failure nothing is answered, not even from the cache
        stored = self.cache.get(key) if self.cache is not None else None
        if stored is not None:
            return self._finish(spec, key, stored, cached=True, start=start, attempts=0)
        if self.replay:
            raise self._replayed_failure(spec, key, messages)
        sent = request if self.send_seed else {k: v for k, v in request.items() if k != "seed"}
        try:
            response, attempts = self._call_with_retries(spec.name, key, messages, sent)
        except (LLMRequestError, RetriesExhausted) as exc:
            if self.cache is not None:
                self.cache.put_failure(key, {"model": spec.name, "messages": messages, "params": request},
                                       _failure_entry(exc))
            self._emit("llm.failed", model=spec.name, key=key[:12], error=_error_kind(exc), message=str(exc))
            failing = self._gate.request_done(exc, self.base_url) if isinstance(exc, RetriesExhausted) else None
            if failing is not None:
                self._emit("llm.endpoint_failing", reason=str(failing))
                raise failing from None
            raise
        except LLMError as exc:
            self._emit("llm.failed", model=spec.name, key=key[:12], error=_error_kind(exc), message=str(exc))
            raise
        self._gate.request_done(None, self.base_url)
        if self.cache is not None:
            self.cache.put(key, {"model": spec.name, "messages": messages, "params": request}, response)
        return self._finish(spec, key, response, cached=False, start=start, attempts=attempts)

    def cancel(self) -> None:
        """Abandon every request in flight and every backoff wait, and refuse new requests (Ctrl-C).

        Waiting callers raise :class:`LLMCancelled` within milliseconds; answers that arrive later
        are dropped, never cached.
        """
        if self._gate.stop():
            self._emit("llm.cancelled")
            with contextlib.suppress(Exception):  # drops pooled connections; in-flight reads are abandoned
                self._client.close()

    def check_reachable(self, timeout_s: float = 5.0) -> None:
        """Fail fast, in one line, when the endpoint does not answer (nothing to check in replay mode)."""
        if self.replay:
            return
        probe = self._client.with_options(timeout=min(timeout_s, self.timeout_s), max_retries=0)
        try:
            probe.models.list()
        except openai.APITimeoutError:
            raise EndpointLost(f"no LLM endpoint reachable at {self.base_url}: timed out after {timeout_s:g}s") from None
        except openai.APIConnectionError as exc:
            raise EndpointLost(f"no LLM endpoint reachable at {self.base_url}: {connection_reason(exc)}") from None
        except openai.APIStatusError as exc:
            if exc.status_code in (401, 403):
                raise EndpointRefused(f"LLM endpoint {self.base_url} rejected the API key (HTTP {exc.status_code})") from None
            if exc.status_code != 404:  # some servers have no /models route; they still serve chats
                raise EndpointRefused(f"LLM endpoint {self.base_url} answered HTTP {exc.status_code} to GET /models") from None

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
    def _emit(self, event: str, **fields: Any) -> None:
        if self.on_event is not None:
            self.on_event(event, **fields)

    def _replayed_failure(self, spec: ModelSpec, key: str, messages: list[dict[str, Any]]) -> LLMError:
        """What a replay raises for a request without a cached answer: the recorded failure, or a miss."""
        failure = self.cache.get_failure(key) if self.cache is not None else None
        if failure is not None:
            message = str(failure.get("message", "recorded failure"))
            exc: LLMError = (RetriesExhausted(message, str(failure.get("cause", "")))
                             if failure.get("error") == "retries exhausted" else LLMRequestError(message))
            self._emit("llm.failed", model=spec.name, key=key[:12], error=_error_kind(exc), message=message, cached=True)
            return exc
        last = next((m.get("content") for m in reversed(messages) if isinstance(m.get("content"), str)), "") or ""
        first_line = one_line(last.strip().split("\n", 1)[0], 80)
        where = self.cache.directory if self.cache is not None else "?"
        miss = ReplayMiss(f"replay: no cached answer for model {spec.name}, request {key[:12]} "
                          f"(last message begins {first_line!r}) in {where}")
        self._gate.stop(miss)
        self._emit("llm.failed", model=spec.name, key=key[:12], error=_error_kind(miss), message=str(miss))
        return miss

    def _finish(self, spec: ModelSpec, key: str, response: dict[str, Any], *, cached: bool, start: float,
                attempts: int) -> Completion:
        pt, ct = int(response.get("prompt_tokens", 0)), int(response.get("completion_tokens", 0))
        reported = response.get("model") if isinstance(response.get("model"), str) and response.get("model") else None
        completion = Completion(
            text=response.get("text", ""),
            usage=spec.usage(pt, ct, reported),
            cached=cached,
            latency_s=time.perf_counter() - start,
            tool_calls=list(response.get("tool_calls", [])),
            finish_reason=response.get("finish_reason"),
            attempts=attempts,
        )
        with self._lock:
            u = self._totals
            u.requests += 1
            u.cache_hits += cached
            u.spent = u.spent + completion.usage.without_model()
            first_mismatch = reported not in (None, spec.name) and (spec.name, reported) not in self._mismatches
            if first_mismatch:
                self._mismatches.add((spec.name, str(reported)))
        if first_mismatch:
            self._emit("llm.model_mismatch", requested=spec.name, reported=reported)
        self._emit("llm.request", model=spec.name, reported=completion.usage.model, key=key[:12], attempts=attempts,
                   cached=cached, **completion.usage.to_dict(),
                   latency_s=round(completion.latency_s, 3))
        return completion

    def _call_with_retries(self, model: str, key: str, messages: list[dict[str, Any]],
                           params: dict[str, Any]) -> tuple[dict[str, Any], int]:
        fault = Fault("none", "no attempt made")
        for attempt in range(self.retries + 1):
            try:
                with self._slot():
                    raw = self._attempt(model, messages, params)
                response = _parse(raw, messages)
            except openai.APIStatusError as exc:
                self._gate.answered()
                fault = self._transient(exc, model)
            except LLMError:
                raise
            except Exception as exc:
                fault = self._transient(exc, model)
            else:
                self._gate.answered()
                return response, attempt + 1
            if attempt < self.retries:
                wait = self._delay(attempt, fault.retry_after)
                with self._lock:
                    self._totals.retries += 1
                self._emit("llm.retry", model=model, key=key[:12], attempt=attempt + 1, cause=fault.kind,
                           detail=fault.detail, wait_s=round(wait, 3))
                self._gate.sleep(wait)
        raise RetriesExhausted(f"LLM request to {model} failed after {self.retries + 1} attempts: {fault.detail}",
                               fault.kind)

    def _transient(self, exc: Exception, model: str) -> Fault:
        """The retryable fault ``exc`` is; raise instead when it concerns the run or this request only."""
        if isinstance(exc, openai.APIStatusError):
            refused = refusal(exc, self.base_url, model)
            if refused is not None:
                self._gate.stop(refused)
                raise refused from None
        fault = classify(exc, self.timeout_s)
        if fault is None:
            if isinstance(exc, openai.APIStatusError):
                raise LLMRequestError(f"LLM endpoint rejected the request to {model}: "
                                      f"HTTP {exc.status_code}: {status_message(exc)}") from None
            raise exc
        if fault.kind in SILENT:
            lost = self._gate.silence(fault, self.base_url)
            if lost is not None:
                self._emit("llm.endpoint_lost", reason=str(lost))
                raise lost
            self._gate.check()  # another thread may have declared the endpoint lost meanwhile
        else:
            self._gate.answered()
        return fault

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        """One of ``max_concurrency`` request slots; waiting for it ends when the client stops."""
        while not self._slots.acquire(timeout=0.05):
            self._gate.check()
        try:
            self._gate.check()
            yield
        finally:
            self._slots.release()

    def _attempt(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Any:
        """One HTTP attempt in a daemon thread; the caller leaves as soon as the client stops."""
        box: dict[str, Any] = {}
        with self._gate.watch() as wake:
            def work() -> None:
                try:
                    box["raw"] = self._client.chat.completions.create(
                        model=model, messages=messages, **params)  # type: ignore[arg-type]  # plain dicts: the SDK's TypedDicts
                except BaseException as exc:  # handed to the waiting caller
                    box["exc"] = exc
                finally:
                    wake.set()

            threading.Thread(target=work, name="llm-request", daemon=True).start()
            wake.wait()
        if "raw" not in box and "exc" not in box:
            self._gate.check()  # woken by a stop: raises
        if "exc" in box:
            raise box["exc"]
        return box["raw"]

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with "equal jitter"; a server's Retry-After wins when it is given."""
        if retry_after is not None:
            return min(retry_after, self.backoff_max_s) + self._jitter.uniform(0, 0.1 * self.backoff_s)
        base = min(self.backoff_max_s, self.backoff_s * 2**attempt)
        return float(base / 2 + self._jitter.uniform(0, base / 2))


def _error_kind(exc: LLMError) -> str:
    """The name a failure is counted under in the run log."""
    if isinstance(exc, LLMRunFailure):
        return exc.kind
    if isinstance(exc, RetriesExhausted):
        return "retries exhausted"
    if isinstance(exc, LLMRequestError):
        return "request rejected"
    if isinstance(exc, LLMCancelled):
        return "cancelled"
    return "llm"


def _failure_entry(exc: LLMError) -> dict[str, Any]:
    """How a request's own failure is cached, so that a replay fails it identically."""
    entry: dict[str, Any] = {"error": _error_kind(exc), "message": str(exc)}
    if isinstance(exc, RetriesExhausted):
        entry["cause"] = exc.cause
    return entry

def _parse(raw: Any, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Reduce an SDK response to the JSON-able dict we cache; reject anything unusable."""
    choices = getattr(raw, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise _BadResponse(f"no choices in answer {one_line(raw, 80)!r}")
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
    on_event: EventSink | None = None,
) -> LLMClient:
    """Build a client from the config's ``llm`` section (duck-typed, so this layer needs no config import).

    ``base_url`` overrides the section's, e.g. with the address of a local model server just started.
    Provider ``local`` (without such an override) assembles the registry model, starts its server and
    returns a client whose ``close()`` stops it (see :mod:`evolve.llm.local`). ``on_event`` receives
    the client's events (the run log).
    """
    if getattr(section, "provider", "openai") == "local" and base_url is None:
        from evolve.llm.local import local_client

        log = Path(cache_dir).parent / "local-llm-server.log" if cache_dir is not None else None
        return local_client(section, cache_dir, replay=replay, log_path=log, on_event=on_event)
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
        lost_after=getattr(section, "lost_after", LOST_AFTER),
        failing_after=getattr(section, "failing_after", FAILING_AFTER),
        on_event=on_event,
    )
