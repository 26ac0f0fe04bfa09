"""LLM mutators: ``llm-diff`` (SEARCH/REPLACE edits) and ``llm-rewrite`` (a whole new program).

Both build one chat prompt from the mutation context (task, objectives and constraints, the parent
with its metrics and error tail, inspirations shown as diffs against the parent, recent history),
ask the model once, and turn the reply into a child program or a rejection with the reason (a reply
that does not parse is rejected here, before any evaluation is spent on it).

Small local models are a design point. The diff prompt carries a worked example, rewrites get the
parent's dropped imports and constants re-added when the program still reads them, and the ``style`` option picks the prompt:

- ``full``: task, goals, parent with its failure, inspirations as diffs, recent history;
- ``strict``: a short prompt with one fixed reply format; a rewrite of a program with one
  EVOLVE-BLOCK asks for that region's code only (a few lines to generate instead of the program);
- ``auto`` (default): ``full`` for API models; for a local registry model, what its entry says.
  Models too weak for SEARCH/REPLACE blocks (0 of 10 parsed for the 0.5B and 1.5B Qwen coders) get
  a strict rewrite even from ``llm-diff``.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import re
from typing import Any, Literal

from pydantic import Field

from evolve.llm.client import Completion, LLMClient, LLMRequestError
from evolve.llm.local import LocalLLMClient
from evolve.candidate import Candidate
from evolve.mutators.base import (
    EditError,
    Mutation,
    MutationContext,
    Mutator,
    same_code,
    syntax_error,
)
from evolve.mutators.blocks import check_outside_unchanged, layout, splice_rewrite
from evolve.plugins import Params
from evolve.mutators.diff import (
    apply_diff,
    line_delta,
    normalize_newlines,
    parse_diff,
    strip_thinking,
)

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

STRICT_REGION = """\
Only this part of the program may change:
```python
{region}
```
{others}Write a new version of that part that does better on the objectives. It must differ from the \
current one. Reply with only the new part in one ```python block, no explanation."""

STRICT_PROGRAM = """\
Rewrite the program to do better on the objectives. Keep its imports and the names the evaluator \
uses. Reply with only the complete program in one ```python block, no explanation."""

STYLES = ("auto", "full", "strict")

MAX_INSPIRATION_DIFF_LINES = 60
MAX_HISTORY = 8
MAX_TRACEBACK_LINES = 12
MAX_STRICT_REGION_LINES = 40


# --- prompt --------------------------------------------------------------------------------------
def _metrics(view: Candidate) -> str:
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


def _failure(view: Candidate) -> str:
    if view.status == "ok" or not (view.result.error or view.result.traceback):
        return ""
    text = f"It failed: {view.result.error}\n" if view.result.error else "It failed.\n"
    if view.result.traceback:
        tail = "\n".join(view.result.traceback.strip().splitlines()[-MAX_TRACEBACK_LINES:])
        text += f"```\n{tail}\n```\n"
    return text


def _inspiration(parent: Candidate, other: Candidate) -> str:
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


def _single_region(source: str) -> bool:
    try:
        lay = layout(source)
    except EditError:
        return False
    return lay.marked and len(lay.regions) == 1


def _other_regions(ctx: MutationContext, limit: int) -> str:
    """Inspirations as just their version of the single region and its results: what a weak model can
    use (which values were tried, how they scored) in a few lines."""
    own = layout(ctx.parent.source).regions[0].strip("\n")
    shown = []
    for other in ctx.inspirations:
        try:
            lay = layout(other.source)
        except EditError:
            continue
        region = lay.regions[0].strip("\n") if lay.marked and len(lay.regions) == 1 else ""
        if region and region != own and region.count("\n") < MAX_STRICT_REGION_LINES:
            shown.append(f"```python\n{region}\n```\nscored {_metrics(other)}\n")
        if len(shown) == limit:
            break
    return "Other versions of that part tried before:\n" + "".join(shown) if shown else ""


def _strict_instructions(ctx: MutationContext, mode: str, max_inspirations: int) -> str:
    source = ctx.parent.source
    if mode == "diff":
        return _region_rule(source) + DIFF_INSTRUCTIONS
    if _single_region(source):
        region = layout(source).regions[0].strip("\n")
        return STRICT_REGION.format(region=region, others=_other_regions(ctx, max_inspirations))
    return _region_rule(source) + STRICT_PROGRAM


def build_messages(ctx: MutationContext, mode: str, *, strict: bool = False, max_inspirations: int = 2) -> list[dict[str, str]]:
    """The chat messages asking for a ``"diff"`` or a ``"rewrite"`` of the parent."""
    instructions = DIFF_INSTRUCTIONS if mode == "diff" else REWRITE_INSTRUCTIONS
    parent = ctx.parent
    program = f"```python\n{parent.source.rstrip()}\n```\n"
    if strict:
        failed = f"It failed: {parent.result.error}\n" if parent.status != "ok" and parent.result.error else ""
        user = (
            f"{ctx.task_description.strip()}\n{_goals(ctx)}\n\n"
            f"Current program ({_metrics(parent)}):\n{program}{failed}\n{_strict_instructions(ctx, mode, max_inspirations)}"
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


# --- the mutators ---------------------------------------------------------------------------------
def model_style(llm: LLMClient) -> tuple[bool, bool]:
    """``(strict, diffs)`` for ``style: auto``: a local registry model's entry knows how weak it is;
    any other endpoint is assumed capable (full prompt, diffs)."""
    if isinstance(llm, LocalLLMClient):
        return llm.profile.strict, llm.profile.diffs
    return False, True


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


class LLMParams(Params):
    max_inspirations: int = Field(default=2, ge=0)  # other programs shown (as diffs) in the prompt
    style: Literal["auto", "full", "strict"] = "auto"  # prompt style; auto: by the model's registry entry
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)


class _LLMMutator(Mutator):
    mode = ""  # what this mutator asks for: "diff" or "rewrite"
    Params = LLMParams
    needs_llm = True

    def __init__(self, llm: LLMClient, **params: Any) -> None:
        p = self.parse(params)
        assert isinstance(p, LLMParams)
        style, temperature, max_tokens = p.style, p.temperature, p.max_tokens
        self.llm, self.max_inspirations, self.style = llm, p.max_inspirations, style
        weak_prompt, diffs = model_style(llm)
        self.strict = style == "strict" or (style == "auto" and weak_prompt)
        #: llm-diff asks a model too weak for edit blocks (style auto) for a strict rewrite instead.
        self.asks = "rewrite" if self.mode == "diff" and style == "auto" and not diffs else self.mode
        self.params = {k: v for k, v in (("temperature", temperature), ("max_tokens", max_tokens)) if v is not None}

    def mutate(self, ctx: MutationContext) -> Mutation:
        messages = build_messages(ctx, self.asks, strict=self.strict, max_inspirations=self.max_inspirations)
        try:
            completion = self.llm.complete(messages, ctx.rng, **self.params)
        except LLMRequestError as exc:
            return self.reject(str(exc))
        fields: dict[str, Any] = {
            "model": completion.model,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "cost_usd": completion.cost_usd,
            "meta": {"cached": completion.cached, "latency_s": round(completion.latency_s, 3),
                     "finish_reason": completion.finish_reason, "reply": completion.text,
                     "asked": self.asks, "strict": self.strict},
        }
        try:
            source, where = self._apply(ctx.parent.source, completion)
        except EditError as exc:
            cut = " (reply cut at max_tokens)" if completion.finish_reason == "length" else ""
            return self.reject(f"{exc}{cut}", **fields)
        said = intent(completion.text)
        plain = f"diff: {where}" if self.asks == "diff" else where
        return Mutation(source=source, mutator=self.name, description=f"{said} [{where}]" if said else plain, **fields)

    def _apply(self, parent: str, completion: Completion) -> tuple[str, str]:
        """The child source and where it changed, or :class:`EditError` with the rejection reason."""
        if self.asks == "diff":
            return apply_edit_blocks(parent, completion.text)
        return apply_rewrite(parent, completion.text)


class LLMDiffMutator(_LLMMutator):
    """Ask for SEARCH/REPLACE blocks and apply them strictly (see :mod:`evolve.mutators.diff`)."""

    name = "llm-diff"
    mode = "diff"


class LLMRewriteMutator(_LLMMutator):
    """Ask for the whole program (or, strict, its region); keep the outside text and needed imports."""

    name = "llm-rewrite"
    mode = "rewrite"
