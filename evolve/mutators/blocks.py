"""EVOLVE-BLOCK regions: the only parts of a program a mutator may change.

A region is the text between a line ``# EVOLVE-BLOCK-START`` and the next line
``# EVOLVE-BLOCK-END`` (markers may be indented and carry a trailing comment; several regions are
allowed, nesting is not). A program without markers is evolvable as a whole.

Policy: edits (diffs, numeric edits) that touch text outside the regions are *rejected*; a full
rewrite has its regions *spliced* back into the parent's untouched outside text, because small models
routinely reformat or drop the surrounding code when asked for a whole program.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evolve.mutators.base import EditError

START, END = "EVOLVE-BLOCK-START", "EVOLVE-BLOCK-END"
_MARKER = re.compile(r"^[ \t]*#[ \t]*EVOLVE-BLOCK-(START|END)\b.*$", re.MULTILINE)


@dataclass(frozen=True)
class Layout:
    """A program cut at its marker lines: ``outside[0] region[0] outside[1] ... outside[n]``.

    Marker lines belong to the outside parts, so joining everything gives the source back.
    """

    outside: tuple[str, ...]
    regions: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]  # character spans of the regions in the source
    marked: bool = True  # False: no markers, the whole program is one region

    def join(self, regions: list[str] | tuple[str, ...] | None = None) -> str:
        regions = self.regions if regions is None else regions
        if len(regions) != len(self.regions):
            raise EditError(f"expected {len(self.regions)} EVOLVE-BLOCK regions, got {len(regions)}")
        parts = [self.outside[0]]
        for region, outside in zip(regions, self.outside[1:]):
            parts += [region, outside]
        return "".join(parts)


def _line_number(source: str, offset: int) -> int:
    return source.count("\n", 0, offset) + 1


def layout(source: str) -> Layout:
    """Cut ``source`` at its markers; raise :class:`EditError` for unbalanced or nested markers."""
    markers = list(_MARKER.finditer(source))
    if not markers:
        return Layout(("", ""), (source,), ((0, len(source)),), marked=False)
    outside, regions, spans = [], [], []
    cursor, open_at = 0, None
    for m in markers:
        line = _line_number(source, m.start())
        if m.group(1) == "START":
            if open_at is not None:
                raise EditError(f"nested {START} at line {line} (the one at line {_line_number(source, open_at)} is still open)")
            open_at = m.start()
            body_start = m.end() + 1 if m.end() < len(source) else m.end()
            outside.append(source[cursor:body_start])
            cursor = body_start
        else:
            if open_at is None:
                raise EditError(f"{END} at line {line} has no matching {START}")
            regions.append(source[cursor:m.start()])
            spans.append((cursor, m.start()))
            cursor, open_at = m.start(), None
    if open_at is not None:
        raise EditError(f"{START} at line {_line_number(source, open_at)} has no matching {END}")
    outside.append(source[cursor:])
    return Layout(tuple(outside), tuple(regions), tuple(spans))


def inside(spans: tuple[tuple[int, int], ...], start: int, end: int) -> bool:
    """Whether the character range ``[start, end)`` lies within one region."""
    return any(a <= start and end <= b for a, b in spans)


def check_outside_unchanged(parent: str, child: str) -> None:
    """Raise :class:`EditError` unless ``child`` differs from ``parent`` only inside the regions."""
    before = layout(parent)
    if not before.marked:
        return
    try:
        after = layout(child)
    except EditError as exc:
        raise EditError(f"edit breaks the EVOLVE-BLOCK markers: {exc}") from None
    count = len(after.regions) if after.marked else 0
    if count != len(before.regions):
        raise EditError(f"edit changes the number of EVOLVE-BLOCK regions ({len(before.regions)} -> {count})")
    for i, (a, b) in enumerate(zip(before.outside, after.outside)):
        if a != b:
            first = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            start = after.spans[i - 1][1] if i else 0
            raise EditError(f"edit changes code outside the EVOLVE-BLOCK regions (line {_line_number(child, start + first)})")


def _strip_common(lines: list[str], reference: list[str], from_end: bool) -> list[str]:
    """Drop the lines ``lines`` shares with ``reference`` at its start (or end), ignoring trailing space."""
    a, b = (lines[::-1], reference[::-1]) if from_end else (lines, reference)
    n = 0
    while n < len(a) and n < len(b) and a[n].rstrip() == b[n].rstrip():
        n += 1
    kept = a[n:]
    return kept[::-1] if from_end else kept


def splice_rewrite(parent: str, child: str) -> tuple[str, str]:
    """Put the regions of a rewritten program back into the parent's outside text.

    Returns ``(source, note)``; ``note`` says what was done when it was not a plain splice.
    A child without markers is read as the new content of a single-region parent, after removing
    whatever it repeats of the parent's outside text at its start and end.
    """
    before = layout(parent)
    if not before.marked:
        return child, ""
    try:
        after = layout(child)
    except EditError as exc:
        raise EditError(f"rewrite has broken EVOLVE-BLOCK markers: {exc}") from None
    if after.marked:
        if len(after.regions) != len(before.regions):
            raise EditError(f"rewrite has {len(after.regions)} EVOLVE-BLOCK regions, the parent has {len(before.regions)}")
        note = "" if after.outside == before.outside else "changes outside EVOLVE-BLOCK discarded"
        return before.join(after.regions), note
    if len(before.regions) != 1:
        raise EditError(f"rewrite dropped the EVOLVE-BLOCK markers of a program with {len(before.regions)} regions")
    lines = child.splitlines(keepends=True)
    lines = _strip_common(lines, before.outside[0].splitlines(keepends=True), from_end=False)
    lines = _strip_common(lines, before.outside[1].splitlines(keepends=True), from_end=True)
    body = "".join(lines)
    if body and not body.endswith("\n"):
        body += "\n"
    return before.join([body]), "rewrite without markers read as the EVOLVE-BLOCK content"
