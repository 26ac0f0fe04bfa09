"""The call-job runner inside a sandboxed worker: import the target, call it, send back JSON.

Fresh mode execs ``python -m evolve.sandbox.child`` in the worker (the job arrives on
:data:`SPEC_FD`); forkserver mode calls :func:`execute` directly in the forked worker. Either way the
result travels on :data:`RESULT_FD`, never on stdout, so printing cannot forge it.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import sys
import traceback
from typing import Any

from .supervise import RESULT_FD, SPEC_FD

TRACEBACK_LINES = 30


def execute(job: dict[str, Any]) -> int:
    """Run one call job in this process and return the exit code the process should end with.

    ``sys.exit`` inside the target ends the process like it would in a plain interpreter, without a
    result, so the parent reports "exited with code N without a result".
    """
    # Appended, not prepended: files in the working directory (untrusted artefacts, for a checker)
    # must never shadow the standard library or installed packages.
    sys.path.append(os.getcwd())
    try:
        payload = _call(job["target"], job["args"])
    except SystemExit as exc:
        _flush()
        return _exit_code(exc)
    _send(payload)
    _flush()
    return 0


def _call(target: str, args: dict[str, Any]) -> bytes:
    try:
        module_name, sep, attr = target.partition(":")
        if not sep or not module_name or not attr:
            raise ValueError(f"call target {target!r} is not 'package.module:function'")
        fn = getattr(importlib.import_module(module_name), attr)
        value = fn(**args)
        return json.dumps({"status": "ok", "value": value}).encode()
    except MemoryError as exc:
        return _failure(exc, status="limit", limit="memory")
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            return _failure(exc, status="limit", limit="file_size")
        return _failure(exc)
    except Exception as exc:  # every failure of untrusted code is a result
        return _failure(exc)


def _failure(exc: BaseException, status: str = "error", limit: str | None = None) -> bytes:
    tail = "".join(traceback.format_exception(exc)).splitlines()[-TRACEBACK_LINES:]
    error = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    return json.dumps({"status": status, "limit": limit, "error": error, "traceback": "\n".join(tail)}).encode()


def _send(payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        try:
            view = view[os.write(RESULT_FD, view) :]
        except OSError:
            return  # the parent went away; nothing left to tell


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr, flush=True)
    return 1


def _read_spec() -> dict[str, Any]:
    with os.fdopen(SPEC_FD, "rb") as f:
        spec: dict[str, Any] = json.load(f)
        return spec


def main() -> None:
    """Entry point of an exec'd call-job worker (fresh mode)."""
    from .containment import make_undumpable

    make_undumpable()  # exec made the process dumpable again; a checker must not be
    os._exit(execute(_read_spec()))  # os._exit: skip interpreter teardown (torch's can be slow)


if __name__ == "__main__":
    main()
