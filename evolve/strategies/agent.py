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
from typing import Any

from evolve.agents.brief import clip, figures
from evolve.agents.cli_agent import (
    CODEX_VERSION, DEFAULT_COMMAND, DEFAULT_PROMPT, PROMPT_FIELDS, CliSettings, TemplateError, check_template,
    parse_command, run_cli_iteration,
)
from evolve.agents.loop import run_session
from evolve.agents.notes import Notes
from evolve.candidate import Candidate
from evolve.agents.session import AgentSession, Host, best_of
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
    def propose(self, rng: random.Random) -> Proposal:
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
            host.reject(f"{self.name} iteration {number}: {reason}")
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


def _positive_int_or_none(strategy: Strategy, name: str) -> None:
    value = strategy.params[name]
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise StrategyError(f"strategy {strategy.name!r}: {name} must be a positive int or null (got {value!r})")


class ToolAgent(AgentStrategy):
    """``agent``: our own tool-calling session per iteration (see :mod:`evolve.agents.loop`)."""

    name = "agent"
    defaults = {"turns_per_iteration": 12, "evaluations_per_iteration": 4, "tokens_per_iteration": None}

    def validate(self) -> None:
        self._param("turns_per_iteration", int, 1, 200)
        self._param("evaluations_per_iteration", int, 1, 100)
        _positive_int_or_none(self, "tokens_per_iteration")
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
    defaults = {"command": list(DEFAULT_COMMAND), "timeout_s": 600.0, "env": [], "prompt": None,
                "tokens_per_iteration": None, "price_in": 0.0, "price_out": 0.0, "model": None}

    def validate(self) -> None:
        p = self.params
        self._param("timeout_s", float, 1e-3, 86400.0)
        self._param("price_in", float, 0.0)
        self._param("price_out", float, 0.0)
        _positive_int_or_none(self, "tokens_per_iteration")
        env = p["env"]
        if not isinstance(env, list) or not all(isinstance(n, str) and _ENV_NAME.match(n) for n in env):
            raise StrategyError(f"strategy 'agent-cli': env must be a list of environment variable names (got {env!r})")
        for key in ("prompt", "model"):
            if p[key] is not None and not (isinstance(p[key], str) and p[key].strip()):
                raise StrategyError(f"strategy 'agent-cli': {key} must be a non-empty string or null")
        try:
            command = parse_command(p["command"])
            if p["prompt"] is not None:
                check_template(p["prompt"], PROMPT_FIELDS, "prompt")
        except TemplateError as exc:
            raise StrategyError(f"strategy 'agent-cli': {exc}") from None
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
