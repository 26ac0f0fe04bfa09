"""How a worker ended -> :class:`ProcessResult`: status, the limit hit, a one-line error.

Inputs are the supervisor's report (trusted: exit status, rusage, timeout), the call job's result
message (untrusted: the job could forge it, so anything malformed is an error, and a forged "ok" is
harmless because only trusted checker phases' values are believed) and the stderr text.
"""

from __future__ import annotations

import json
import signal
from typing import Any

from .job import ProcessResult
from .pipes import Stream

TAIL_LINES = 30


def process_result(
    kind: str, limits: dict[str, Any], report: dict[str, Any] | None, streams: dict[str, Stream], elapsed: float
) -> ProcessResult:
    """The job's result; ``limits`` are the effective ones (cpu_s resolved), ``elapsed`` the
    parent's wall time, used when there is no report."""
    stderr = streams["stderr"].text()
    result = ProcessResult(
        **_status(kind, limits, report, bytes(streams["result"].data), stderr),
        wall_s=elapsed,
        stdout=streams["stdout"].text(),
        stderr=stderr,
        stdout_truncated=streams["stdout"].truncated,
        stderr_truncated=streams["stderr"].truncated,
    )
    if report:
        result.exit_code, result.signal, result.wall_s = report["exit_code"], report["signal"], report["wall_s"]
        result.cpu_s, result.peak_rss_mib = report["cpu_s"], report["maxrss_kb"] / 1024
        result.baseline_rss_mib = report.get("baseline_rss_kb", 0) / 1024
        result.containment = dict(report.get("containment", {}))
    return result


def load_report(raw: bytes) -> dict[str, Any] | None:
    return _json_object(raw)


def _status(
    kind: str, limits: dict[str, Any], report: dict[str, Any] | None, result: bytes, stderr: str
) -> dict[str, Any]:
    if report is None:
        return {"status": "crashed", "error": "the sandbox supervisor ended without a report"}
    if "setup_error" in report:
        return {"status": "crashed", "error": f"sandbox setup failed: {report['setup_error']}"}
    sig, code, tail = report["signal"], report["exit_code"], _tail(stderr)
    if report["timed_out"]:
        return {"status": "timeout", "limit": "time", "error": f"timed out after {limits['timeout_s']:g} s"}
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and report["cpu_s"] >= limits["cpu_s"]):
        return {"status": "limit", "limit": "cpu", "error": f"CPU time limit of {limits['cpu_s']} s exceeded"}
    if sig == signal.SIGXFSZ:
        return _file_size(limits)
    if kind == "call" and result:
        return _call_result(result)
    if sig is not None:
        return {"status": "crashed", "error": f"killed by signal {_signal_name(sig)}", "traceback": tail}
    if kind == "call":
        return {"status": "error", "error": f"exited with code {code} without a result", "traceback": tail}
    if code == 0:
        return {"status": "ok"}
    return _script_failure(code, stderr, limits)


def _script_failure(code: int, stderr: str, limits: dict[str, Any]) -> dict[str, Any]:
    """A Python script's last stderr line is its exception: ``Type: message``."""
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "")
    tail = _tail(stderr)
    if last.startswith("MemoryError"):
        return {"status": "limit", "limit": "memory", "error": last, "traceback": tail}
    if last.startswith("OSError: [Errno 27]"):  # EFBIG: Python ignores SIGXFSZ
        return {**_file_size(limits), "traceback": tail}
    return {"status": "error", "error": last or f"exited with code {code}", "traceback": tail}


def _call_result(raw: bytes) -> dict[str, Any]:
    message = _json_object(raw) or {}
    status, error, traceback = message.get("status"), message.get("error"), message.get("traceback")
    if status == "ok" and "value" in message:
        return {"status": "ok", "value": message["value"]}
    if status in ("error", "limit") and isinstance(error, str):
        return {
            "status": status,
            "limit": message.get("limit") if status == "limit" else None,
            "error": error,
            "traceback": traceback if isinstance(traceback, str) else None,
        }
    return {"status": "error", "error": "the call job sent an invalid result"}


def _file_size(limits: dict[str, Any]) -> dict[str, Any]:
    error = f"file size limit of {limits['file_size_mb']} MB exceeded"
    return {"status": "limit", "limit": "file_size", "error": error}


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _tail(text: str) -> str | None:
    return "\n".join(text.rstrip().splitlines()[-TAIL_LINES:]) or None


def _json_object(raw: bytes) -> dict[str, Any] | None:
    """``raw`` as a JSON object, or None: a job's bytes never raise here (nesting past the recursion
    limit raises RecursionError, not ValueError)."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
