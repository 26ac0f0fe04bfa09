"""The tools of the ``agent`` strategy: OpenAI function schemas and their dispatch.

The agent edits a *working copy* of the program, starting from the iteration's base. ``evaluate``
runs the working copy in the run's sandbox and archives it as an attempt (its stated intent becomes
the commit message); the tool answers with the evaluator's figures and error tail, never with
anything the model said. Edits follow the project's edit rules (SEARCH/REPLACE inside EVOLVE-BLOCK
regions; a full write has its regions spliced into the unchanged surrounding code) and are
refused, with the reason, before any evaluation is spent when they cannot apply or do not parse.
Every failure is a message to the model, never an exception: a confused model costs turns, not the run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from evolve.agents.brief import clip, failure, figures
from evolve.candidate import Candidate
from evolve.agents.session import AgentSession, SessionLimit
from evolve.mutators.base import EditError, syntax_error
from evolve.mutators.blocks import splice_rewrite
from evolve.mutators.diff import DiffBlock, apply_diff


def _function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required,
                       "additionalProperties": False}}}


_TEXT = {"type": "string"}

TOOLS: list[dict[str, Any]] = [
    _function("read_program", "Show the working copy of the program.", {}, []),
    _function("edit_program",
              "Change the working copy. Either give `search` (exact lines of the working copy, matching one "
              "place) and `replace` (the new lines), or give `content`: the whole new program.",
              {"search": _TEXT, "replace": _TEXT, "content": _TEXT}, []),
    _function("evaluate",
              "Run the working copy in evolve's sandbox and return its measured figures (or its error). "
              "Every evaluation is archived with your intent and counts against this iteration's limit.",
              {"intent": {"type": "string", "description": "one sentence: what this version changes and why"}},
              ["intent"]),
    _function("read_notes", "Show your notes, the journal of earlier iterations and recent results.", {}, []),
    _function("write_notes",
              "Save notes for later iterations: what you tried, with which measured figures, what to try next.",
              {"text": _TEXT, "mode": {"type": "string", "enum": ["append", "replace"]}}, ["text"]),
    _function("submit",
              "End this iteration with the working copy (evaluated first if needed). evolve keeps it only if "
              "its measured figures put it on the Pareto front; otherwise it reverts to the current best.",
              {"summary": {"type": "string", "description": "what you changed and what you found"}}, ["summary"]),
]
_SCHEMAS = {t["function"]["name"]: t["function"] for t in TOOLS}
TOOL_NAMES = tuple(_SCHEMAS)


class ToolArgumentError(ValueError):
    """A tool call with arguments that are not what the schema asks for."""


class Toolbox:
    """Dispatches tool calls for one session; ``done`` turns true once the agent submits."""

    def __init__(self, session: AgentSession, program_name: str) -> None:
        self.session = session
        self.program_name = program_name
        self.working = session.base.source
        self.submitted: Candidate | None = None
        self.summary = ""
        self.done = False
        self.calls: dict[str, int] = {}
        self._handlers: dict[str, Callable[[dict[str, Any]], str]] = {
            "read_program": self._read_program, "edit_program": self._edit_program,
            "evaluate": self._evaluate, "read_notes": self._read_notes,
            "write_notes": self._write_notes, "submit": self._submit,
        }

    def dispatch(self, call: dict[str, Any]) -> str:
        """Run one OpenAI-shaped tool call (``{"function": {"name", "arguments"}}``); returns the result text."""
        function = call.get("function") or {}
        name = function.get("name", "")
        self.calls[name] = self.calls.get(name, 0) + 1
        handler = self._handlers.get(name)
        if handler is None:
            return f"error: unknown tool {name!r}; the tools are {', '.join(TOOL_NAMES)}"
        try:
            args = _arguments(function.get("arguments"))
            allowed = _SCHEMAS[name]["parameters"]["properties"]
            ignored = sorted(set(args) - set(allowed))
            result = handler({k: v for k, v in args.items() if k in allowed})
        except ToolArgumentError as exc:
            return f"error: {name}: {exc}"
        if ignored:  # e.g. figures the model claims: only the evaluator's count
            result += f"\n(ignored unknown argument{'s' * (len(ignored) > 1)}: {', '.join(ignored)})"
        return result

    # --- tools ----------------------------------------------------------------------------------
    def _read_program(self, args: dict[str, Any]) -> str:
        state = "not evaluated yet" if self.session.known(self.working) is None else "evaluated"
        lines = self.working.count("\n") + (not self.working.endswith("\n"))
        return f"{self.program_name} (working copy, {state}, {lines} lines):\n{self.working}"

    def _edit_program(self, args: dict[str, Any]) -> str:
        search, replace, content = (_text(args, k, required=False) for k in ("search", "replace", "content"))
        try:
            if content is not None and search is None:
                new, note = splice_rewrite(self.working, content)
                error = syntax_error(new)
                if error:
                    raise EditError(error)
            elif search is not None and content is None:
                new = apply_diff(self.working, [DiffBlock(1, _lines(search), _lines(replace or ""))]).source
                note = ""
            else:
                raise ToolArgumentError("give either `search` and `replace`, or `content`")
        except EditError as exc:
            return f"error: edit not applied: {str(exc).replace('diff block 1: ', '')}"
        if new == self.working:
            return "error: edit not applied: it changes nothing"
        self.working = new
        done = f"edit applied{' (' + note + ')' if note else ''}"
        known = self.session.known(new)
        if known is not None:
            return f"{done}; this exact program was already evaluated as #{known.id}: {figures(known.result)}"
        return f"{done}; the working copy is not evaluated yet"

    def _evaluate(self, args: dict[str, Any]) -> str:
        intent = _text(args, "intent") or ""
        known = self.session.known(self.working)
        if known is not None:
            return (f"not evaluated again: this exact program is #{known.id}: {figures(known.result)}; "
                    f"{self._left()}")
        try:
            attempt = self.session.evaluate(self.working, clip(intent, 500) or "(no intent given)")
        except SessionLimit as exc:
            return f"error: {exc}"
        return self._report(attempt)

    def _read_notes(self, args: dict[str, Any]) -> str:
        return self.session.notes.render(self.session.host.recent())

    def _write_notes(self, args: dict[str, Any]) -> str:
        mode = _text(args, "mode", required=False) or "append"
        if mode not in ("append", "replace"):
            raise ToolArgumentError(f"mode must be 'append' or 'replace' (got {mode!r})")
        return self.session.notes.write(_text(args, "text") or "", append=mode == "append")

    def _submit(self, args: dict[str, Any]) -> str:
        self.summary = _text(args, "summary") or ""
        self.done = True
        known, note = self.session.known(self.working), ""
        if known is None:
            try:
                known = self.session.evaluate(self.working, clip(self.summary, 500) or "(submitted)")
            except SessionLimit as exc:
                known = self.session.attempts[-1] if self.session.attempts else None
                note = f"the working copy was not evaluated ({exc}); "
        if known is None or known.id == self.session.base.id:
            return f"{note}nothing to keep: no program but the base was evaluated"
        self.submitted = known
        return (f"{note}submitted #{known.id}: {figures(known.result)}. evolve keeps or reverts it by these "
                "measured figures alone.")

    # --- helpers ------------------------------------------------------------------------------------
    def _report(self, attempt: Candidate) -> str:
        lines = [f"attempt #{attempt.id} archived: {figures(attempt.result)}",
                 f"it is {self.session.compare(attempt)}"]
        if not attempt.result.ok:
            lines.append(failure(attempt.result))
        lines.append(self._left())
        return "\n".join(lines)

    def _left(self) -> str:
        return f"evaluations left in this iteration: {self.session.evaluations_left}"


def _arguments(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ToolArgumentError(f"arguments are not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ToolArgumentError("arguments must be a JSON object")
    return raw


def _text(args: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = args.get(key)
    if value is None:
        if required:
            raise ToolArgumentError(f"argument {key!r} is required")
        return None
    if not isinstance(value, str):
        raise ToolArgumentError(f"argument {key!r} must be a string")
    return value


def _lines(text: str) -> str:
    """SEARCH/REPLACE text as whole lines, the form :func:`apply_diff` matches."""
    return text if text.endswith("\n") or not text else text + "\n"
