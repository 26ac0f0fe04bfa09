"""The agent's notes: a scratchpad the model writes and a journal evolve writes, kept across iterations.

The scratchpad is free text owned by the agent (``write_notes``): hypotheses, plans, what to try next.
The journal is one line per finished iteration, written by evolve from *measured* figures only (base,
attempts, kept or reverted), so it can be trusted where the scratchpad cannot. Both are small and
JSON-able: they travel in the run state saved with every archived attempt and every iteration's
checkpoint, so they survive a resume exactly as far as the archive does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SCRATCHPAD_MAX_CHARS = 6000
JOURNAL_MAX_LINES = 200
SHOWN_JOURNAL_LINES = 12


@dataclass
class Notes:
    scratchpad: str = ""
    journal: list[str] = field(default_factory=list)

    def write(self, text: str, *, append: bool) -> str:
        """Replace or extend the scratchpad; returns a one-line confirmation for the agent."""
        new = f"{self.scratchpad.rstrip()}\n{text.strip()}".strip() if append else text.strip()
        clipped = len(new) > SCRATCHPAD_MAX_CHARS
        self.scratchpad = new[-SCRATCHPAD_MAX_CHARS:] if clipped else new
        tail = f" (kept the last {SCRATCHPAD_MAX_CHARS} characters)" if clipped else ""
        return f"notes saved: {len(self.scratchpad)} characters{tail}"

    def log(self, line: str) -> None:
        self.journal.append(" ".join(line.split()))
        del self.journal[:-JOURNAL_MAX_LINES]

    def render(self, attempts: Sequence[str] = ()) -> str:
        """Everything the agent should see: its scratchpad, the journal tail, recent attempts."""
        parts = [f"Your scratchpad:\n{self.scratchpad}" if self.scratchpad else "Your scratchpad is empty."]
        if self.journal:
            shown = self.journal[-SHOWN_JOURNAL_LINES:]
            parts.append("Journal of earlier iterations (measured by evolve):\n" + "\n".join(shown))
        if attempts:
            parts.append("Recent archived programs (measured by evolve):\n" + "\n".join(attempts))
        return "\n\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"scratchpad": self.scratchpad, "journal": list(self.journal)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Notes":
        return cls(scratchpad=str(data.get("scratchpad", "")), journal=[str(x) for x in data.get("journal", [])])
