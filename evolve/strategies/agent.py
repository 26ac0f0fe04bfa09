"""Agent baselines: ``agent`` (our tool-calling loop) and ``agent-cli`` (an external coding agent).

They answer "does population search beat a coding agent in a loop?" on equal terms: same sandbox,
same archive, same budgets. Their :meth:`~AgentStrategy.step` is one iteration instead of a batch.
An iteration starts from the *current best* (a member of the Pareto front, kept across iterations),
lets the agent make evaluated attempts (each archived as it happens), and ends by keep/revert as in
hill climbing: the iteration's candidate (the submitted program, else its best attempt) becomes the
current best when the evaluator's figures put it on the front; otherwise the current best stays.

State (iteration number, current best, notes, the iteration in progress) rides in the run state
saved with every attempt, so a resumed run continues with the same notes and best; an iteration cut
short by an interrupt is closed on resume by keep/revert over the attempts it had archived.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from abc import abstractmethod
from typing import Any, Callable

from pydantic import Field, ValidationInfo, field_validator

from evolve.agents.brief import clip, figures
from evolve.agents.cli_agent import (
    CODEX_VERSION, DEFAULT_COMMAND, DEFAULT_PROMPT, PROMPT_FIELDS, CliSettings, TemplateError, check_template,
    parse_command, run_cli_iteration,
)
from evolve.agents.loop import LLM_RETRIES_EXHAUSTED, run_session
from evolve.agents.notes import Notes
from evolve.candidate import Candidate
from evolve.agents.session import AgentSession, Host, best_of
from evolve.plugins import Params as PluginParams
from evolve.strategies.base import Proposal, Strategy, StrategyError

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class AgentStrategy(Strategy):
    """Base of the agent strategies: current best, notes, keep/revert, resumable state."""

    evaluations_per_iteration = 1  # archived attempts an iteration may make

    def __init__(self, objectives: Any, params: dict[str, Any] | None = None) -> None:
        super().__init__(objectives, params)
        self.iteration = 0
        self.best: int | None = None
        self.notes = Notes()
        self.open: dict[str, int] | None = None  # the iteration in progress: number, base, first attempt id
        self.tally = {"kept": 0, "reverted": 0, "empty": 0}

    # --- the run loop's protocol -----------------------------------------------------------------
    def choose(self, rng: random.Random) -> Proposal:
        """The base of the next iteration (agents are driven by :meth:`step`, not by proposals)."""
        front = self.ranker.front(self.population.all())
        ids = [ind.id for ind in front]
        parent = self.best if self.best in ids else rng.choice(ids)
        return Proposal(parents=(parent,), generation=self.population.members[parent].generation + 1)

    def step(self, host: Host) -> None:
        """One iteration: choose the base, let the agent work, keep or revert; then a checkpoint
        that saves what it decided (the current best, the notes)."""
        if self.open is not None:
            self._close(host, self._open_attempts(host), None, "cut short by an interrupt; closed on resume", "")
        self.best = self.propose(host.rng).parents[0]
        base = host.candidate(self.best)
        self.iteration += 1
        self.open = {"iteration": self.iteration, "base": base.id, "first_id": host.next_id}
        session = AgentSession(host, base, self.notes, self.ranker, self.name, self.iteration,
                               max_evaluations=self.evaluations_per_iteration,
                               max_tokens=self.params.get("tokens_per_iteration"))
        submitted, reason, claim = self._run(session)
        self._close(host, session.attempts, submitted, reason, claim)
        host.checkpoint()

    def get_state(self) -> dict[str, Any]:
        return {"iteration": self.iteration, "best": self.best, "notes": self.notes.to_dict(),
                "open": self.open, "tally": dict(self.tally)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.iteration = int(state.get("iteration", 0))
        self.best = state.get("best")
        self.notes = Notes.from_dict(state.get("notes", {}))
        self.open = state.get("open")
        self.tally.update(state.get("tally", {}))

    # --- for subclasses -------------------------------------------------------------------------------
    @abstractmethod
    def _run(self, session: AgentSession) -> tuple[Candidate | None, str, str]:
        """Let the agent work; returns (submitted attempt or None, why it stopped, what it claimed)."""

    # --- keep / revert ----------------------------------------------------------------------------------
    def _open_attempts(self, host: Host) -> list[Candidate]:
        assert self.open is not None
        return [host.candidate(i) for i in range(self.open["first_id"], host.next_id)]

    def _close(self, host: Host, attempts: list[Candidate], submitted: Candidate | None, reason: str, claim: str) -> None:
        assert self.open is not None
        number, base = self.open["iteration"], host.candidate(self.open["base"])
        said = f"; the agent said (unverified): {clip(claim, 160)}" if claim else ""
        head = f"iteration {number} from #{base.id} ({figures(base.result)})"
        candidate = submitted or best_of(attempts, self.ranker)
        if candidate is None:
            self.tally["empty"] += 1
            kind = "retries exhausted" if LLM_RETRIES_EXHAUSTED in reason else "no attempt"
            host.reject(f"{self.name} iteration {number}: {reason}", kind)
            self.notes.log(f"{head}: nothing evaluated ({reason}){said}")
        else:
            kept = any(ind.id == candidate.id for ind in self.ranker.front(self.population.all()))
            self.tally["kept" if kept else "reverted"] += 1
            if kept:
                self.best = candidate.id
            tried = ", ".join(f"#{a.id}" for a in attempts)
            what = "submitted" if submitted is not None else "best attempt"
            self.notes.log(f"{head}: tried {tried}; {what} #{candidate.id} ({figures(candidate.result)}) "
                           f"-> {'kept' if kept else 'reverted'}; {reason}{said}")
        self.open = None


class ToolAgent(AgentStrategy):
    """``agent``: our own tool-calling session per iteration (see :mod:`evolve.agents.loop`)."""

    name = "agent"

    class Params(PluginParams):
        turns_per_iteration: int = Field(default=12, ge=1, le=200)
        evaluations_per_iteration: int = Field(default=4, ge=1, le=100)
        tokens_per_iteration: int | None = Field(default=None, ge=1)

    def validate(self) -> None:
        self.evaluations_per_iteration = self.params["evaluations_per_iteration"]

    def _run(self, session: AgentSession) -> tuple[Candidate | None, str, str]:
        host = session.host
        if host.llm is None:
            raise StrategyError("strategy 'agent' needs an LLM (configure the llm section)")
        end = run_session(session, host.llm, host.rng, max_turns=self.params["turns_per_iteration"],
                          program_name=host.program_name)
        session.transcript_path(".json").write_text(json.dumps(end.messages, indent=1), encoding="utf-8")
        calls = ", ".join(f"{n} {name}" for name, n in sorted(end.tool_calls.items()))
        return end.submitted, f"{end.reason} after {end.turns} turns ({calls or 'no tool calls'})", end.summary


class CliAgent(AgentStrategy):
    """``agent-cli``: an external coding agent per iteration (see :mod:`evolve.agents.cli_agent`)."""

    name = "agent-cli"

    class Params(PluginParams):
        command: list[str] | str = Field(default_factory=lambda: list(DEFAULT_COMMAND))
        timeout_s: float = Field(default=600.0, ge=1e-3, le=86400.0)
        env: list[str] = Field(default_factory=list)  # names of variables passed to the agent
        prompt: str | None = None
        tokens_per_iteration: int | None = Field(default=None, ge=1)
        price_in: float = Field(default=0.0, ge=0.0)  # USD per million tokens
        price_out: float = Field(default=0.0, ge=0.0)
        model: str | None = None

        @field_validator("command")
        @classmethod
        def _command(cls, v: list[str] | str) -> list[str] | str:
            _template(lambda: parse_command(v))
            return v

        @field_validator("env")
        @classmethod
        def _env(cls, v: list[str]) -> list[str]:
            if not all(_ENV_NAME.match(n) for n in v):
                raise ValueError("must be a list of environment variable names")
            return v

        @field_validator("prompt", "model")
        @classmethod
        def _text(cls, v: str | None, info: ValidationInfo) -> str | None:
            if v is not None and not v.strip():
                raise ValueError("must be a non-empty string or null")
            if v is not None and info.field_name == "prompt":
                _template(lambda: check_template(v, PROMPT_FIELDS, "prompt"))
            return v

    def validate(self) -> None:
        p = self.params
        command, env = parse_command(p["command"]), p["env"]
        self.settings = CliSettings(command=command, timeout_s=float(p["timeout_s"]), env=tuple(env),
                                    prompt=p["prompt"] or DEFAULT_PROMPT, price_in=float(p["price_in"]),
                                    price_out=float(p["price_out"]), model=p["model"])

    def preflight(self) -> None:
        program = self.settings.command[0]
        if shutil.which(program) is None:
            hint = f" (install the Codex CLI: npm install -g @openai/codex@{CODEX_VERSION})" if program == "codex" else ""
            raise StrategyError(f"strategy 'agent-cli': command {program!r} not found{hint}")

    def _run(self, session: AgentSession) -> tuple[Candidate | None, str, str]:
        outcome = run_cli_iteration(session, self.settings)
        return outcome.attempt, outcome.reason, outcome.claim


def _template(check: Callable[[], object]) -> None:
    """Run a template check inside a parameter validator: its error is the reason, one line."""
    try:
        check()
    except TemplateError as exc:  # its own "command: " / "prompt: " prefix: the field is named already
        raise ValueError(str(exc).removeprefix("command: ").removeprefix("prompt: ")) from None
