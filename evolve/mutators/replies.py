"""Reading an LLM's reply: find the code, repair what small models drop, apply edits to the parent.

Replies are hostile text: fences, chat-template tokens, prose and half programs are expected. A
reply that yields no parseable child raises :class:`~evolve.mutators.base.EditError` with the
reason, so the mutator rejects it before any evaluation is spent.
"""

from __future__ import annotations

import ast
import builtins
import re

from evolve.mutators.base import EditError, same_code, syntax_error
from evolve.mutators.blocks import check_outside_unchanged, layout, splice_rewrite
from evolve.mutators.diff import apply_diff, line_delta, normalize_newlines, parse_diff, strip_thinking

# --- reading replies -----------------------------------------------------------------------------
_FENCE_OPEN = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([\w+.-]*)")
_CODE_START = re.compile(r"^(import |from |def |class |async def |@|#|\"\"\"|'''|if __name__|[A-Za-z_][\w.]*\s*(=|:|\())")
_PYTHON_TAGS = {"", "python", "py", "python3", "py3"}
#: End-of-turn tokens that small models (or base models without a chat template) print as text:
#: whatever follows one is not part of the answer.
_END_OF_TURN = re.compile(r"<\|(?:im_end|endoftext|eot_id|end)\|>|<end_of_turn>|</s>")
#: "Note: this is faster" parses as an annotation; a label, then words and no code punctuation, is prose.
_PROSE = re.compile(r"^\s*[A-Za-z][\w ]{0,30}:\s+[^=()\[\]{}:]*\s[^=()\[\]{}:]*\s[^=()\[\]{}]*$")
MAX_START_TRIES = 5
MAX_TRAILING_CUT = 30


def clean_reply(reply: str) -> str:
    """The reply with CRLFs, ``<think>`` sections and everything after an end-of-turn token removed."""
    return _END_OF_TURN.split(strip_thinking(normalize_newlines(reply)), maxsplit=1)[0]


def _fences(text: str) -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced block; an unterminated last fence runs to the end."""
    found, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        j = i + 1
        while j < len(lines) and lines[j].strip() != fence:
            j += 1
        body = lines[i + 1:j]
        if not lang and body and body[0].strip().lower() in _PYTHON_TAGS - {""}:
            lang, body = body[0].strip().lower(), body[1:]  # "```" then "python" on its own line
        found.append((lang, "\n".join(body).rstrip() + "\n"))
        i = j + 1
    return found


def _parses(code: str) -> bool:
    return syntax_error(code) is None


def extract_code(reply: str) -> str | None:
    """The program in a model's reply: the longest Python fence (preferring one that parses, then the
    last), else the reply itself from a code-like line on, with chatter before and after trimmed.

    An unparsable result is still returned (the caller rejects it naming the syntax error)."""
    text = clean_reply(reply)
    fences = [(i, code) for i, (lang, code) in enumerate(_fences(text)) if lang in _PYTHON_TAGS and code.strip()]
    if fences:
        return max(fences, key=lambda f: (_parses(f[1]), len(f[1]), f[0]))[1]
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if _CODE_START.match(line) and not _PROSE.match(line)]
    for start in starts[:MAX_START_TRIES]:
        body = lines[start:]
        for cut in range(len(body), max(0, len(body) - MAX_TRAILING_CUT), -1):
            candidate = "\n".join(body[:cut]).rstrip() + "\n"
            if candidate.strip() and _parses(candidate):
                return candidate
    return "\n".join(lines[starts[0]:]).rstrip() + "\n" if starts else None


def _bound_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def restore_constants(parent: str, child: str) -> tuple[str, list[str]]:
    """Re-add the parent's module-level constants (``NAME = ...``) that ``child`` still reads but no
    longer defines anywhere: weak models rewriting a region often drop the constants they did not
    mean to change, a sure NameError. Returns the new source and the re-added names."""
    try:
        parent_tree, child_tree = ast.parse(parent), ast.parse(child)
    except SyntaxError:
        return child, []
    used = {n.id for n in ast.walk(child_tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    lost = used - _bound_names(child_tree) - set(dir(builtins))
    lines, names = [], []
    for node in parent_tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) and node.value else []
        if targets and all(isinstance(t, ast.Name) and t.id in lost for t in targets):
            lines.append(ast.get_source_segment(parent, node) or "")
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    if not lines:
        return child, []
    at = _insertion_offset(child, child_tree)
    return child[:at] + "".join(line + "\n" for line in lines) + child[at:], names


def _import_line(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> str:
    name = f"{alias.name} as {alias.asname}" if alias.asname else alias.name
    if isinstance(node, ast.Import):
        return f"import {name}"
    return f"from {'.' * node.level}{node.module or ''} import {name}"


def restore_imports(parent: str, child: str) -> tuple[str, list[str]]:
    """Re-add the parent's top-level imports that ``child`` uses but no longer binds.

    Only imports whose name the child actually reads come back, so a deliberate removal of an unused
    (and maybe costly) import stands. Returns the new source and the re-added import lines.
    """
    try:
        parent_tree, child_tree = ast.parse(parent), ast.parse(child)
    except SyntaxError:
        return child, []
    used = {n.id for n in ast.walk(child_tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    bound = _bound_names(child_tree)
    missing = []
    for node in parent_tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and not (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            for alias in node.names:
                name = (alias.asname or alias.name).split(".")[0]
                if name in used and name not in bound and alias.name != "*":
                    missing.append(_import_line(node, alias))
                    bound.add(name)
    if not missing:
        return child, []
    at = _insertion_offset(child, child_tree)
    return child[:at] + "".join(line + "\n" for line in missing) + child[at:], missing


def _insertion_offset(source: str, tree: ast.Module) -> int:
    """Where re-added imports go: the first evolvable region, else after the docstring and __future__."""
    try:
        lay = layout(source)
    except EditError:
        lay = None
    if lay is not None and lay.marked:
        return lay.spans[0][0]
    line = 0
    for i, node in enumerate(tree.body):
        docstring = i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        if docstring or isinstance(node, ast.ImportFrom) and node.module == "__future__":
            line = node.end_lineno or line
        else:
            break
    lines = source.split("\n")
    return sum(len(x) + 1 for x in lines[:line]) if line else 0


def intent(reply: str) -> str:
    """The model's one-sentence summary: its first line of prose before any code or block."""
    for line in clean_reply(reply).split("\n"):
        text = line.replace("**", "").strip().strip("*#>` ").strip()
        if not text:
            continue
        if _FENCE_OPEN.match(line) or line.lstrip().startswith("<<<<<<<") or _CODE_START.match(line):
            return ""
        return text if len(text) <= 100 else text[:97] + "..."
    return ""


def apply_rewrite(parent: str, reply: str) -> tuple[str, str]:
    """The child of a rewrite reply (whole program or one region's code) and where it changed, or
    :class:`EditError`: no code, does not parse, changes nothing, or edits outside the regions.
    Imports and constants the reply dropped but the program still reads are put back first."""
    code = extract_code(reply)
    if code is None:
        raise EditError("no program found in the reply")
    crlf = "\r\n" in parent
    if crlf:
        parent = normalize_newlines(parent)
    source, note = splice_rewrite(parent, code)
    source, constants = restore_constants(parent, source)
    source, added = restore_imports(parent, source)
    added += constants
    error = syntax_error(source)
    if error:
        raise EditError(error)
    if same_code(source, parent):
        raise EditError("rewrite changes nothing (same code up to formatting and comments)")
    check_outside_unchanged(parent, source)
    added_lines, removed_lines = line_delta(parent, source)
    where = "; ".join(n for n in (f"rewrite, +{added_lines}/-{removed_lines} lines", note, f"re-added {', '.join(added)}" if added else "") if n)
    return source.replace("\n", "\r\n") if crlf else source, where


def apply_edit_blocks(parent: str, reply: str) -> tuple[str, str]:
    """The child of a SEARCH/REPLACE reply and where it changed, or :class:`EditError`."""
    result = apply_diff(parent, parse_diff(reply))
    where = f"{result.blocks} block(s), +{result.added}/-{result.removed} lines from line {result.first_line}"
    if result.fuzzy:
        where += f", {result.fuzzy} whitespace-tolerant"
    return result.source, where
