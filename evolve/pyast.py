"""Thread-safe parsing of Python source.

CPython 3.11 keeps the AST constructor's recursion counter in interpreter-wide state, so two threads
parsing at once (the run loop mutates and checks candidates on thread pools) can fail with a
spurious ``SystemError: AST constructor recursion depth mismatch`` (python/cpython#106905).
Every parse in evolve goes through :func:`parse`, which serialises them; a parse takes microseconds
to milliseconds, so the lock costs nothing measurable next to an evaluation.
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse`` under a process-wide lock; raises ``SyntaxError`` like it."""
    with _LOCK:
        return ast.parse(source, filename=filename)
