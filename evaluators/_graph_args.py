"""How the checker reads a loaded node's arguments: the nodes it references, its scalar literals,
and which argument slots carry values rather than structure. Shared by the graph rules
(``evaluators/_graph_rules.py``) and the constant folding (``evaluators/_folding.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from evaluators._torch_model import Node, _Ref

#: Size arguments that make new elements out of nothing: ``ones(n).sum()``, ``x.expand(n).sum()``,
#: ``pad(x, [0, n]).mean()`` turn the size ``n`` into a value, so it counts like one (a literal size
#: on a node that reads counted values; on a constant node, with its fold).
SIZE_SLOTS: dict[str, tuple[str, ...]] = {
    "aten.ones.default": ("size",), "aten.zeros.default": ("size",), "aten.full.default": ("size",),
    "aten.eye.default": ("n",), "aten.expand.default": ("size",), "aten.repeat.default": ("repeats",),
    "aten.constant_pad_nd.default": ("pad",), "aten.pad.default": ("pad",),
}


def refs(value: Any) -> Iterator[str]:
    """Names of the nodes ``value`` (an argument, possibly nested) references."""
    if isinstance(value, _Ref):
        yield value.name
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from refs(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from refs(v)


def all_args(node: Node) -> list[Any]:
    return [*node.args, *node.kwargs.values()]


def schema_slots(node: Node) -> list[tuple[str, str, Any, Any]]:
    """``(arg name, schema type, default, value)`` for every argument the node passes (aten ops only)."""
    schema = node.fn._schema  # type: ignore[attr-defined]
    args = schema.arguments
    slots = [(a.name, str(a.type), a.default_value, v) for a, v in zip(args, node.args)]
    by_name = {a.name: a for a in args}
    for key, v in node.kwargs.items():
        a = by_name.get(key)
        slots.append((key, str(a.type) if a else "unknown", a.default_value if a else None, v))
    return slots


def is_value_slot(type_name: str) -> bool:
    return any(word in type_name for word in ("Tensor", "number", "float", "Scalar", "unknown"))


def scalars(value: Any) -> Iterator[Any]:
    """Every bool, int and float literal in ``value`` (lists flattened)."""
    if isinstance(value, (bool, int, float)):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from scalars(v)
