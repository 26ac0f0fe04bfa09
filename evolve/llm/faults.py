"""What an endpoint's failure means, and whose failure it is.

Every way a chat request can fail is sorted into one of three owners, because each needs a different
response from the run:

- **the request** (:class:`LLMRequestError`, :class:`RetriesExhausted`): this child is rejected, the
  run goes on. A 400/413/422 ("prompt too long") cannot succeed when re-sent; a transient fault
  (429, 5xx, timeout, cut or garbled body) is retried with backoff until the retries run out.
- **the run** (:class:`LLMRunFailure`): nothing the run does next can succeed, so it stops at once
  with a one-line reason and stays resumable. 401/403 (key revoked), 404 or a "model not found" body
  (wrong model or base_url), an exhausted quota (:class:`EndpointRefused`); an endpoint that stopped
  answering at all (:class:`EndpointLost`) or answers only errors, request after request
  (:class:`EndpointFailing`); a replay whose cache lacks an answer (:class:`ReplayMiss`).
  Before this split, a dead endpoint made every child retry to exhaustion and look like a bad
  mutation: 300 s of retries and a run that ended "successfully" with its budget unspent.
- **the user** (:class:`LLMCancelled`): Ctrl-C; requests in flight are abandoned, none is sent after.

:func:`classify` names the fault kind of one failed attempt; the kinds are what the run log counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evolve.errors import UserError

if TYPE_CHECKING:  # the SDK is imported where a fault is classified: a run without an LLM never loads it
    import openai

#: Fault kinds of one failed attempt, as counted in the run log and its summary line.
RATE_LIMIT, SERVER_ERROR, TIMEOUT, CONNECTION, BAD_BODY, HTTP_RETRY = "429", "5xx", "timeout", "connection", "bad body", "408/409"
#: Kinds that mean nothing answered at all: enough of them in a row and the endpoint is lost.
SILENT = frozenset({TIMEOUT, CONNECTION})
#: HTTP statuses worth retrying besides 5xx: timeouts, conflicts, rate limits.
RETRY_STATUSES = frozenset({408, 409, 429})
#: HTTP statuses that reject this one request (e.g. prompt too long) rather than the whole setup.
REQUEST_STATUSES = frozenset({400, 413, 422})
_MODEL_MISSING = re.compile(r"model.{0,80}(not[ _]found|does not exist|not exist|unknown|no such)|unknown model|no such model", re.I)


class LLMError(UserError, RuntimeError):
    """The LLM could not answer; the message is one line."""


class LLMRequestError(LLMError):
    """The endpoint rejected this particular request (HTTP 400/413/422); other requests may work."""


class RetriesExhausted(LLMError):
    """Every attempt of one request met a transient fault; ``cause`` is the last fault kind."""

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


class LLMCancelled(LLMError):
    """The client was cancelled (Ctrl-C): the request was abandoned or never sent."""


class LLMRunFailure(LLMError):
    """Nothing the run does next can succeed with this endpoint or cache: stop the run, resumably."""

    kind = "llm"
    exit_code = 3  # the CLI's EXIT_LLM: distinct from bad input (2), so scripts can wait and resume


class EndpointRefused(LLMRunFailure):
    """The endpoint refuses the setup itself: key (401/403), model or URL (404), quota."""

    kind = "refused"


class LLMUnreachable(LLMRunFailure):
    """Nothing answers at the endpoint (refused, timed out): the caller may name the alternatives."""

    kind = "lost"


class EndpointLost(LLMUnreachable):
    """Consecutive attempts, across all threads, got no HTTP answer at all (refused or timed out)."""

    kind = "lost"


class EndpointFailing(LLMRunFailure):
    """Consecutive requests (all threads together) each failed after all their retries: the
    endpoint answers, but only with errors (a permanent 5xx, a proxy serving garbage)."""

    kind = "failing"


class ReplayMiss(LLMRunFailure):
    """A replay asked for a request the cache does not hold: the replay is not exact."""

    kind = "replay miss"


@dataclass(frozen=True)
class Fault:
    """One failed attempt: its kind (see the constants), a one-line detail, a server's Retry-After."""

    kind: str
    detail: str
    retry_after: float | None = None


def one_line(text: object, limit: int = 300) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def connection_reason(exc: BaseException) -> str:
    """The root cause of an SDK connection error in a few words ("connection refused", ...)."""
    cause = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    text = str(cause)
    if "refused" in text.lower():
        return "connection refused"
    return one_line(f"{type(cause).__name__}: {text}" if text else type(cause).__name__, 160)


def status_message(exc: openai.APIStatusError) -> str:
    """The server's own error message, without the SDK's "Error code: N - " prefix."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return one_line(inner["message"], 160)
    return one_line(re.sub(r"^Error code: \d+ - ", "", exc.message), 160)


def _error_code(exc: openai.APIStatusError) -> str:
    body = exc.body
    inner = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else body
    code = inner.get("code") if isinstance(inner, dict) else None
    return str(code or getattr(exc, "code", None) or "")


def retry_after(headers: Any) -> float | None:
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                return None
    return None


def refusal(exc: openai.APIStatusError, base_url: str, model: str) -> EndpointRefused | None:
    """The run failure an HTTP error status means, or None when it concerns this request only."""
    status, message, code = exc.status_code, status_message(exc), _error_code(exc)
    what = f"HTTP {status}: {message}"
    if status in (401, 403):
        return EndpointRefused(f"LLM endpoint {base_url} refused the API key ({what})")
    if status == 404 or code == "model_not_found" or (status in REQUEST_STATUSES and _MODEL_MISSING.search(message)):
        return EndpointRefused(f"LLM endpoint {base_url} does not serve model {model!r} (wrong model name or base_url?): {what}")
    if code == "insufficient_quota":
        return EndpointRefused(f"LLM endpoint {base_url}: quota exhausted ({what})")
    if status in REQUEST_STATUSES or status in RETRY_STATUSES or status >= 500:
        return None
    return EndpointRefused(f"LLM endpoint {base_url} refused the request to {model!r} ({what})")


def classify(exc: BaseException, timeout_s: float) -> Fault | None:
    """The transient fault one failed attempt was, or None when ``exc`` is not transient."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return Fault(TIMEOUT, f"timed out after {timeout_s:g}s")
    if isinstance(exc, openai.APIConnectionError):
        reason = connection_reason(exc)
        if "complete message body" in reason:  # headers arrived, the body was cut: the server is alive
            return Fault(BAD_BODY, f"truncated response: {reason}")
        return Fault(CONNECTION, reason)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == 429:
            return Fault(RATE_LIMIT, f"HTTP 429: {status_message(exc)}", retry_after(exc.response.headers))
        if status >= 500:
            return Fault(SERVER_ERROR, f"HTTP {status}: {status_message(exc)}", retry_after(exc.response.headers))
        if status in RETRY_STATUSES:
            return Fault(HTTP_RETRY, f"HTTP {status}: {status_message(exc)}", retry_after(exc.response.headers))
        return None
    if isinstance(exc, (ValueError, openai.APIResponseValidationError)):
        return Fault(BAD_BODY, f"malformed response: {one_line(exc, 160)}")
    return None
