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

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from evolve.llm.faults import LLMRequestError
from evolve.mutators.base import EditError, Mutation, MutationContext, Mutator
from evolve.mutators.prompts import build_messages
from evolve.mutators.replies import apply_edit_blocks, apply_rewrite, intent
from evolve.plugins import Params

if TYPE_CHECKING:  # the client (and the OpenAI SDK, ~0.6 s) loads with the run's LLM, not with a config check
    from evolve.llm.client import Completion, LLMClient

# Prompts live in evolve.mutators.prompts, reply reading in evolve.mutators.replies.


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
        weak_prompt, diffs = llm.prompt_style()
        self.strict = style == "strict" or (style == "auto" and weak_prompt)
        #: llm-diff asks a model too weak for edit blocks (style auto) for a strict rewrite instead.
        self.asks = "rewrite" if self.mode == "diff" and style == "auto" and not diffs else self.mode
        self.params = {k: v for k, v in (("temperature", temperature), ("max_tokens", max_tokens)) if v is not None}

    def mutate(self, ctx: MutationContext) -> Mutation:
        messages = build_messages(ctx, self.asks, strict=self.strict, max_inspirations=self.max_inspirations)
        try:
            completion = self.llm.complete(messages, ctx.rng, **self.params)
        except LLMRequestError as exc:
            return self.reject(str(exc), kind="request rejected")
        fields: dict[str, Any] = {
            "usage": completion.usage,
            "meta": {"cached": completion.cached, "latency_s": round(completion.latency_s, 3),
                     "finish_reason": completion.finish_reason, "reply": completion.text,
                     "asked": self.asks, "strict": self.strict},
        }
        try:
            source, where = self._apply(ctx.parent.source, completion)
        except EditError as exc:
            cut = " (reply cut at max_tokens)" if completion.finish_reason == "length" else ""
            return self.reject(f"{exc}{cut}", kind="unparseable", **fields)
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
