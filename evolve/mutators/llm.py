"""LLM mutators: ``llm-diff`` (SEARCH/REPLACE edits) and ``llm-rewrite`` (a whole new program).

Both build one chat prompt from the mutation context (task, objectives and constraints, the parent
with its metrics and error tail, inspirations shown as diffs against the parent, recent history),
ask the model once, and turn the reply into a child program or a rejection with the reason. Small
local models are the design point: the diff prompt carries a worked example (without one they
produce almost no parseable blocks), rewrites get the parent's dropped imports re-added, and a
``strict`` variant keeps the prompt short for weak models.
"""

from __future__ import annotations

import ast
import difflib
import re
from abc import abstractmethod

from evolve.llm.client import Completion, LLMClient, LLMRequestError
from evolve.mutators.base import EditError, Mutation, MutationContext, Mutator, ProgramView, same_code, syntax_error
from evolve.mutators.blocks import check_outside_unchanged, layout, splice_rewrite
from evolve.mutators.diff import apply_diff, line_delta, normalize_newlines, parse_diff, strip_thinking

SYSTEM = (
    "You improve Python programs inside an automated evolutionary search. Every reply proposes one "
    "focused change; the result is run and measured automatically, and only measured improvements "
    "survive. Keep the program's interface (module-level names, signatures, output format) intact."
)
STRICT_SYSTEM = "You edit Python programs. Follow the reply format exactly."

DIFF_EXAMPLE = """\
<<<<<<< SEARCH
def mean(values):
    return sum(values) / len(values)
=======
def mean(values):
    if not values:
        return 0.0
    return sum(values) / len(values)
>>>>>>> REPLACE"""

DIFF_INSTRUCTIONS = f"""\
Propose one improvement as one or more SEARCH/REPLACE blocks. A SEARCH section copies lines of the \
current program exactly, indentation included, and must match only one place; its REPLACE section \
holds the new lines. Example of the format (for a different program):

{DIFF_EXAMPLE}

First write one sentence saying what you change and why, then the blocks. Nothing else."""

REWRITE_INSTRUCTIONS = """\
Write the complete improved program in a single ```python code block. Keep every import and every \
function or name the evaluator uses. First write one sentence saying what you changed, then the \
code block. Nothing else."""

MAX_INSPIRATION_DIFF_LINES = 60
MAX_HISTORY = 8
MAX_TRACEBACK_LINES = 12


# --- prompt --------------------------------------------------------------------------------------
def _metrics(view: ProgramView) -> str:
    shown = " ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(view.metrics.items()))
    status = f"status {view.status}" + ("" if view.status != "ok" else ", feasible" if view.feasible else ", infeasible")
    return f"{shown} ({status})" if shown else status


def _goals(ctx: MutationContext) -> str:
    lines = []
    if ctx.objectives:
        goals = ", ".join(f"{'minimise' if o.goal == 'min' else 'maximise'} {o.name}" + (f" ({o.unit})" if o.unit else "") for o in ctx.objectives)
        lines.append(f"Objectives: {goals}.")
    if ctx.constraints:
        lines.append(f"Constraints (a program violating one is useless): {', '.join(str(c) for c in ctx.constraints)}.")
    return "\n".join(lines)


def _failure(view: ProgramView) -> str:
    if view.status == "ok" or not (view.error or view.traceback):
        return ""
    text = f"It failed: {view.error}\n" if view.error else "It failed.\n"
    if view.traceback:
        tail = "\n".join(view.traceback.strip().splitlines()[-MAX_TRACEBACK_LINES:])
        text += f"```\n{tail}\n```\n"
    return text


def _inspiration(parent: ProgramView, other: ProgramView) -> str:
    diff = list(difflib.unified_diff(
        parent.source.splitlines(), other.source.splitlines(), "current", f"program {other.id}", n=2, lineterm="",
    ))
    if not diff:
        return ""
    if len(diff) > MAX_INSPIRATION_DIFF_LINES:
        diff = diff[:MAX_INSPIRATION_DIFF_LINES] + ["... (diff truncated)"]
    body = "\n".join(diff)
    return f"### Program {other.id}: {_metrics(other)}\n```diff\n{body}\n```\n"


def _region_rule(source: str) -> str:
    try:
        marked = layout(source).marked
    except EditError:
        marked = False
    return "Change only the code between the lines `# EVOLVE-BLOCK-START` and `# EVOLVE-BLOCK-END`; keep those marker lines.\n" if marked else ""


def build_messages(ctx: MutationContext, mode: str, *, strict: bool = False, max_inspirations: int = 2) -> list[dict[str, str]]:
    """The chat messages asking for a ``"diff"`` or a ``"rewrite"`` of the parent."""
    instructions = DIFF_INSTRUCTIONS if mode == "diff" else REWRITE_INSTRUCTIONS
    parent = ctx.parent
    program = f"```python\n{parent.source.rstrip()}\n```\n"
    if strict:
        user = (
            f"{ctx.task_description.strip()}\n{_goals(ctx)}\n\n"
            f"Current program ({_metrics(parent)}):\n{program}\n{_region_rule(parent.source)}{instructions}"
        )
        return [{"role": "system", "content": STRICT_SYSTEM}, {"role": "user", "content": user}]
    parts = []
    if ctx.task_description.strip() or ctx.objectives or ctx.constraints:
        parts.append(f"## Task\n{ctx.task_description.strip()}\n{_goals(ctx)}\n")
    parts.append(f"## Current program\nMeasured: {_metrics(parent)}\n{_failure(parent)}{program}")
    shown = [text for text in (_inspiration(parent, p) for p in ctx.inspirations[:max_inspirations]) if text]
    if shown:
        parts.append("## Other programs from the search, as diffs against the current one\n" + "\n".join(shown))
    if ctx.history:
        parts.append("## Recent attempts (oldest first)\n" + "\n".join(f"- {h}" for h in ctx.history[-MAX_HISTORY:]) + "\n")
    parts.append(f"## What to do\n{_region_rule(parent.source)}{instructions}")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(parts)}]


# --- reading replies -----------------------------------------------------------------------------
_FENCE_OPEN = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([\w+.-]*)")
_CODE_START = re.compile(r"^(import |from |def |class |async def |@|#|\"\"\"|'''|if __name__|[A-Za-z_][\w.]*\s*(=|:|\())")
_PYTHON_TAGS = {"", "python", "py", "python3", "py3"}


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
        found.append((lang, "\n".join(lines[i + 1:j]).rstrip() + "\n"))
        i = j + 1
    return found


def _parses(code: str) -> bool:
    return syntax_error(code) is None


def extract_code(reply: str) -> str | None:
    """The program in a model's reply: the longest Python fence (preferring one that parses, then the
    last), else the reply itself from its first code-like line, with trailing chatter trimmed."""
    text = strip_thinking(normalize_newlines(reply))
    fences = [(i, code) for i, (lang, code) in enumerate(_fences(text)) if lang in _PYTHON_TAGS and code.strip()]
    if fences:
        return max(fences, key=lambda f: (_parses(f[1]), len(f[1]), f[0]))[1]
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if _CODE_START.match(line)), None)
    if start is None:
        return None
    body = lines[start:]
    for cut in range(len(body), max(0, len(body) - 30), -1):
        candidate = "\n".join(body[:cut]).rstrip() + "\n"
        if _parses(candidate):
            return candidate
    return "\n".join(body).rstrip() + "\n"


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
    for line in strip_thinking(normalize_newlines(reply)).split("\n"):
        text = line.replace("**", "").strip().strip("*#>` ").strip()
        if not text:
            continue
        if _FENCE_OPEN.match(line) or line.lstrip().startswith("<<<<<<<") or _CODE_START.match(line):
            return ""
        return text if len(text) <= 100 else text[:97] + "..."
    return ""


# --- the mutators --------------------------------------------------------------------------------
class _LLMMutator(Mutator):
    mode = ""

    def __init__(
        self,
        llm: LLMClient,
        *,
        max_inspirations: int = 2,
        strict: bool = False,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> None:
        self.llm = llm
        self.max_inspirations, self.strict = max_inspirations, strict
        self.params = {k: v for k, v in (("temperature", temperature), ("max_tokens", max_tokens)) if v is not None}

    def mutate(self, ctx: MutationContext) -> Mutation:
        messages = build_messages(ctx, self.mode, strict=self.strict, max_inspirations=self.max_inspirations)
        try:
            completion = self.llm.complete(messages, ctx.rng, **self.params)
        except LLMRequestError as exc:
            return self.reject(str(exc))
        fields = {
            "model": completion.model,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "cost_usd": completion.cost_usd,
            "meta": {"cached": completion.cached, "latency_s": round(completion.latency_s, 3),
                     "finish_reason": completion.finish_reason, "reply": completion.text},
        }
        try:
            source, summary = self._apply(ctx.parent.source, completion)
        except EditError as exc:
            cut = " (reply cut at max_tokens)" if completion.finish_reason == "length" else ""
            return self.reject(f"{exc}{cut}", **fields)
        return Mutation(source=source, mutator=self.name, description=summary, **fields)

    @abstractmethod
    def _apply(self, parent: str, completion: Completion) -> tuple[str, str]:
        """The child source and a one-line summary, or :class:`EditError` with the rejection reason."""


class LLMDiffMutator(_LLMMutator):
    """Ask for SEARCH/REPLACE blocks and apply them strictly (see :mod:`evolve.mutators.diff`)."""

    name = "llm-diff"
    mode = "diff"

    def _apply(self, parent: str, completion: Completion) -> tuple[str, str]:
        result = apply_diff(parent, parse_diff(completion.text))
        where = f"{result.blocks} block(s), +{result.added}/-{result.removed} lines from line {result.first_line}"
        if result.fuzzy:
            where += f", {result.fuzzy} whitespace-tolerant"
        said = intent(completion.text)
        return result.source, f"{said} [{where}]" if said else f"diff: {where}"


class LLMRewriteMutator(_LLMMutator):
    """Ask for the whole program; keep the parent's outside-region text and its needed imports."""

    name = "llm-rewrite"
    mode = "rewrite"

    def _apply(self, parent: str, completion: Completion) -> tuple[str, str]:
        code = extract_code(completion.text)
        if code is None:
            raise EditError("no program found in the reply")
        crlf = "\r\n" in parent
        if crlf:
            parent = normalize_newlines(parent)
        source, note = splice_rewrite(parent, code)
        source, added = restore_imports(parent, source)
        error = syntax_error(source)
        if error:
            raise EditError(error)
        if same_code(source, parent):
            raise EditError("rewrite changes nothing (same code up to formatting and comments)")
        check_outside_unchanged(parent, source)
        added_lines, removed_lines = line_delta(parent, source)
        where = "; ".join(n for n in (f"rewrite, +{added_lines}/-{removed_lines} lines", note, f"re-added {', '.join(added)}" if added else "") if n)
        said = intent(completion.text)
        return source.replace("\n", "\r\n") if crlf else source, f"{said} [{where}]" if said else where
