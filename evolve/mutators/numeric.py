"""Numeric-literal and small AST edits: the offline mutators (no LLM).

Sites are found with ``ast`` and edited in the source text by character position, so formatting and
comments survive. ``numeric`` is the tuned default:

* *where*: literals are weighted by how "tuned" they look. A value written with many significant
  digits (``-9005.0``, ``0.7071``) is more likely a hand-set constant than ``0``, ``1`` or ``100``;
  literals in shape/index positions (``x[..., 3]``, ``view(B, T, 4)``, ``range(11)``) are mostly
  structure and get a low weight. Optionally (``adaptive``) sites whose edits improved a parent
  before are preferred; that credit is the mutator's state.
* *how*: a relative nudge at a log-uniform scale between 0.05% and 30% of the value (so shifting
  ``-9005`` by a few tens is common), a snap to a rounder value, a jump by up to 10x, a rare sign
  flip. When the chosen literal has siblings of similar magnitude in the same list/tuple/call
  (coupled thresholds such as ``[-9005.0, -9015.0]``), half the time they move together: the same
  shift, or the same scale factor, which keeps their differences or ratios.
* *structure*: at a low rate, one AST edit instead: swap ``+``/``-`` or ``*``/``/``, or drop a term
  of a sum.

``random`` is the baseline: one uniformly chosen site, an unbiased log-uniform change, no heuristics.
"""

from __future__ import annotations

import ast
import functools
import math
import random
import threading
from dataclasses import dataclass
from typing import Any

from evolve import pyast
from pydantic import Field

from evolve.mutators.base import EditError, Mutation, MutationContext, Mutator, syntax_error
from evolve.plugins import Params
from evolve.mutators.blocks import check_outside_unchanged, inside, layout

#: Calls whose numeric arguments are mostly shapes, dims or counts (structure, not tuning).
STRUCTURAL_CALLS = frozenset({
    "range", "view", "reshape", "zeros", "ones", "empty", "full", "arange", "randn", "rand", "randint",
    "permute", "transpose", "repeat", "expand", "split", "chunk", "unsqueeze", "squeeze", "size",
    "narrow", "select", "flatten", "unflatten", "Linear", "Embedding", "LayerNorm", "new_zeros", "new_ones",
})
STRUCTURAL_KEYWORDS = frozenset({"dim", "axis", "dims", "shape", "size"})
_ATOMS = (ast.Name, ast.Constant, ast.Attribute, ast.Subscript, ast.Call, ast.List, ast.Tuple, ast.Dict, ast.Set)
_SWAP = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "/"), ast.Div: ("/", "*")}


@dataclass(frozen=True)
class Literal:
    """One numeric literal (with its unary minus, if any) in the evolvable regions."""

    start: int  # character offsets in the source
    end: int
    value: int | float
    text: str
    line: int
    label: str  # what it belongs to, e.g. "model.mlp.fc_bias"
    key: str  # stable identity for credit: label + ordinal within the label
    weight: float
    container: int | None  # enclosing list/tuple/set/dict/call, for group moves
    parens_if_negative: bool  # a new negative value must be parenthesised here (e.g. ``2 ** -3``)

    @property
    def is_int(self) -> bool:
        return isinstance(self.value, int)


@dataclass(frozen=True)
class OpEdit:
    """A ready-made structural edit: replace ``[start, end)`` with ``text``."""

    start: int
    end: int
    text: str
    line: int
    summary: str


@dataclass(frozen=True)
class Sites:
    literals: tuple[Literal, ...]
    ops: tuple[OpEdit, ...]


# --- finding sites ------------------------------------------------------------------------------
class _Positions:
    """Turns ``ast`` (line, UTF-8 byte column) positions into character offsets of the source."""

    def __init__(self, source: str) -> None:
        self.lines = source.split("\n")
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line) + 1)

    def offset(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8", errors="replace"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        """Byte-exact text offsets of an expression or statement node (both carry positions)."""
        assert isinstance(node, (ast.expr, ast.stmt)) and node.end_lineno is not None and node.end_col_offset is not None
        return self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset)


def significant_digits(text: str) -> int:
    """Significant digits of a literal as written: ``-9005.0`` -> 4, ``0.01`` -> 1, ``100`` -> 1."""
    body = text.lstrip("+- \t").replace("_", "").lower()
    if body.startswith(("0x", "0o", "0b")):
        body = str(int(body, 0))
    mantissa = body.split("e")[0].replace(".", "")
    return max(1, len(mantissa.strip("0")))


def _label(stmt: ast.stmt, chain: list[ast.AST]) -> str:
    if isinstance(stmt, ast.Assign):
        base = ast.unparse(stmt.targets[0])
    elif isinstance(stmt, (ast.AugAssign, ast.AnnAssign)):
        base = ast.unparse(stmt.target)
    elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        base = ast.unparse(stmt.value.func)
        head, _, method = base.rpartition(".")
        base = head if head and method.endswith("_") else base  # model.w.copy_(...) -> model.w
    elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
        base = f"{stmt.name}()"
    else:
        base = type(stmt).__name__.lower()
    keyword = next((n.arg for n in chain if isinstance(n, ast.keyword) and n.arg), None)
    label = f"{base}:{keyword}" if keyword else base
    return label if len(label) <= 48 else label[:45] + "..."


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _structural(chain: list[ast.AST]) -> bool:
    """Whether the literal sits in an index, slice, shape argument or dim keyword."""
    for child, parent in zip(chain, chain[1:]):
        if isinstance(parent, ast.Subscript) and child is parent.slice or isinstance(parent, ast.Slice):
            return True
        if isinstance(parent, ast.Call) and child is not parent.func and _call_name(parent) in STRUCTURAL_CALLS:
            return True
        if isinstance(child, ast.keyword) and child.arg in STRUCTURAL_KEYWORDS:
            return True
    return False


@functools.lru_cache(maxsize=64)
def find_sites(source: str) -> Sites:
    """All editable literals and structural edits inside the EVOLVE-BLOCK regions of ``source``.

    Raises :class:`EditError` when the source does not parse or its markers are broken. Cached:
    a hill climber mutates the same parent many times.
    """
    error = syntax_error(source)
    if error:
        raise EditError(f"parent program: {error.removeprefix('result ')}")
    try:
        spans = layout(source).spans
    except EditError as exc:
        raise EditError(f"parent program: {exc}") from None
    tree = pyast.parse(source)
    pos = _Positions(source)
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    in_fstring = {id(n) for f in ast.walk(tree) if isinstance(f, ast.JoinedStr) for n in ast.walk(f)}
    containers: dict[int, int] = {}
    literals: list[Literal] = []
    ordinals: dict[str, int] = {}
    ops: list[OpEdit] = []
    for node in ast.walk(tree):
        if id(node) in in_fstring:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and type(node.value) in (int, float) and math.isfinite(node.value):
            lit = _literal(node, source, pos, parents, containers, ordinals)
            if lit is not None and inside(spans, lit.start, lit.end):
                literals.append(lit)
        elif isinstance(node, ast.BinOp) and type(node.op) in _SWAP:
            start, end = pos.span(node)
            if inside(spans, start, end):
                ops.extend(_op_edits(node, source, pos))
    literals.sort(key=lambda lit: lit.start)
    ops.sort(key=lambda op: (op.start, op.summary))
    return Sites(tuple(literals), tuple(ops))


def _chain(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> tuple[list[ast.AST], ast.stmt]:
    """The ancestors of ``node`` up to (and including) its statement, innermost first."""
    chain = [node]
    while not isinstance(chain[-1], ast.stmt) and chain[-1] in parents:
        chain.append(parents[chain[-1]])
    stmt = chain[-1]
    return chain, stmt if isinstance(stmt, ast.stmt) else ast.Pass()


def _literal(node: ast.Constant, source: str, pos: _Positions, parents: dict[ast.AST, ast.AST],
             containers: dict[Any, Any], ordinals: dict[Any, Any]) -> Literal | None:
    site: ast.AST = node
    assert isinstance(node.value, (int, float))
    value: int | float = node.value
    parent = parents.get(node)
    if isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.USub):
        site, value, parent = parent, -value, parents.get(parent)
    start, end = pos.span(site)
    text = source[start:end]
    try:
        if ast.literal_eval(text) != value:
            return None
    except (ValueError, SyntaxError):
        return None
    chain, stmt = _chain(site, parents)
    label = _label(stmt, chain)
    ordinal = ordinals.get(label, 0)
    ordinals[label] = ordinal + 1
    weight = 0.25 if value == 0 else 2.0 ** (min(significant_digits(text), 5) - 1)
    if _structural(chain):
        weight *= 0.25
    holder = next((n for n in chain[1:] if isinstance(n, (ast.List, ast.Tuple, ast.Set, ast.Dict, ast.Call))), None)
    container = None if holder is None else containers.setdefault(id(holder), len(containers))
    needs_parens = (
        isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Pow) and parent.left is site
        or isinstance(parent, (ast.Attribute, ast.Subscript)) and parent.value is site
    )
    return Literal(start, end, value, text, node.lineno, label, f"{label}#{ordinal}", weight, container, needs_parens)


def _operator_offset(source: str, start: int, end: int, symbol: str) -> int | None:
    """Offset of the single operator ``symbol`` between two operands (skipping comments), or None."""
    found = []
    i = start
    while i < end:
        ch = source[i]
        if ch == "#":
            i = source.find("\n", i, end)
            if i == -1:
                break
            continue
        if ch == symbol and source[i + 1:i + 2] != symbol and source[i - 1:i] != symbol:
            found.append(i)
        i += 1
    return found[0] if len(found) == 1 else None


def _op_edits(node: ast.BinOp, source: str, pos: _Positions) -> list[OpEdit]:
    start, end = pos.span(node)
    left_start, left_end = pos.span(node.left)
    right_start, right_end = pos.span(node.right)
    old, new = _SWAP[type(node.op)]
    edits = []
    at = _operator_offset(source, left_end, right_start, old)
    if at is not None:
        edits.append(OpEdit(at, at + 1, new, node.lineno, f"swap {old} -> {new}"))
    if isinstance(node.op, (ast.Add, ast.Sub)):
        left = source[left_start:left_end]
        right = source[right_start:right_end]
        edits.append(OpEdit(start, end, left, node.lineno, f"drop term {old} {_short(right)}"))
        if isinstance(node.op, ast.Add):
            kept = right if isinstance(node.right, _ATOMS) else f"({right})"
            edits.append(OpEdit(start, end, kept, node.lineno, f"drop term {_short(left)} +"))
    return edits


def _short(text: str, limit: int = 30) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# --- values --------------------------------------------------------------------------------------
def _pick(rng: random.Random, weights: list[float]) -> int:
    """Index drawn proportionally to ``weights`` with exactly one draw from ``rng``."""
    point = rng.random() * sum(weights)
    for i, w in enumerate(weights):
        point -= w
        if point < 0 and w > 0:
            return i
    return max(i for i, w in enumerate(weights) if w > 0)


def _step(rng: random.Random, magnitude: float, is_int: bool) -> float:
    """A step size at a log-uniform scale: 0.05%..30% of the magnitude (0.001..1 around zero)."""
    size = 10 ** rng.uniform(-3, 0) if magnitude == 0 else magnitude * 10 ** rng.uniform(-3.3, -0.5)
    return max(1, round(size)) if is_int else size


def _snap(rng: random.Random, value: float, is_int: bool) -> float | None:
    """A rounder value near ``value`` (1-3 significant digits, nearest integer), or None."""
    candidates = {float(f"{value:.{k}g}") for k in (1, 2, 3)} | {float(round(value))}
    options = sorted(c for c in candidates if c != value and (not is_int or c == int(c)))
    return options[int(rng.random() * len(options))] if options else None


def _new_value(rng: random.Random, value: int | float, is_int: bool) -> tuple[float, str]:
    r = rng.random()
    if r < 0.2:
        snapped = _snap(rng, value, is_int)
        if snapped is not None:
            return snapped, "snap"
    if r >= 0.95 and value != 0:
        return -value, "flip sign"
    if 0.8 <= r < 0.95 and value != 0:
        factor = 10 ** (rng.choice((-1, 1)) * rng.uniform(0.05, 1))
        return value * factor, "jump"
    return value + rng.choice((-1, 1)) * _step(rng, abs(value), is_int), "nudge"


def format_number(value: float, like: Literal) -> str:
    """Source text for ``value`` in the style of the literal it replaces (int stays int)."""
    if like.is_int:
        number = int(round(value))
        text = f"{number:_}" if "_" in like.text else str(number)
    else:
        text = repr(float(f"{value:.6g}"))
    if text.startswith("-") and like.parens_if_negative and not like.text.startswith("-"):
        text = f"({text})"
    return text


def _fmt(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(float(f"{value:.6g}"))


# --- the mutators --------------------------------------------------------------------------------
class _SiteEditor(Mutator):
    """Shared plumbing: apply text edits by position (last first), check the result."""

    def _finish(self, parent: str, edits: list[tuple[int, int, str]], summary: str, **meta: Any) -> Mutation:
        child = parent  # sites never overlap: each literal (with its sign) is one distinct node
        for start, end, text in sorted(edits, reverse=True):
            child = child[:start] + text + child[end:]
        if child == parent:
            return self.reject(f"edit changes nothing ({summary})")
        error = syntax_error(child)
        if error:
            return self.reject(f"{error} after {summary}")
        try:
            check_outside_unchanged(parent, child)
        except EditError as exc:
            return self.reject(str(exc))
        return Mutation(source=child, mutator=self.name, description=summary, meta=meta)


class NumericMutator(_SiteEditor):
    """Perturb 1-3 tuned-looking numeric literals (or, rarely, make one structural edit)."""

    name = "numeric"

    class Params(Params):
        max_edits: int = Field(default=3, ge=1)  # literals changed at most per child
        group_rate: float = 0.5  # chance to move a group of equal literals together
        ast_rate: float = 0.1  # chance of a structural edit instead of literals
        adaptive: bool = True  # learn which sites pay off (credit per site)

    def __init__(self, **params: Any) -> None:
        p = self.parse(params)
        assert isinstance(p, NumericMutator.Params)
        self.max_edits, self.group_rate, self.ast_rate, self.adaptive = p.max_edits, p.group_rate, p.ast_rate, p.adaptive
        self._credit: dict[str, list[int]] = {}  # site key -> [wins, losses]
        self._lock = threading.Lock()

    def mutate(self, ctx: MutationContext) -> Mutation:
        try:
            sites = find_sites(ctx.parent.source)
        except EditError as exc:
            return self.reject(str(exc))
        rng = ctx.rng
        if sites.ops and (not sites.literals or rng.random() < self.ast_rate):
            op = sites.ops[int(rng.random() * len(sites.ops))]
            return self._finish(ctx.parent.source, [(op.start, op.end, op.text)], f"{op.summary} (line {op.line})", sites=[])
        if not sites.literals:
            return self.reject("no numeric literals in the evolvable region")
        r = rng.random()
        count = min(len(sites.literals), self.max_edits, 1 if r < 0.7 else 2 if r < 0.9 else 3)
        weights = self._weights(sites.literals)
        edits, summaries, keys = [], [], []
        for _ in range(count):
            if not any(weights):
                break
            i = _pick(rng, weights)
            group = self._group(sites.literals, i) if rng.random() < self.group_rate else [i]
            group = [j for j in group if weights[j] > 0]  # never edit a literal twice
            for j in group:
                weights[j] = 0.0
            changed, summary = self._edit(rng, [sites.literals[j] for j in group])
            edits += changed
            summaries.append(summary)
            keys += [sites.literals[j].key for j in group]
        return self._finish(ctx.parent.source, edits, "; ".join(summaries), sites=keys)

    def _weights(self, literals: tuple[Literal, ...]) -> list[float]:
        with self._lock:
            credit = dict(self._credit) if self.adaptive else {}
        weights = []
        for lit in literals:
            wins, losses = credit.get(lit.key, (0, 0))
            weights.append(lit.weight * (1 + 3 * wins) / (1 + 0.05 * losses))
        return weights

    @staticmethod
    def _group(literals: tuple[Literal, ...], i: int) -> list[int]:
        """``i`` plus its siblings: same container, same sign, magnitude within a factor of 2."""
        lit = literals[i]
        if lit.container is None or lit.value == 0:
            return [i]
        return [
            j for j, other in enumerate(literals)
            if j == i or (
                other.container == lit.container and other.value != 0 and (other.value > 0) == (lit.value > 0)
                and max(abs(other.value), abs(lit.value)) <= 2 * min(abs(other.value), abs(lit.value))
            )
        ]

    def _edit(self, rng: random.Random, group: list[Literal]) -> tuple[list[tuple[int, int, str]], str]:
        lead = group[0] if len(group) == 1 else max(group, key=lambda lit: abs(lit.value))
        if len(group) == 1:
            value, how = _new_value(rng, lead.value, lead.is_int)
            values = [value]
        else:
            step = rng.choice((-1, 1)) * _step(rng, abs(lead.value), lead.is_int and all(g.is_int for g in group))
            if rng.random() < 0.5:
                values, how = [g.value + step for g in group], f"group shift {step:+.4g}"
            else:
                factor = 1 + step / abs(lead.value)
                values, how = [g.value * factor for g in group], f"group scale x{factor:.4g}"
        edits = [(g.start, g.end, format_number(v, g)) for g, v in zip(group, values)]
        old = ", ".join(_fmt(g.value) for g in group)
        new = ", ".join(text.strip("()") for _, _, text in edits)
        return edits, f"{lead.label}: {old} -> {new} (line {group[0].line}, {how})"

    # --- adaptive credit ------------------------------------------------------------------------
    def feedback(self, mutation: Mutation, improved: bool) -> None:
        with self._lock:
            for key in mutation.meta.get("sites", []):
                entry = self._credit.setdefault(key, [0, 0])
                entry[0 if improved else 1] += 1

    def get_state(self) -> dict[str, Any]:
        with self._lock:
            return {"credit": {k: list(v) for k, v in sorted(self._credit.items())}}

    def set_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            self._credit = {str(k): [int(v[0]), int(v[1])] for k, v in state.get("credit", {}).items()}


class RandomMutator(_SiteEditor):
    """Baseline: one uniformly chosen site (literal or operator), changed without any heuristic."""

    name = "random"

    def mutate(self, ctx: MutationContext) -> Mutation:
        try:
            sites = find_sites(ctx.parent.source)
        except EditError as exc:
            return self.reject(str(exc))
        total = len(sites.literals) + len(sites.ops)
        if total == 0:
            return self.reject("no numeric literals or operators in the evolvable region")
        rng = ctx.rng
        k = int(rng.random() * total)
        if k >= len(sites.literals):
            op = sites.ops[k - len(sites.literals)]
            return self._finish(ctx.parent.source, [(op.start, op.end, op.text)], f"{op.summary} (line {op.line})", sites=[])
        lit = sites.literals[k]
        value = rng.uniform(-1, 1) if lit.value == 0 else lit.value * rng.choice((-1, 1)) * 10 ** rng.uniform(-1, 1)
        if lit.is_int and round(value) == lit.value:
            value = lit.value + rng.choice((-1, 1))
        text = format_number(value, lit)
        summary = f"{lit.label}: {_fmt(lit.value)} -> {text.strip('()')} (line {lit.line}, random)"
        return self._finish(ctx.parent.source, [(lit.start, lit.end, text)], summary, sites=[lit.key])
