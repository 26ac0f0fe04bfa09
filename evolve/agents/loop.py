"""The ``agent`` strategy's iteration: a short multi-turn tool-calling session with the LLM.

The model gets the task, the base program with its measured figures, its notes and the limits,
then works through the tools of :mod:`evolve.agents.tools` until it submits, runs out of turns,
evaluations or tokens, a run budget is spent, or the endpoint fails. The conversation is returned
so the caller can keep a transcript; nothing in it is used as a figure.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from evolve.agents.brief import figures, goals
from evolve.candidate import Candidate
from evolve.agents.session import AgentSession
from evolve.agents.tools import TOOL_NAMES, TOOLS, Toolbox
from evolve.llm.client import LLMClient
from evolve.llm.faults import LLMCancelled, LLMError, LLMRunFailure, RetriesExhausted

SYSTEM = (
    "You are a coding agent improving one Python program inside evolve, an automated search. You work "
    f"only through tools ({', '.join(TOOL_NAMES)}). Figures come only from `evaluate`, which runs the "
    "program in an isolated sandbox; anything you state about results is ignored. Every evaluation is "
    "archived with the intent you give. Edit only the program (inside its EVOLVE-BLOCK regions when it "
    "has them) and keep its interface and output format. Record what you tried and what the figures "
    "were with `write_notes`: later iterations see your notes. Call `submit` when done; the submission is "
    "kept only if its measured figures put it on the Pareto front."
)
#: How a session's end reason starts when the endpoint kept failing one request (not the agent's fault).
LLM_RETRIES_EXHAUSTED = "LLM retries exhausted"
NUDGE = "Continue with a tool call: edit and `evaluate` the program, or `submit` if you are done."


@dataclass
class SessionEnd:
    """How a session ended: what was submitted (None: nothing) and why it stopped."""

    submitted: Candidate | None
    summary: str
    reason: str
    turns: int
    tool_calls: dict[str, int] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)


def first_message(session: AgentSession, program_name: str, max_turns: int) -> str:
    host, base = session.host, session.base
    limits = f"{max_turns} turns, {session.max_evaluations} evaluations"
    if session.max_tokens is not None:
        limits += f", {session.max_tokens} tokens"
    return "\n\n".join([
        f"Task: {host.task_description}\n{goals(host.objectives, host.constraints)}",
        f"Iteration {session.iteration}. Limits for this iteration: {limits}.",
        f"The current best program is #{base.id} ({program_name}): {figures(base.result)}",
        session.notes.render(host.recent()),
        f"Its source (your working copy starts as this):\n```python\n{base.source}```",
    ])


def run_session(session: AgentSession, llm: LLMClient, rng: random.Random, *, max_turns: int,
                program_name: str) -> SessionEnd:
    """Drive one session to its end; every LLM call is charged to the session (and the run)."""
    toolbox = Toolbox(session, program_name)
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM},
                                      {"role": "user", "content": first_message(session, program_name, max_turns)}]
    reason, turns = f"turn limit reached ({max_turns})", 0
    while turns < max_turns:
        stop = session.stop_reason()
        if stop is not None:
            reason = stop
            break
        try:
            completion = llm.complete(messages, rng, tools=TOOLS)
        except (LLMRunFailure, LLMCancelled):
            raise  # the run's failure (key, endpoint, replay) or Ctrl-C: not this session's
        except RetriesExhausted as exc:
            reason = f"{LLM_RETRIES_EXHAUSTED}: {exc}"  # the endpoint's fault: not a failed iteration
            break
        except LLMError as exc:
            reason = f"LLM request failed: {exc}"
            break
        turns += 1
        session.charge(completion.usage)
        messages.append(completion.as_message())
        if not completion.tool_calls:
            messages.append({"role": "user", "content": NUDGE})
            continue
        for call in completion.tool_calls:
            messages.append({"role": "tool", "tool_call_id": call.get("id", ""), "content": toolbox.dispatch(call)})
            if toolbox.done:
                break
        if toolbox.done:
            reason = "submitted"
            break
    return SessionEnd(toolbox.submitted, toolbox.summary, reason, turns, dict(toolbox.calls), messages)
