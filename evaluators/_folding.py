"""Constant folding: what numbers built from structure cost in the strict count (rule ``folded-constant``).

Stored tensors and literals are counted, but a graph can also *make* numbers: ``ones(1) + ones(1)``,
``w / w``, ``cat([x] * k).sum()``, ``eye(n)``, ``x.shape[1]`` used as a value, any arithmetic on
those. Such a number depends on neither the tokens nor the stored values, so an LLM could rebuild
every weight this way and store nothing. The checker finds them by value, not by spelling:

- **constant nodes**: the graph runs twice on the probe, once as given and once with the tokens
  shuffled and every stored float tensor perturbed (bool tensors flipped; integer tensors, which
  only index, are left as they are). A node whose value is the same in both runs (each element
  within a relative 1e-6) is constant: it is built from structure, whatever ops spell it
  (``w / w`` and ``emb / emb`` are constant too). A dynamic graph is folded at every length the
  checker decodes, a graph per length at its own.
- **the frontier**: a constant node read by a non-constant node through a value, index or
  new-elements size argument (or returned) hands the model numbers. View shapes and dims are
  structure and hand over nothing.
- **its cost**, counted in ``params`` like literals: the fewer of its *elements* (as many numbers
  as it holds) and its *generator*, the constant subgraph that computes it, written out: 1 per
  node, plus 1 per int or float literal among its arguments (sizes and indices included) and 1 per
  entry of a tensor list (``cat``/``stack``). Reading the input's shape (``sym_size``) costs
  nothing: the sequence length is not the model's choice. Generators shared by several frontier
  values are counted once. So 9045 built from ``ones(1)`` by 13 doublings costs 1, like the
  literal it replaces (its one element is shorter than its 15-unit generator); ``cat([one] * k)``
  read as a tensor costs k (elements or list entries), 1 after ``sum``; a 58-weight table rebuilt
  from literals costs its 58 elements; only a table with a short description is cheaper than
  storing it (``arange(10)`` costs 2), which is compression, not hiding.
- Literals inside constant nodes are not counted again as value literals: they are part of the
  generator that is counted.

No exemption for positional encodings or masks: a sinusoidal code or a causal mask built from
``arange`` costs its generator, a dozen units, far fewer than its elements. Nothing built from
structure is free, and honest structure stays cheap. Exempting boolean masks or index tensors would
not be safe: ``table[bits]`` or ``p.masked_fill(bits, 0)`` turns a free bit pattern into weights.

Not closed, and why: numbers written in the *wiring* of non-constant values, e.g. a stored
``p = 1.0`` then ``p + p + p``, or ``cat([p, zero, p, ...])`` as bits. These are arithmetic on
counted values; telling them from honest architecture (``x + x``, a reparametrised query built from
3 angles) would need to count the architecture itself. Each such number costs at least one graph
node (at most 20,000) and one stored value or literal to start from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from evaluators._graph_args import (
    SIZE_SLOTS,
    is_value_slot,
    refs,
    scalars,
    schema_slots,
)
from evaluators._ops import PY_OPS, SHAPE_OPS
from evaluators._torch_model import Graph, Node, RuleError

#: Relative difference (per element) under which a value counts as unchanged by the perturbation.
SAME_RTOL = 1e-6
PERTURB_SEED = 20261202


@dataclass(frozen=True)
class Fold:
    """The folded constants of one graph at one length."""

    constant: frozenset[str]  # nodes whose value depends on neither tokens nor stored values
    cost: int  # what they add to ``params``
    items: tuple[str, ...]  # ``"node: cost (elements|generator)"`` per frontier value, for ``info``
    signature: tuple[str, ...]  # the counted constant nodes, written out (one graph per length: counted once)


def fold(graph: Graph, prompts: torch.Tensor, length: int) -> Fold:
    """Find ``graph``'s constant nodes at ``length`` and what the values they hand over cost."""
    tokens = _pad(prompts, length)
    gen = torch.Generator().manual_seed(PERTURB_SEED)
    shuffled = tokens.flatten()[torch.randperm(tokens.numel(), generator=gen)].view_as(tokens)
    stored = _perturbed(graph, gen)
    with torch.no_grad():
        base, _ = graph.run(tokens, snapshot=True)
        try:
            moved, _ = graph.run(shuffled, stored=stored, snapshot=True)
        except Exception as exc:  # an honest graph runs on any tokens and weights of the right shape
            raise RuleError("folded-constant", f"the graph fails when its tokens and stored values change: {exc}") from None
    constant = frozenset(n.name for n in graph.nodes if _same(base[n.name], moved[n.name]))
    nodes = {n.name: n for n in graph.nodes}
    items, union, counted = [], set(), set()
    for name in _frontier(graph, constant):
        generator = _generator(name, nodes, constant)
        counted |= generator
        written = sum(_cost(nodes[g]) for g in generator)
        elements = _elements(base[name])
        if elements < written:
            items.append((name, elements, "elements"))
        else:
            union |= generator
            items.append((name, written, "generator"))
    cost = sum(e for _, e, how in items if how == "elements") + sum(_cost(nodes[g]) for g in union)
    signature = tuple(sorted(_written(nodes[g], length) for g in counted))
    return Fold(constant, cost, tuple(f"{n}: {c} ({how})" for n, c, how in items), signature)


def folded_cost(folds: Iterable[Fold]) -> tuple[int, list[str]]:
    """``params`` units of a program's folds: a graph folded at several lengths, or one graph per
    length with the same constant subgraphs, counts the largest cost once; different constant
    subgraphs (different numbers at different lengths) each count."""
    best: dict[tuple[str, ...], Fold] = {}
    for f in folds:
        if f.signature not in best or f.cost > best[f.signature].cost:
            best[f.signature] = f
    items = [item for f in best.values() for item in f.items]
    return sum(f.cost for f in best.values()), items


def _frontier(graph: Graph, constant: frozenset[str]) -> list[str]:
    """Constant nodes read by non-constant nodes as values, indices or new-element sizes, or returned."""
    found: dict[str, None] = {}
    for node in graph.nodes:
        if node.name in constant or node.op in PY_OPS:
            continue
        for name, type_name, _, value in schema_slots(node):
            if is_value_slot(type_name) or name in SIZE_SLOTS.get(node.op, ()):
                found.update((r, None) for r in refs(value) if r in constant)
    found.update((r, None) for r in refs(graph.output) if r in constant)
    return list(found)


def _generator(name: str, nodes: dict[str, Node], constant: frozenset[str]) -> set[str]:
    """``name`` and every constant node it is computed from."""
    out, stack = set(), [name]
    while stack:
        current = stack.pop()
        if current in out or current not in nodes:
            continue
        out.add(current)
        node = nodes[current]
        stack.extend(r for a in (*node.args, *node.kwargs.values()) for r in refs(a) if r in constant)
    return out


def _cost(node: Node) -> int:
    """Writing the node out: 1, plus its int/float literals and the entries of its tensor lists."""
    if node.op in SHAPE_OPS:
        return 0
    args = (*node.args, *node.kwargs.values())
    literals = sum(1 for a in args for s in scalars(a) if type(s) is not bool)
    listed = sum(1 for a in args if isinstance(a, (list, tuple)) for r in refs(a))
    return 1 + literals + listed


def _written(node: Node, length: int) -> str:
    """The node as written, with the graph's own sequence length as ``T`` (a graph per length)."""
    args = [("T" if s == length and type(s) is int else repr(s)) for a in (*node.args, *node.kwargs.values())
            for s in scalars(a) if type(s) is not bool]
    return f"{node.op}({', '.join(args)})"


def _elements(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel()
    if isinstance(value, (list, tuple)):
        return sum(_elements(v) for v in value)
    return 0 if value is None else 1


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if not a.is_floating_point():
            return bool(torch.equal(a, b))
        x, y = a.double(), b.double()
        equal = (x == y) | (x.isnan() & y.isnan())  # infinities of one sign compare equal here
        close = (x - y).abs() <= SAME_RTOL * torch.maximum(x.abs(), y.abs())  # element by element
        close &= x.isfinite() & y.isfinite()
        return bool((equal | close).all())
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return False
    return bool(a == b)


def _perturbed(graph: Graph, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Every stored tensor perturbed, one perturbation per storage: tensors tied to one storage (a
    parameter and its lifted copy) stay equal, so ``w / w_copy`` is still one."""
    by_storage: dict[int, torch.Tensor] = {}
    out = {}
    for i in graph.inputs:
        if i.tensor is not None:
            ptr = i.tensor.untyped_storage().data_ptr()
            flat = by_storage.setdefault(ptr, _perturb(i.tensor.reshape(-1), gen))
            out[i.name] = flat.view(i.tensor.shape)
    return out


def _perturb(t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A different stored tensor of the same shape and dtype: floats scaled and shifted by random
    amounts, bools flipped, integers (indices) unchanged."""
    if t.dtype == torch.bool:
        return ~t
    if not t.is_floating_point():
        return t.clone()
    u = torch.rand(t.shape, generator=gen, dtype=torch.float64) * 0.5 + 0.5
    v = torch.rand(t.shape, generator=gen, dtype=torch.float64) * 0.5 + 0.5
    return (t.double() * (1 + 0.5 * u) + 0.05 * v).to(t.dtype)


def _pad(prompts: torch.Tensor, length: int) -> torch.Tensor:
    pad = prompts.new_zeros(prompts.shape[0], max(0, length - prompts.shape[1]))
    return torch.cat([prompts, pad], 1)[:, :length]
