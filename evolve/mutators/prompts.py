"""The LLM mutators' prompts: what the model is told about the task, the parent and its relatives.

``build_messages`` makes one chat from a :class:`~evolve.mutators.base.MutationContext`: task, goals,
the parent with its metrics and failure tail, inspirations as diffs against the parent, recent
history (``full``), or a short prompt with one fixed reply format (``strict``) for small models.
"""

from __future__ import annotations

import difflib

from evolve.candidate import Candidate
from evolve.mutators.base import EditError, MutationContext
from evolve.mutators.blocks import layout

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
