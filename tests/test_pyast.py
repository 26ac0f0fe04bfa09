"""evolve.pyast: parsing from many threads at once never fails spuriously (python/cpython#106905)."""

from __future__ import annotations

import ast
import gc
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from evolve import pyast

# Deep nesting makes the AST constructor recurse, which is where 3.11's shared counter goes wrong.
NESTED = "x = " + "(" * 60 + "1" + ")" * 60 + "\n" + "def f(a):\n" + "".join(
    f"{'    ' * (i + 1)}if a > {i}:\n" for i in range(40)) + "    " * 41 + "return a\n"


class _Finalized:
    """Cyclic garbage whose finalizer runs Python code: a collection inside a parse switches threads."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        sum(range(100))


@contextmanager
def _thread_switch_pressure() -> Iterator[None]:
    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(1e-6)
    gc.set_threshold(10)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)


def _parse_in_threads(parse: Callable[[str], ast.Module]) -> list[ast.Module]:
    def work(_: int) -> ast.Module:
        for _ in range(3):
            _Finalized()
        return parse(NESTED)

    with _thread_switch_pressure(), ThreadPoolExecutor(8) as pool:
        return list(pool.map(work, range(400)))


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the race is CPython 3.11's")
def test_plain_ast_parse_does_fail_under_the_same_load() -> None:
    """Proof that the next test exercises the race: without the lock, parses fail."""
    with pytest.raises(SystemError, match="recursion depth mismatch"):
        for _ in range(20):  # fails within the first round or two in practice
            _parse_in_threads(ast.parse)


def test_concurrent_parses_all_succeed() -> None:
    trees = _parse_in_threads(pyast.parse)
    assert len(trees) == 400 and all(len(tree.body) == 2 for tree in trees)


def test_syntax_errors_still_raise() -> None:
    with pytest.raises(SyntaxError):
        pyast.parse("def broken(:\n", filename="candidate.py")
