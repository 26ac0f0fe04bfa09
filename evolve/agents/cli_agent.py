"""The ``agent-cli`` strategy's iteration: an external coding agent edits a checkout of the current best.

Per iteration: a detached git worktree of the base candidate (:mod:`evolve.agents.worktree`); the
configured command, run there in its own process group under a wall-clock limit with a scrubbed
environment (:mod:`evolve.agents.process`); then evolve takes back *only* the program file, discards
everything else, re-scores the program itself in the run's sandbox and archives it. What the agent
says it achieved is logged with the attempt and in the journal, never used.

Supported external agent: the Codex CLI, npm package ``@openai/codex`` **0.169.0**
(``npm install -g @openai/codex@0.169.0``), run as::

    codex exec --json --sandbox workspace-write -C {workdir} {prompt}

``--json`` makes it print its event stream (JSONL, see :mod:`evolve.agents.events`), which is where
token usage comes from; without an event stream an iteration is accounted by wall time alone. Codex
speaks the OpenAI *Responses* API only, so it needs OpenAI (or a Responses-compatible endpoint): a
local chat-completions-only server will not do. It reads its key from ``CODEX_API_KEY`` (or a login
under ``CODEX_HOME``); the command's environment holds nothing but PATH, locale, a private HOME and
the variables the strategy's ``env`` parameter names, so the key must be listed there.

Command placeholders: ``{workdir}`` (the worktree), ``{program}`` (file name), ``{prompt}`` (the
prompt text as one argument), ``{prompt_file}`` (a file holding it; the prompt is also on stdin),
``{iteration}``. Prompt placeholders: see :data:`PROMPT_FIELDS`.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import string
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evolve.agents.brief import clip, figures, goals
from evolve.agents.events import EventTally
from evolve.agents.process import GroupResult, run_group
from evolve.candidate import Candidate
from evolve.agents.session import AgentSession, SessionLimit
from evolve.agents.worktree import Worktree, WorktreeError
from evolve.mutators.base import EditError
from evolve.mutators.blocks import splice_rewrite
from evolve.usage import Usage

CODEX_VERSION = "0.169.0"
DEFAULT_COMMAND = ("codex", "exec", "--json", "--sandbox", "workspace-write", "-C", "{workdir}", "{prompt}")
COMMAND_FIELDS = frozenset({"workdir", "program", "prompt", "prompt_file", "iteration"})
PROMPT_FIELDS = frozenset({"program", "workdir", "task", "goals", "base", "figures", "evaluate_command",
                           "notes", "iteration"})
DEFAULT_PROMPT = """\
You are improving the Python program `{program}` in {workdir}, inside evolve, an automated search.

Task: {task}
{goals}

This version is candidate #{base} of evolve's archive. Measured figures: {figures}

Evaluate a version with the same evaluator evolve uses:
    {evaluate_command}
When you exit, evolve re-scores `{program}` itself; figures you report are ignored.

Rules: edit only `{program}` (only inside its EVOLVE-BLOCK regions when it has them); every other file \
you create or change is discarded. Keep its interface and output format. Make one focused improvement, \
check it, then stop and say in one sentence what you changed.

{notes}
"""
_ENV_KEEP = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM")
TRANSCRIPT_MAX_BYTES = 2 << 20


class TemplateError(ValueError):
    """A command or prompt template with an unknown placeholder or bad syntax; one line."""


def check_template(text: str, fields: frozenset[str], what: str) -> None:
    """Every ``{placeholder}`` of ``text`` must be one of ``fields`` (``{{``/``}}`` are literal braces)."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as exc:
        raise TemplateError(f"{what}: {exc}") from None
    for name in names:
        if name not in fields:
            raise TemplateError(f"{what}: unknown placeholder {{{name}}} (known: {', '.join(sorted(fields))})")
    text.format(**{f: "" for f in fields})


def parse_command(value: Any) -> tuple[str, ...]:
    """A command given as a list of arguments or one shell-like string; placeholders checked."""
    if isinstance(value, str):
        try:
            value = shlex.split(value)
        except ValueError as exc:
            raise TemplateError(f"command: {exc}") from None
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(a, str) and a for a in value):
        raise TemplateError("command must be a non-empty list of non-empty strings (or one string)")
    for arg in value:
        check_template(arg, COMMAND_FIELDS, "command")
    if "{" in value[0]:
        raise TemplateError("command: the program to run cannot be a placeholder")
    return tuple(value)


@dataclass(frozen=True)
class CliSettings:
    command: tuple[str, ...]
    timeout_s: float
    env: tuple[str, ...] = ()
    prompt: str = DEFAULT_PROMPT
    price_in: float = 0.0  # USD per million input tokens
    price_out: float = 0.0
    model: str | None = None  # label for the archive; default: the command's name

    @property
    def label(self) -> str:
        return self.model or Path(self.command[0]).name


@dataclass
class CliOutcome:
    """What one external-agent iteration produced: the re-scored attempt (or None, with why)."""

    attempt: Candidate | None
    reason: str
    claim: str


def evaluate_command(session: AgentSession) -> str:
    """The shell command an agent can run to score the program exactly as evolve does."""
    host = session.host
    options = [arg for k, v in sorted(host.task_options.items()) for arg in ("--option", f"{k}={json.dumps(v)}")]
    return shlex.join([sys.executable, "-m", "evolve.cli", "eval", host.task_name, host.program_name, *options])


def render_prompt(session: AgentSession, settings: CliSettings, workdir: Path) -> str:
    host = session.host
    return settings.prompt.format(
        program=host.program_name, workdir=workdir, task=host.task_description,
        goals=goals(host.objectives, host.constraints), base=session.base.id,
        figures=figures(session.base.result), evaluate_command=evaluate_command(session),
        notes=session.notes.render(host.recent()), iteration=session.iteration)


def agent_env(home: Path, passthrough: Sequence[str]) -> dict[str, str]:
    """PATH, locale, a private HOME/TMPDIR, and the variables the user chose to pass (keys)."""
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP or k.startswith("LC_")}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(HOME=str(home), TMPDIR=str(home))
    env.update({name: os.environ[name] for name in passthrough if name in os.environ})
    return env


def run_cli_iteration(session: AgentSession, settings: CliSettings) -> CliOutcome:
    """Check out the base, run the agent, take the program back, re-score and archive it."""
    tally = EventTally()
    try:
        run = _run_in_worktree(session, settings, tally)
    except (OSError, WorktreeError) as exc:
        return CliOutcome(None, f"the iteration failed: {exc}", "")
    claim, ended, base = tally.last_message, run.result.describe(), session.base
    details = {"exit": ended, "wall_s": round(run.result.wall_s, 3), "stream": tally.summary(), "claim": claim,
               "discarded": run.discarded[:20], "stderr_tail": run.result.stderr_tail[-1000:]}
    if run.source is None:
        return CliOutcome(None, f"agent {ended}; {session.host.program_name} is missing or unreadable", claim)
    try:
        source, note = splice_rewrite(base.source, run.source)
    except EditError as exc:
        return CliOutcome(None, f"agent {ended}; program refused: {exc}", claim)
    if source == base.source:
        return CliOutcome(None, f"agent {ended}; program unchanged", claim)
    if note:
        details["note"] = note
    intent = clip(claim, 300) or f"edit by {settings.label} ({ended})"
    try:
        attempt = session.evaluate(source, intent, parent=base.id, extra={"agent": details, "timing": run.timing})
    except SessionLimit as exc:
        return CliOutcome(None, f"agent {ended}; not evaluated: {exc}", claim)
    return CliOutcome(attempt, f"agent {ended}", claim)


@dataclass
class _WorktreeRun:
    result: GroupResult
    source: str | None  # the program as the agent left it (None: missing or unreadable)
    discarded: list[str]  # every other path it created, changed or deleted
    timing: dict[str, float]


def _run_in_worktree(session: AgentSession, settings: CliSettings, tally: EventTally) -> _WorktreeRun:
    """The external command in a fresh worktree of the base; the worktree is gone on return."""
    host = session.host
    worktree = Worktree(host.archive_dir, host.scratch)
    home = host.scratch / "agent-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    timing: dict[str, float] = {}
    clock = time.perf_counter()
    try:
        workdir = worktree.checkout(host.commit_sha(session.base.id))
        timing["checkout_s"] = _lap(clock)
        prompt = render_prompt(session, settings, workdir)
        prompt_file = home / "prompt.txt"
        prompt_file.write_text(prompt, encoding="utf-8")
        fields = {"workdir": workdir, "program": host.program_name, "prompt": prompt, "prompt_file": prompt_file,
                  "iteration": session.iteration}
        wall_left = host.wall_left()
        limit_s = settings.timeout_s if wall_left is None else max(0.0, min(settings.timeout_s, wall_left))
        clock = time.perf_counter()
        with prompt_file.open("rb") as stdin, _Stream(session, settings, tally) as stream:
            result = run_group([arg.format(**fields) for arg in settings.command], cwd=workdir,
                               env=agent_env(home, settings.env), stdin=stdin, timeout_s=limit_s,
                               on_line=stream.line)
        timing["agent_s"] = _lap(clock)
        clock = time.perf_counter()
        source = worktree.read_program(host.program_name)
        discarded = [p for p in worktree.changed_files() if p != host.program_name]
    finally:
        worktree.remove()
        shutil.rmtree(home, ignore_errors=True)
        timing["cleanup_s"] = _lap(clock)
    return _WorktreeRun(result, source, discarded, timing)


class _Stream:
    """Live accounting of the command's event stream, and its transcript (capped) under the run."""

    def __init__(self, session: AgentSession, settings: CliSettings, tally: EventTally) -> None:
        self.session, self.settings, self.tally = session, settings, tally
        self._file = session.transcript_path(".jsonl").open("w", encoding="utf-8")
        self._written = 0

    def __enter__(self) -> "_Stream":
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def line(self, text: str) -> str | None:
        """Feed one stdout line; charge new tokens at once; ask for a stop when a limit is reached."""
        if self._written < TRANSCRIPT_MAX_BYTES:
            self._file.write(text + "\n")
            self._written += len(text) + 1
        before_in, before_out = self.tally.input_tokens, self.tally.output_tokens
        self.tally.feed(text)
        fresh_in, fresh_out = self.tally.input_tokens - before_in, self.tally.output_tokens - before_out
        if not (fresh_in or fresh_out):
            return None
        cost = (fresh_in * self.settings.price_in + fresh_out * self.settings.price_out) / 1e6
        self.session.charge(Usage(fresh_in, fresh_out, cost, self.settings.label))
        return self.session.stop_reason()


def _lap(since: float) -> float:
    return round(time.perf_counter() - since, 4)
