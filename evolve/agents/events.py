"""Reading an agent CLI's ``--json`` event stream (the Codex CLI JSONL format) for accounting.

Supported: ``codex exec --json`` of ``@openai/codex`` 0.169.0 (the version documented in
:mod:`evolve.agents.cli_agent`), one JSON object per stdout line with a ``type``:

- ``turn.completed`` carries ``usage``: ``input_tokens`` (cached ones included),
  ``cached_input_tokens``, ``output_tokens`` (newer builds may add ``reasoning_output_tokens``,
  a part of ``output_tokens``, so it is not added again). Usage is per turn: turns are summed.
- ``item.completed`` with ``item.type`` ``agent_message`` (``item.text``): what the agent says. These
  are its *claims*: logged with the attempt, never used as figures.
- ``item.completed`` with ``item.type`` ``command_execution``: a shell command the agent ran.
- ``turn.failed`` (``error.message``) and ``error`` (``message``): failures worth logging.

Anything else, including lines that are not JSON (other CLIs, banners), is counted and ignored, so
a command without an event stream still runs; it is then accounted by wall time alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_KEPT_MESSAGES = 20
MAX_MESSAGE_CHARS = 2000


@dataclass
class EventTally:
    """Running totals over one event stream; :meth:`feed` one line at a time."""

    events: int = 0
    other_lines: int = 0
    turns: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    commands: int = 0
    messages: list[str] = field(default_factory=list)  # the agent's messages (claims), last ones kept
    errors: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def last_message(self) -> str:
        return self.messages[-1] if self.messages else ""

    def feed(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            self.other_lines += 1
            return
        self.events += 1
        kind = event["type"]
        if kind == "turn.completed":
            self.turns += 1
            found = event.get("usage")
            usage: dict[str, Any] = found if isinstance(found, dict) else {}
            self.input_tokens += _count(usage, "input_tokens")
            self.cached_input_tokens += _count(usage, "cached_input_tokens")
            self.output_tokens += _count(usage, "output_tokens")
        elif kind == "item.completed":
            self._item(event.get("item"))
        elif kind == "turn.failed":
            error = event.get("error")
            self._error(error.get("message") if isinstance(error, dict) else error)
        elif kind == "error":
            self._error(event.get("message"))

    def _item(self, item: Any) -> None:
        if not isinstance(item, dict):
            return
        if item.get("type") == "agent_message" and isinstance(item.get("text"), str):
            self.messages.append(item["text"][:MAX_MESSAGE_CHARS])
            del self.messages[:-MAX_KEPT_MESSAGES]
        elif item.get("type") == "command_execution":
            self.commands += 1

    def _error(self, message: Any) -> None:
        self.errors.append(str(message)[:MAX_MESSAGE_CHARS])
        del self.errors[:-MAX_KEPT_MESSAGES]

    def summary(self) -> dict[str, Any]:
        """JSON-able figures for the attempt's record."""
        return {"events": self.events, "other_lines": self.other_lines, "turns": self.turns,
                "input_tokens": self.input_tokens, "cached_input_tokens": self.cached_input_tokens,
                "output_tokens": self.output_tokens, "commands": self.commands, "errors": self.errors[-3:]}


def _count(usage: dict[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
