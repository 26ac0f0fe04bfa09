"""SEARCH/REPLACE edit blocks: parse them out of a model's reply and apply them to a program.

    <<<<<<< SEARCH
    exact lines of the current program
    =======
    the lines to put in their place
    >>>>>>> REPLACE

Parsing tolerates what small models do: chatter around the blocks, code fences around or inside
them, CRLF line ends, ``<think>`` sections. Applying is strict where it matters: each SEARCH must
match exactly one place inside the evolvable regions, first exactly (at a line start), then ignoring
trailing whitespace and common indentation (the replacement is re-indented to the matched code).
Anything else is an :class:`EditError` naming the block, so a broken diff is never evaluated.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass

from evolve.mutators.base import EditError, same_code, syntax_error
from evolve.mutators.blocks import check_outside_unchanged, inside, layout

_SEARCH = re.compile(r"^\s*<{5,}\s*SEARCH\b.*$")
_DIVIDER = re.compile(r"^\s*={5,}\s*$")
_REPLACE = re.compile(r"^\s*>{5,}\s*REPLACE\b.*$")
_FENCE = re.compile(r"^\s*(```|~~~)[\w+-]*\s*$")
_THINK = re.compile(r"<think>.*?(</think>|\Z)", re.DOTALL)


@dataclass(frozen=True)
class DiffBlock:
    index: int  # 1-based position in the reply, for messages
    search: str
    replace: str


@dataclass(frozen=True)
class DiffResult:
    source: str
    blocks: int
    fuzzy: int  # blocks applied by the whitespace-tolerant match
    added: int  # lines
    removed: int
    first_line: int  # first changed line of the result (1-based)


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def strip_thinking(text: str) -> str:
    """Remove ``<think>...</think>`` sections (reasoning models); an unclosed one runs to the end."""
    return _THINK.sub("", text)


def parse_diff(reply: str) -> list[DiffBlock]:
    """All SEARCH/REPLACE blocks of ``reply``; a malformed block is an :class:`EditError`."""
    blocks: list[DiffBlock] = []
    state, search, replace = "out", list[str](), list[str]()
    for line in strip_thinking(normalize_newlines(reply)).split("\n"):
        n = len(blocks) + 1
        if state == "out":
            if _SEARCH.match(line):
                state, search, replace = "search", [], []
        elif _FENCE.match(line):
            continue
        elif state == "search":
            if _DIVIDER.match(line):
                state = "replace"
            elif _SEARCH.match(line) or _REPLACE.match(line):
                raise EditError(f"diff block {n}: missing '=======' between SEARCH and REPLACE")
            else:
                search.append(line)
        else:
            if _REPLACE.match(line):
                blocks.append(DiffBlock(n, _text(search), _text(replace)))
                state = "out"
            elif _SEARCH.match(line):
                raise EditError(f"diff block {n}: missing '>>>>>>> REPLACE' before the next SEARCH")
            else:
                replace.append(line)
    if state != "out":
        raise EditError(f"diff block {len(blocks) + 1}: missing '>>>>>>> REPLACE' (reply cut short?)")
    return blocks


def _text(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def apply_diff(source: str, blocks: list[DiffBlock]) -> DiffResult:
    """Apply ``blocks`` in order; the result must change something, stay inside the regions and parse."""
    if not blocks:
        raise EditError("no SEARCH/REPLACE blocks found in the reply")
    crlf = "\r\n" in source and source.count("\r\n") == source.count("\n")
    text = normalize_newlines(source) if crlf else source
    try:
        spans = layout(text).spans
    except EditError as exc:
        raise EditError(f"parent program: {exc}") from None
    original, fuzzy, first = text, 0, None
    for block in blocks:
        text, line, was_fuzzy = _apply_one(text, block, spans)
        try:
            spans = layout(text).spans
        except EditError as exc:
            raise EditError(f"diff block {block.index}: REPLACE text breaks the EVOLVE-BLOCK markers ({exc})") from None
        fuzzy += was_fuzzy
        first = line if first is None else min(first, line)
    if text == original:
        raise EditError("diff changes nothing")
    check_outside_unchanged(original, text)
    error = syntax_error(text)
    if error:
        raise EditError(error)
    if same_code(original, text):
        raise EditError("diff changes nothing but formatting and comments")
    added, removed = line_delta(original, text)
    result = text.replace("\n", "\r\n") if crlf else text
    return DiffResult(result, len(blocks), fuzzy, added, removed, first or 1)


def line_delta(before: str, after: str) -> tuple[int, int]:
    """Lines added and removed between two versions of a program."""
    added = removed = 0
    for op, a0, a1, b0, b1 in difflib.SequenceMatcher(None, before.splitlines(), after.splitlines(), autojunk=False).get_opcodes():
        if op != "equal":
            removed += a1 - a0
            added += b1 - b0
    return added, removed


def _apply_one(text: str, block: DiffBlock, spans: tuple[tuple[int, int], ...]) -> tuple[str, int, bool]:
    """Apply one block; returns the new text, the first changed line and whether the match was fuzzy."""
    if not block.search.strip():
        raise EditError(f"diff block {block.index}: empty SEARCH text")
    hits = [h for h in _find_all(text, block.search) if h == 0 or text[h - 1] == "\n"]
    good = [h for h in hits if inside(spans, h, h + len(block.search))]
    if len(good) == 1:
        h = good[0]
        return text[:h] + block.replace + text[h + len(block.search):], text.count("\n", 0, h) + 1, False
    if len(good) > 1:
        raise EditError(f"diff block {block.index}: SEARCH text matches {len(good)} places; it must match exactly one")
    if hits:
        raise EditError(f"diff block {block.index}: SEARCH text lies outside the EVOLVE-BLOCK regions")
    return _apply_fuzzy(text, block, spans)


def _find_all(text: str, needle: str) -> list[int]:
    found, start = [], text.find(needle)
    while start != -1:
        found.append(start)
        start = text.find(needle, start + 1)
    return found


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _common_indent(lines: list[str]) -> str:
    nonblank = [_indent(line) for line in lines if line.strip()]
    return os.path.commonprefix(nonblank) if nonblank else ""


def _shape(lines: list[str]) -> list[str]:
    """Lines with trailing whitespace and their common indentation removed."""
    indent = len(_common_indent(lines))
    return [line.rstrip()[indent:] if line.strip() else "" for line in lines]


def _trim_blank(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _apply_fuzzy(text: str, block: DiffBlock, spans: tuple[tuple[int, int], ...]) -> tuple[str, int, bool]:
    want = _trim_blank(block.search.split("\n"))
    target = _shape(want)
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    n = len(want)
    windows = [i for i in range(len(lines) - n + 1) if _shape(lines[i:i + n]) == target]
    good = [i for i in windows if inside(spans, offsets[i], offsets[i + n] - 1)]
    if not good:
        where = "outside the EVOLVE-BLOCK regions" if windows else "anywhere in the program"
        raise EditError(f"diff block {block.index}: SEARCH text ({_first_line(want)!r}...) matches nothing {where}")
    if len(good) > 1:
        raise EditError(f"diff block {block.index}: SEARCH text matches {len(good)} places (ignoring whitespace); it must match exactly one")
    i = good[0]
    old_indent, new_indent = _common_indent(want), _common_indent(lines[i:i + n])
    replacement = []
    for line in _trim_blank(block.replace.split("\n")):
        if not line.strip():
            replacement.append("")
        elif line.startswith(old_indent):
            replacement.append(new_indent + line[len(old_indent):].rstrip())
        else:
            replacement.append(new_indent + line.strip())
    return "\n".join(lines[:i] + replacement + lines[i + n:]), i + 1, True


def _first_line(lines: list[str]) -> str:
    head = next((line.strip() for line in lines if line.strip()), "")
    return head[:40]
