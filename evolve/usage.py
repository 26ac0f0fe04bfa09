"""What LLM work cost: tokens in, tokens out, dollars, and (for one spender) the model.

One frozen value for what used to be declared seven times (the LLM client's answers and totals, the
mutators' ``Mutation``, the agents' ``Spend``, the ``Candidate``, the run's counters, the archive's
summary). Values add with ``+``: a reply's usage is added to a mutation's, a mutation's to the run's.

``model`` is set where one model spent it (a reply, a mutation, a candidate, an agent's turn); a sum
keeps the latest model named, because an agent attempt is charged to the model of its last turn.
Run-wide totals have no model (``None``).

On disk the three figures are flat keys (``prompt_tokens``, ``completion_tokens``, ``cost_usd``)
of the document that holds them, as they always were: :meth:`to_dict` writes them and
:meth:`from_dict` reads them (a missing key reads as zero), so archives and run states written
before this type read unchanged, and the other way round. A leaf: it imports nothing of evolve.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The flat keys the three figures are stored under, in every document that holds them.
KEYS = ("prompt_tokens", "completion_tokens", "cost_usd")


@dataclass(frozen=True)
class Usage:
    """Tokens and dollars spent, and by which model when one model spent them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    model: str | None = None

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens: what a token budget counts."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens,
                     self.cost_usd + other.cost_usd, other.model or self.model)

    def __bool__(self) -> bool:
        """Anything spent at all (a numeric mutation spends nothing)."""
        return bool(self.prompt_tokens or self.completion_tokens or self.cost_usd)

    def without_model(self) -> Usage:
        """The same figures as a run-wide total (no model)."""
        return Usage(self.prompt_tokens, self.completion_tokens, self.cost_usd)

    def to_dict(self) -> dict[str, Any]:
        """The three figures under their flat keys (the model is stored, if at all, by its holder)."""
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost_usd": self.cost_usd}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], model: str | None = None) -> Usage:
        """Read the flat keys of any document that holds them (missing ones are zero)."""
        return cls(int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0),
                   float(data.get("cost_usd") or 0.0), model)

