"""The checker's operator allow-list, grouped by what each group may do with token ids and values.

A strict allow-list rather than a deny list: an operator nobody thought about (``_reshape_alias``
takes raw sizes and strides like the denied ``as_strided``) stays out until someone puts it in a
group here. Every allowed operator bounds-checks its arguments; ``tests/evaluators/test_ops_fuzz.py``
fuzzes each one with adversarial sizes, strides and indices. Left out on purpose: anything over raw
memory (``as_strided``, ``_reshape_alias``, ``set_``), byte reinterpretation (``view.dtype``,
``view_as_real``), rounding (``floor``, ``round``, ``remainder``, ``div`` with a rounding mode),
uninitialised memory (``empty``), sorting, file, printing and RNG-seeding operators.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch

#: Python operators the exporter emits for arithmetic on symbolic sizes (and tuple indexing).
PY_OPS: dict[str, Callable[..., Any]] = {
    f"operator.{f.__name__}": f
    for f in (
        operator.add, operator.sub, operator.mul, operator.floordiv, operator.truediv, operator.mod,
        operator.neg, operator.pow, operator.eq, operator.ne, operator.lt, operator.le, operator.gt,
        operator.ge, operator.getitem,
    )
} | {f"torch.{f.__name__}": f for f in (torch.sym_max, torch.sym_min, torch.sym_not, torch.sym_float, torch.sym_int)}



def _ops(*names: str) -> frozenset[str]:
    return frozenset(f"aten.{n}" for n in names)


#: Ops that move or reshape values without computing on them: token ids may pass through them.
VIEW_OPS = _ops(
    "view.default", "reshape.default", "slice.Tensor", "select.int", "unsqueeze.default", "squeeze.dim",
    "squeeze.dims", "squeeze.default", "transpose.int", "permute.default", "t.default", "numpy_T.default",
    "expand.default", "contiguous.default", "clone.default", "alias.default", "detach.default",
    "flatten.using_ints", "unflatten.int", "split.Tensor", "split_with_sizes.default", "chunk.default",
    "unbind.int", "narrow.default", "cat.default", "stack.default", "flip.default", "repeat.default",
    "movedim.int", "lift_fresh_copy.default",
) | {"operator.getitem"}
#: Lookups: ``(table argument, index arguments)``. A token-valued index must hit a stored table.
LOOKUP_OPS = {
    "aten.embedding.default": (0, (1,)),
    "aten.index.Tensor": (0, (1,)),
    "aten.index_select.default": (0, (2,)),
    "aten.gather.default": (0, (2,)),
}
#: Ops whose result is a size or nothing: reading the shape of the tokens is structure.
SHAPE_OPS = _ops("sym_size.int", "sym_numel.default", "_assert_tensor_metadata.default", "_assert_scalar.default",
                 "sym_constrain_range_for_size.default")
#: Ops that create a tensor from literals and sizes alone.
CREATION_OPS = _ops(
    "arange.default", "arange.start", "arange.start_step", "zeros.default", "ones.default", "full.default",
    "zeros_like.default", "ones_like.default", "full_like.default", "scalar_tensor.default", "eye.default",
)
SOFTMAX_OPS = _ops("softmax.int", "_softmax.default", "_safe_softmax.default")
SDPA_OPS = _ops("scaled_dot_product_attention.default")
CONTRACTION_OPS = _ops("matmul.default", "bmm.default", "mm.default")
CAST_OPS = _ops("to.dtype", "_to_copy.default", "type_as.default")
VALUE_OPS = _ops(
    "add.Tensor", "add.Scalar", "sub.Tensor", "sub.Scalar", "rsub.Scalar", "mul.Tensor", "mul.Scalar",
    "div.Tensor", "div.Scalar", "neg.default", "exp.default", "log.default", "sqrt.default", "rsqrt.default",
    "reciprocal.default", "pow.Tensor_Scalar", "pow.Tensor_Tensor", "pow.Scalar", "square.default",
    "sin.default", "cos.default", "tanh.default", "sigmoid.default", "relu.default", "gelu.default",
    "silu.default", "abs.default", "maximum.default", "minimum.default", "clamp.default", "clamp_min.default",
    "clamp_max.default", "where.self", "where.ScalarOther", "where.ScalarSelf", "where.Scalar",
    "masked_fill.Scalar", "masked_fill.Tensor", "masked_fill_.Scalar", "masked_fill_.Tensor",
    "le.Scalar", "le.Tensor", "lt.Scalar", "lt.Tensor", "ge.Scalar", "ge.Tensor", "gt.Scalar", "gt.Tensor",
    "eq.Scalar", "eq.Tensor", "ne.Scalar", "ne.Tensor", "logical_and.default", "logical_or.default",
    "logical_not.default", "bitwise_not.default", "sum.dim_IntList", "sum.default", "mean.dim", "mean.default",
    "amax.default", "amin.default", "logsumexp.default", "mm.default", "bmm.default", "matmul.default",
    "linear.default", "addmm.default", "baddbmm.default", "layer_norm.default", "rms_norm.default",
    "log_softmax.int", "_log_softmax.default", "pad.default", "constant_pad_nd.default", "tril.default",
    "triu.default", "dropout.default",
) | SOFTMAX_OPS | SDPA_OPS
#: Python operators on sizes: structure unless their result feeds a value argument.
SIZE_OPS = frozenset(PY_OPS) - {"operator.getitem"}
ALLOWED_OPS = SIZE_OPS | VIEW_OPS | frozenset(LOOKUP_OPS) | SHAPE_OPS | CREATION_OPS | CAST_OPS | VALUE_OPS
