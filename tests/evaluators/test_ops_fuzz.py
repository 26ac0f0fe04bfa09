"""Fuzz every operator on the checker's allow-list with adversarial arguments built from its schema.

Sizes past the storage, negative and huge strides, sizes and indices, out-of-range dims: each call
must raise or return, and never reach memory outside its inputs. Every tensor argument is a view
into the middle of a larger storage whose other elements hold a sentinel; after each call the
sentinels must be intact (no write out of bounds), no fresh output may contain the sentinel (no read
out of bounds), and an output that shares an input's storage must lie inside that input's view.

The fuzzing runs in a child process with a 3 GiB address-space limit (so a huge size fails to
allocate instead of swapping the machine), and a crash of the child fails the test.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("EVOLVE_FUZZ_EXAMPLES", "30"))


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def fuzz_in_child(examples: int, *ops: str) -> tuple[int, str]:
    child = subprocess.run(
        [sys.executable, __file__, str(examples), *ops],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=1800, preexec_fn=_limit_memory,
    )
    return child.returncode, textwrap.shorten(child.stderr[-3000:] + child.stdout[-1000:], 3500)


@pytest.mark.slow
def test_every_allowed_operator_stays_inside_its_inputs():
    code, tail = fuzz_in_child(EXAMPLES)
    assert code == 0, f"fuzz child exited {code}: {tail}"
    assert "fuzzed" in tail, tail


@pytest.mark.parametrize("op", ["aten._reshape_alias.default", "aten.as_strided.default"])
def test_the_fuzzer_catches_raw_memory_operators(op):
    code, tail = fuzz_in_child(60, op)  # both are off the allow-list; the harness must see why
    assert code != 0 and ("outside" in tail or code < 0), tail


# --- the child ------------------------------------------------------------------------------------


def fuzz(examples: int, names: list[str]) -> None:  # pragma: no cover - runs in the child process
    import torch
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from evaluators._ops import ALLOWED_OPS, PY_OPS
    from evaluators._torch_model import _resolve_op

    torch.set_num_threads(1)
    sentinel = {torch.float32: 7777.5, torch.float64: 7777.5, torch.int64: 7777, torch.bool: True}
    ints = st.sampled_from([-(2**63), -(2**31), -7, -1, 0, 1, 2, 3, 4, 7, 2**31, 2**62])
    small_ints = st.integers(-4, 5)
    numbers = st.sampled_from([0.0, -1.0, 0.5, 3, -2, 1e30, float("inf"), float("-inf"), float("nan")])
    shapes = st.lists(st.integers(0, 4), min_size=0, max_size=4)

    @st.composite
    def tensors(draw):
        dtype = draw(st.sampled_from([torch.float32, torch.float64, torch.int64, torch.bool]))
        shape = draw(shapes)
        n = int(torch.Size(shape).numel())
        pad = 16
        base = torch.full((n + 2 * pad,), sentinel[dtype], dtype=dtype)
        if dtype == torch.int64:
            values = torch.tensor(draw(st.lists(st.sampled_from([-(2**40), -9, -1, 0, 1, 2, 3, 2**40]), min_size=n, max_size=n)),
                                  dtype=torch.int64)
        elif dtype == torch.bool:
            values = torch.tensor(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=torch.bool)
        else:
            values = torch.tensor(draw(st.lists(st.floats(-3, 3), min_size=n, max_size=n)), dtype=dtype)
        base[pad : pad + n] = values
        view = base[pad : pad + n].view(shape)
        if len(shape) >= 2 and draw(st.booleans()):
            view = view.transpose(0, -1)  # non-contiguous inputs too
        return view

    def value(kind: str, draw):
        optional = kind.startswith("Optional[")
        kind = kind.removeprefix("Optional[").removesuffix("]") if optional else kind
        if optional and draw(st.booleans()):
            return None
        if kind == "Tensor":
            return draw(tensors())
        if kind.startswith("List[") and "Tensor" in kind:
            return draw(st.lists(st.one_of(st.none(), tensors()) if "Optional" in kind else tensors(), max_size=3))
        if kind in ("int", "SymInt"):
            return draw(st.one_of(ints, small_ints))
        if kind.startswith("List[int") or kind.startswith("List[SymInt"):
            return draw(st.lists(st.one_of(ints, small_ints), max_size=5))
        if kind in ("number", "float", "Scalar"):
            return draw(numbers)
        if kind.startswith("List[float"):
            return draw(st.lists(numbers, max_size=4))
        if kind == "bool":
            return draw(st.booleans())
        if kind == "str":
            return draw(st.sampled_from(["constant", "reflect", "none", "tanh", "ij,jk->ik", "floor", "\x00"]))
        if kind == "ScalarType":
            return draw(st.sampled_from([torch.float32, torch.float64, torch.int64, torch.bool, torch.float16]))
        if kind == "Layout":
            return torch.strided
        if kind == "Device":
            return torch.device("cpu")
        if kind == "MemoryFormat":
            return draw(st.sampled_from([torch.contiguous_format, torch.preserve_format]))
        return draw(st.one_of(ints, numbers, st.none()))

    def region(t):
        """(first, last) element offsets a tensor can reach in its storage, or None if empty."""
        if t.numel() == 0:
            return None
        lo = hi = t.storage_offset()
        for size, stride in zip(t.shape, t.stride()):
            reach = (size - 1) * stride
            lo, hi = (lo + reach, hi) if reach < 0 else (lo, hi + reach)
        return lo, hi

    def outputs(result):
        if isinstance(result, torch.Tensor):
            yield result
        elif isinstance(result, (list, tuple)):
            for r in result:
                yield from outputs(r)

    def inputs(args):
        for a in args:
            if isinstance(a, torch.Tensor):
                yield a
            elif isinstance(a, (list, tuple)):
                yield from inputs(a)

    def check(op, args):
        given_tensors = list(inputs(args))
        snapshots = [(t, t.untyped_storage(), region(t)) for t in given_tensors]
        try:
            result = op(*args)
        except Exception:  # refused: fine
            return
        for t, storage, reach in snapshots:
            whole = torch.tensor([], dtype=t.dtype).set_(storage)  # the test's own view of its own storage
            inside = torch.zeros(whole.numel(), dtype=torch.bool)
            if reach is not None:
                inside[reach[0] : reach[1] + 1] = True
            outside = whole[~inside]
            assert bool((outside == sentinel[t.dtype]).all()), f"{op}: wrote outside an input's view"
        for out in outputs(result):
            owner = next(((t, reach) for t, storage, reach in snapshots
                          if out.untyped_storage().data_ptr() == storage.data_ptr()), None)
            if owner is not None:
                reach, limit = region(out), owner[1]
                assert reach is None or (limit is not None and limit[0] <= reach[0] and reach[1] <= limit[1]), (
                    f"{op}: output {list(out.shape)}/{out.stride()} reaches outside its input's view")
            elif out.dtype in (torch.float32, torch.float64) and out.numel() < 10**8:
                assert not bool((out == sentinel[out.dtype]).any()), f"{op}: read a sentinel from outside an input"

    ops = names or sorted(name for name in ALLOWED_OPS if name not in PY_OPS)
    def fuzz_one(op):
        schema = op._schema.arguments

        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(st.data())
        def run(data):
            args = []
            for arg in schema:
                if arg.kwarg_only or (arg.default_value is not None and data.draw(st.booleans())):
                    break
                args.append(value(str(arg.real_type), data.draw))
            check(op, args)

        run()

    for name in ops:
        print(name, flush=True)
        fuzz_one(_resolve_op(name))
    print(f"fuzzed {len(ops)} operators, {examples} examples each")


if __name__ == "__main__":
    fuzz(int(sys.argv[1]), sys.argv[2:])
