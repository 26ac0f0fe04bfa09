"""The rules a candidate's graph must obey, and the strict count of the numbers it depends on.

Everything here runs in the trusted checker on a graph loaded by ``_torch_model.load_program``.
A broken rule raises :class:`RuleError`, whose message starts with the rule's name, so a rejected
candidate is told in one line which rule caught it. The rules:

- ``allow-list``: every operator is on :data:`ALLOWED_OPS`. Nothing that takes raw sizes and strides
  (``as_strided``, ``_reshape_alias``), reinterprets bytes (``view.dtype``, ``view_as_real``),
  rounds values (``floor``, ``round``, ``remainder``), reads uninitialised memory (``empty``), sorts,
  or touches files. Every allowed operator bounds-checks its arguments (``tests/evaluators`` fuzzes
  them). In-place operators are allowed only where export emits them on fresh tensors; a write into
  an input or a stored tensor is caught when the graph runs.
- ``storage`` (checked at load): each stored tensor is dense, contiguous, starts at its storage's
  first byte and covers all of it, and all tensors on one storage share one dtype. No bytes hide
  behind a view, and no storage is read back under a second dtype.
- ``token-lookup``: token ids enter the model only through embedding-style lookups
  (``embedding``, ``index``, ``index_select``, ``gather``) into a table built from stored tensors
  and single counted literals (``scalar_tensor``), not from tensors that creation operators spread
  over many values (``arange``, ``ones`` ...).
  Token ids may be sliced, reshaped and concatenated on the way; any arithmetic or comparison on
  them, or a lookup into a table computed from literals (``arange(10)[tokens]``), is refused.
- ``narrowing-cast``: no cast that drops information from values (float -> int, float64 -> float32,
  ...): such casts round, and rounding unpacks numbers hidden in the low bits of another.
- ``folded-constant`` (``evaluators/_folding.py``): the graph must run with shuffled tokens and
  perturbed stored tensors; the nodes whose value does not change are constants built from
  structure, and what they hand the model is counted in ``params``.

The strict count ``params`` (see :func:`strict_count`) is what the search minimises: the stored
bytes of every parameter, buffer and lifted constant (each storage once, tied tensors once) in
float32 units (4 bytes = 1, so float64 costs 2 per element and a bool buffer 1 per 4 elements),
plus every scalar literal that enters a value computation (one per occurrence; a literal equal to the
operator's default, or to the graph's own sequence length, is not the model's). Shape, dim, index
and flag arguments are structure: listed (``info["structure_literals"]``), not counted, except a
size that makes new elements (:data:`SIZE_SLOTS`: ``w.expand(n).sum()`` is ``n w``), which counts unless
it is forced (:func:`forced_sizes`). Sizes of views, slices and reshapes only rearrange or drop
elements that are already counted, so they stay structure. Plus the folded constants
(``evaluators/_folding.py``): each value built from structure that enters the model costs the fewer
of its elements and its generator, and the literals inside it are not counted a second time.

``attention_ops`` (see :func:`attention_ops`) counts only real attention, found by dataflow on the
graph and shapes from a probe run: a normalisation (softmax, fused attention, or exp over a sum of
the same exp) over the key axis of scores that depend on the tokens and have a query and a key axis
both of sequence length, whose weights are contracted over the key axis with token-dependent values
and reach the output, and which put weight on other positions than the query's own in the probe; and the ablation
(:func:`_matters`): with each query reading only itself, the probe's scores must change.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from evaluators._folding import Fold, fold, folded_cost
from evaluators._graph_args import SIZE_SLOTS
from evaluators._graph_args import all_args as _all_args
from evaluators._graph_args import is_value_slot as _is_value_slot
from evaluators._graph_args import refs as _refs
from evaluators._graph_args import scalars as _scalars
from evaluators._graph_args import schema_slots as _schema_slots
from evaluators._ops import (
    CAST_OPS,
    CONTRACTION_OPS,
    CREATION_OPS,
    LOOKUP_OPS,
    SDPA_OPS,
    SHAPE_OPS,
    SIZE_OPS,
    SOFTMAX_OPS,
    VIEW_OPS,
)
from evaluators._torch_model import (
    PY_OPS,
    Graph,
    Node,
    Program,
    RuleError,
    _Ref,
    count_parameters,
)

SCALAR_OP = "aten.scalar_tensor.default"
_FLOAT_BYTES = {torch.float16: 2, torch.bfloat16: 2, torch.float32: 4, torch.float64: 8}


# --- dataflow -----------------------------------------------------------------------------------------


@dataclass
class Flow:
    """Per-value facts: raw token ids, dependence on the tokens, built from stored tensors only."""

    tokens: set[str]  # values that are token ids (or slices of them)
    depends: set[str]  # values that depend on the token ids at all
    stored_only: set[str]  # tensors computed from stored tensors alone (valid lookup tables)


def dataflow(graph: Graph) -> Flow:
    """Propagate token taint through the graph; ``token-lookup`` is checked on the way."""
    token_input = next(i.name for i in graph.inputs if i.kind == "input")
    flow = Flow({token_input}, {token_input}, {i.name for i in graph.inputs if i.kind != "input"})
    for node in graph.nodes:
        refs = [r for a in _all_args(node) for r in _refs(a)]
        if any(r in flow.depends for r in refs):
            flow.depends.add(node.name)
        if node.op in SHAPE_OPS:
            flow.depends.discard(node.name)
            continue
        if node.op == SCALAR_OP or (refs and all(r in flow.stored_only for r in refs) and node.op not in CREATION_OPS):
            flow.stored_only.add(node.name)  # a scalar_tensor holds one counted literal: as good as stored
        tainted = [r for r in refs if r in flow.tokens]
        if not tainted:
            continue
        if node.op in VIEW_OPS:
            flow.tokens.add(node.name)
        elif node.op in LOOKUP_OPS:
            _lookup(node, flow)
        else:
            raise RuleError("token-lookup", f"{node.op} computes on token ids; tokens may only index a stored table "
                            "(embedding, index, index_select, gather)")
    if any(r in flow.tokens for r in _refs(graph.output)):
        raise RuleError("token-lookup", "the model returns token ids as scores")
    return flow


def _lookup(node: Node, flow: Flow) -> None:
    table_at, index_at = LOOKUP_OPS[node.op]
    table = set(_refs(node.args[table_at])) if len(node.args) > table_at else set()
    index = {r for i in index_at if len(node.args) > i for r in _refs(node.args[i])}
    if table & flow.tokens:
        if index & flow.tokens:
            raise RuleError("token-lookup", f"{node.op} indexes token ids with token ids")
        flow.tokens.add(node.name)  # picking token ids at computed positions: still token ids
        return
    if not table or not table <= flow.stored_only:
        raise RuleError("token-lookup", f"{node.op} looks token ids up in a table that is not built from stored "
                        "tensors alone (a table computed from literals is arithmetic on the ids)")


# --- literals -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literals:
    values: Counter  # literal value (as written) -> occurrences entering value computations
    structure: Counter  # shape/dim/index/flag literals: listed, not counted


def literals(graph: Graph, constant: frozenset[str] = frozenset()) -> Literals:
    """Sort the graph's literals into counted values and structure. Nodes in ``constant`` (built from
    structure, see ``evaluators/_folding.py``) are skipped: their literals are counted with their fold."""
    nodes = {n.name: n for n in graph.nodes}
    values: Counter = Counter()
    structure: Counter = Counter()
    value_sizes: set[str] = set()  # size expressions that feed a value argument
    forced = forced_sizes(graph)
    live = _reaches_output(graph)
    for node in graph.nodes:
        if node.op in PY_OPS or node.name in constant:
            continue
        for name, type_name, default, v in _schema_slots(node):
            if name in SIZE_SLOTS.get(node.op, ()) and node.name in live:
                for s in _scalars(v):  # a size that makes values (w.expand(n).sum() is n w): a value literal
                    (structure if s in forced else values)[_key(s)] += 1
                _size_ancestors(v, nodes, value_sizes)
            elif _is_value_slot(type_name):
                for s in _scalars(v):
                    if not _is_default(s, default) and s != graph.seq_len:
                        values[_key(s)] += 1
                _size_ancestors(v, nodes, value_sizes)
            else:
                structure.update(_key(s) for s in _scalars(v))
    for node in graph.nodes:
        if node.op in SIZE_OPS:
            target = values if node.name in value_sizes and node.name not in constant else structure
            target.update(_key(s) for s in _scalars(list(node.args)))
        elif node.op == "operator.getitem":
            structure.update(_key(s) for s in _scalars(list(node.args[1:])))
    return Literals(values, structure)


def forced_sizes(graph: Graph) -> set[int]:
    """Sizes the model does not choose: the sequence length, every dim of a stored non-empty tensor
    (paid for by its elements), and -1, 0, 1 (keep, nothing, one: they make no new number)."""
    forced = {-1, 0, 1} | ({graph.seq_len} if graph.seq_len is not None else set())
    for i in graph.inputs:
        if i.tensor is not None and i.tensor.numel() > 0:
            forced.update(int(d) for d in i.tensor.shape)
    return forced


def _size_ancestors(value: Any, nodes: dict[str, Node], out: set[str]) -> None:
    stack = list(_refs(value))
    while stack:
        node = nodes.get(stack.pop())
        if node is not None and node.op in SIZE_OPS and node.name not in out:
            out.add(node.name)
            stack.extend(r for a in node.args for r in _refs(a))


def _is_default(value: Any, default: Any) -> bool:
    return default is not None and type(value) is type(default) and value == default


def _key(value: Any) -> str:
    return repr(value) if not isinstance(value, float) or math.isfinite(value) else str(value)


# --- the strict count ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StrictCount:
    """``params``: stored float32 units, counted literals and folded constants; the parts too."""

    params: int
    stored_units: int
    literals: int
    structure_literals: int
    folded_units: int = 0
    folded: tuple[str, ...] = ()  # ``"node: cost (elements|generator)"`` per folded value


def strict_count(program: Program, prompts: torch.Tensor, max_len: int) -> StrictCount:
    """Count every number the computation depends on (see the module docstring for the rules).

    ``prompts`` padded up to each length are the folding's probe (``evaluators/_folding.py``)."""
    storages: dict[int, int] = {}
    for _, t in program.tensors():
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    stored = sum(math.ceil(n / 4) for n in storages.values())
    counted: Counter = Counter()
    structure: Counter = Counter()
    folds: list[Fold] = []
    for graph in program.graphs:
        lengths = range(prompts.shape[1], max_len + 1) if graph.seq_len is None else (graph.seq_len,)
        graph_folds = [fold(graph, prompts, n) for n in lengths]
        folds += graph_folds
        found = literals(graph, frozenset().union(*(f.constant for f in graph_folds)))
        counted |= found.values  # one graph per length repeats the same literals: count them once
        structure |= found.structure
    n_literals = sum(counted.values())
    n_folded, items = folded_cost(folds)
    return StrictCount(stored + n_literals + n_folded, stored, n_literals, sum(structure.values()), n_folded, tuple(items))


# --- probe run: casts and attention -------------------------------------------------------------


def check_casts(graph: Graph, env: dict[str, Any]) -> None:
    """``narrowing-cast``: refuse casts that round values (seen on a probe run's dtypes)."""
    for node in graph.nodes:
        if node.op not in CAST_OPS:
            continue
        src, out = _tensor(env, node.args[0]), env.get(node.name)
        if isinstance(src, torch.Tensor) and isinstance(out, torch.Tensor) and _narrows(src.dtype, out.dtype):
            raise RuleError("narrowing-cast", f"{node.op} casts {src.dtype} to {out.dtype}, which rounds values")


def _narrows(src: torch.dtype, dst: torch.dtype) -> bool:
    if src not in _FLOAT_BYTES:
        return False  # bool and integer sources: integer -> float and widening are exact here
    return dst not in _FLOAT_BYTES or _FLOAT_BYTES[dst] < _FLOAT_BYTES[src] or {src, dst} == {torch.float16, torch.bfloat16}


def _tensor(env: dict[str, Any], value: Any) -> Any:
    return env.get(value.name) if isinstance(value, _Ref) else value


@dataclass(frozen=True)
class Trace:
    """One probe run of a graph: the value of every node, and the probe's sequence length."""

    env: dict[str, Any]
    length: int
    tokens: torch.Tensor
    out: Any


def seq_axes(traces: Iterable[Trace], name: str) -> set[int]:
    """Axes (counted from the end) of value ``name`` whose size is the sequence length in every probe."""
    axes: set[int] | None = None
    for trace in traces:
        v = trace.env.get(name)
        if not isinstance(v, torch.Tensor):
            return set()
        found = {d - v.dim() for d in range(v.dim()) if v.shape[d] == trace.length}
        axes = found if axes is None else axes & found
    return axes or set()


def attention_ops(graph: Graph, flow: Flow, traces: list[Trace]) -> int:
    """Real attention normalisations in ``graph`` (the module docstring says what counts)."""
    consumers: dict[str, list[Node]] = {}
    for node in graph.nodes:
        for r in set(r for a in _all_args(node) for r in _refs(a)):
            consumers.setdefault(r, []).append(node)
    live = _reaches_output(graph)
    count = 0
    for node in graph.nodes:
        if node.op in SDPA_OPS:
            count += _real_sdpa(graph, node, flow, traces, live)
        elif node.name in live:
            norm = _normalisation(node, graph)
            if norm is not None and _real_softmax(graph, node, *norm, flow, traces, consumers, live):
                count += 1
    return count


def _reaches_output(graph: Graph) -> set[str]:
    live = set(_refs(graph.output))
    for node in reversed(graph.nodes):
        if node.name in live:
            live.update(r for a in _all_args(node) for r in _refs(a))
    return live


def _normalisation(node: Node, graph: Graph) -> tuple[str, int] | None:
    """``(scores, dim)`` if ``node`` normalises scores: a softmax, or exp(s) over a sum of exp(s)."""
    if node.op in SOFTMAX_OPS and len(node.args) >= 2 and isinstance(node.args[0], _Ref) and type(node.args[1]) is int:
        return node.args[0].name, node.args[1]
    if node.op != "aten.div.Tensor" or len(node.args) != 2 or not isinstance(node.args[0], _Ref):
        return None
    nodes = {n.name: n for n in graph.nodes}
    top = nodes.get(node.args[0].name)
    if top is None or top.op != "aten.exp.default" or not isinstance(top.args[0], _Ref):
        return None
    stack, seen = [(node.args[1], 0)], 0
    while stack and seen < 50:
        value, depth = stack.pop()
        seen += 1
        below = nodes.get(value.name) if isinstance(value, _Ref) else None
        if below is None or depth > 3:
            continue
        if below.op == "aten.sum.dim_IntList" and below.args and below.args[0] == node.args[0]:
            dims = below.args[1] if len(below.args) > 1 else None
            if isinstance(dims, list) and len(dims) == 1 and type(dims[0]) is int:
                return top.args[0].name, dims[0]
        stack.extend((a, depth + 1) for a in below.args)
    return None


def _real_softmax(graph: Graph, node: Node, scores: str, dim: int, flow: Flow, traces: list[Trace],
                  consumers: dict[str, list[Node]], live: set[str]) -> bool:
    weights = traces[0].env.get(node.name)
    if scores not in flow.depends or not isinstance(weights, torch.Tensor) or weights.dim() < 2:
        return False
    key = dim - weights.dim() if dim >= 0 else dim
    axes = seq_axes(traces, node.name)
    if key not in axes or len(axes) < 2:
        return False
    query = max(a for a in axes if a != key)
    if not (_contracted(node.name, key, flow, traces, consumers, live) and _mixes(weights, query, key)):
        return False
    shape = [1] * weights.dim()
    shape[query] = shape[key] = weights.shape[key]
    own = torch.eye(weights.shape[key], dtype=weights.dtype).reshape(shape).expand_as(weights).clone()
    return _matters(graph, traces[0], node.name, own)


def _contracted(name: str, key: int, flow: Flow, traces: list[Trace], consumers: dict[str, list[Node]],
                live: set[str]) -> bool:
    """The weights (through views) meet token-dependent values in a matmul over the key axis."""
    stack, seen = [name], set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        for user in consumers.get(current, []):
            if user.op in VIEW_OPS:
                stack.append(user.name)
            elif user.op in CONTRACTION_OPS and user.name in live and len(user.args) == 2:
                left, right = user.args
                if isinstance(left, _Ref) and left.name == current and isinstance(right, _Ref) and right.name in flow.depends:
                    if -1 in seq_axes(traces, current) and -2 in seq_axes(traces, right.name):
                        return True
    return False


def _mixes(weights: torch.Tensor, query: int, key: int) -> bool:
    """At least 1 % of the probe's attention weight lies off the query's own position."""
    w = weights.detach().double().movedim((query, key), (-2, -1)).abs()
    total = float(w.sum())
    off = total - float(torch.diagonal(w, dim1=-2, dim2=-1).sum())
    return total > 0 and off >= 0.01 * total


def _real_sdpa(graph: Graph, node: Node, flow: Flow, traces: list[Trace], live: set[str]) -> int:
    if node.name not in live or len(node.args) < 3 or not all(isinstance(a, _Ref) for a in node.args[:3]):
        return 0
    q, k, v = (a.name for a in node.args[:3])
    if not (q in flow.depends and k in flow.depends and v in flow.depends):
        return 0
    if not all(-2 in seq_axes(traces, n) for n in (q, k, v)):
        return 0
    env = traces[0].env
    if not _mixes(_sdpa_weights(node, env), -2, -1):
        return 0
    value = env.get(v)
    return int(isinstance(value, torch.Tensor) and _matters(graph, traces[0], node.name, value.clone()))


def _matters(graph: Graph, trace: Trace, name: str, own: torch.Tensor) -> bool:
    """The ablation: with each query reading only its own position (``own`` in place of node
    ``name``'s value), the probe's scores move by more than 0.1 % of their largest magnitude. An
    attention whose mixing cannot reach the logits (scaled by a zero, masked out later) fails it."""
    with torch.no_grad():
        _, out = graph.run(trace.tokens, replace={name: own})
    base = trace.out
    if not isinstance(out, torch.Tensor) or not isinstance(base, torch.Tensor) or out.shape != base.shape:
        return True  # a different output shape is an effect
    scale = float(base.double().abs().nan_to_num(0.0, 0.0, 0.0).max()) if base.numel() else 0.0
    diff = (out.double() - base.double()).abs().nan_to_num(0.0, 0.0, 0.0)
    return bool(diff.numel()) and float(diff.max()) > 1e-3 * scale


def _sdpa_weights(node: Node, env: dict[str, Any]) -> torch.Tensor:
    """The attention weights a fused attention node computed on the probe."""
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal")
    bound = dict(zip(names, node.args)) | node.kwargs
    q, k = _tensor(env, bound["query"]).double(), _tensor(env, bound["key"]).double()
    scale = bound.get("scale") or 1 / math.sqrt(q.shape[-1])
    scores = (q @ k.transpose(-2, -1)) * scale
    if bound.get("is_causal"):
        t = scores.shape[-1]
        scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), -math.inf)
    mask = _tensor(env, bound.get("attn_mask"))
    if isinstance(mask, torch.Tensor):
        scores = scores.masked_fill(~mask, -math.inf) if mask.dtype == torch.bool else scores + mask.double()
    return torch.softmax(scores, -1).nan_to_num(0.0)


# --- everything at once ----------------------------------------------------------------------------


def inspect_program(program: Program, prompts: torch.Tensor, max_len: int) -> tuple[dict[str, int], dict[str, Any]]:
    """Apply every rule to ``program`` and measure it; raises :class:`RuleError`.

    ``prompts`` (a few real prompts) padded with token 0 up to ``max_len`` are the probe: a dynamic
    graph runs at the two longest lengths (an axis is the sequence axis only if it follows the
    length), a graph per length runs at its own length. Returns ``(metrics, info)``.
    """
    per_graph = []
    for graph in program.graphs:
        flow = dataflow(graph)
        lengths = (max_len - 1, max_len) if graph.seq_len is None else (graph.seq_len,)
        traces = [_trace(graph, prompts, n) for n in lengths]
        for trace in traces:
            check_casts(graph, trace.env)
        per_graph.append(attention_ops(graph, flow, traces))
    strict, board = strict_count(program, prompts, max_len), count_parameters(program)
    metrics = {
        "params": strict.params,
        "params_adderboard": board.unique,
        "params_numel": board.numel,
        "params_nonzero": board.nonzero,
        "constants_numel": board.constants,
        "mask_numel": board.masks,
        "attention_ops": min(per_graph),
    }
    info = {"stored_units": strict.stored_units, "value_literals": strict.literals,
            "folded_units": strict.folded_units, "folded": list(strict.folded[:20]),
            "structure_literals": strict.structure_literals}
    return metrics, info


def _trace(graph: Graph, prompts: torch.Tensor, length: int) -> Trace:
    tokens = torch.cat([prompts, prompts.new_zeros(prompts.shape[0], max(0, length - prompts.shape[1]))], 1)[:, :length]
    with torch.no_grad():
        env, out = graph.run(tokens)
    return Trace(env, length, tokens, out)
