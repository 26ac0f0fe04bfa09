"""Commit messages: how the archive reads in ``git log``.

A candidate's message is a one-line subject holding the whole intent (never cut: ``git log
--oneline`` is the lab notebook), the description again when it spans lines, and a trailer block (``Evolve-Id: 42``, ``Evolve-Status: ok``, one ``Evolve-<Metric>`` per metric …)
so ``git log`` alone tells the story. Messages are for people: the archive itself reads metrics.json
and checkpoint.json, never the messages.
"""

from __future__ import annotations

import math
import re
from typing import Any

from evolve.archive.records import RunMeta
from evolve.candidate import Candidate


def trailer_key(name: str) -> str:
    """``params_unique`` -> ``Evolve-Params-Unique`` (trailer keys allow letters, digits, ``-``)."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", name) if p]
    return "Evolve-" + "-".join(p[:1].upper() + p[1:].lower() for p in parts)


def candidate_message(c: Candidate) -> str:
    intent = " ".join(c.description.split()) or "(no description)"
    subject = f"#{c.id} {c.mutator}: {intent}"
    body = c.description.strip() if "\n" in c.description.strip() else ""
    trailers: list[tuple[str, Any]] = [
        ("Evolve-Id", c.id), ("Evolve-Status", c.status), ("Evolve-Feasible", c.feasible),
        ("Evolve-Violation", c.violation),
        *((trailer_key(name), value) for name, value in c.metrics.items()),
        ("Evolve-Mutator", c.mutator), ("Evolve-Model", c.usage.model or "none"),
        ("Evolve-Parents", " ".join(map(str, c.parents)) or "none"),
        ("Evolve-Generation", c.generation),
    ]
    if c.island is not None:
        trailers.append(("Evolve-Island", c.island))
    trailers += [("Evolve-Prompt-Tokens", c.usage.prompt_tokens),
                 ("Evolve-Completion-Tokens", c.usage.completion_tokens),
                 ("Evolve-Cost-Usd", c.usage.cost_usd), ("Evolve-Wall-S", c.result.wall_s)]
    if c.result.error:
        trailers.append(("Evolve-Error", c.result.error))
    return _message(subject, body, trailers)


def front_message(front: list[Candidate], added: set[int], removed: set[int], last_id: int) -> str:
    lines = [f"Added: {_ids(added)}" if added else "", f"Removed: {_ids(removed)}" if removed else ""]
    return _message(f"Front after #{last_id}: {len(front)} candidates",
                    "\n".join(line for line in lines if line),
                    [("Evolve-Front", " ".join(str(c.id) for c in front) or "none")])


def checkpoint_message(added: list[Candidate], next_id: int) -> str:
    new = f" (+#{added[0].id}..#{added[-1].id})" if added else " (state only)"
    return _message(f"Checkpoint: {next_id} candidates{new}", "", [("Evolve-Next-Id", next_id)])


def meta_message(meta: RunMeta) -> str:
    objectives = ", ".join(f"{o.name} ({o.goal}{', ' + o.unit if o.unit else ''})"
                           for o in meta.objectives)
    constraints = ", ".join(map(str, meta.constraints)) or "none"
    return _message(f"Run {meta.run}: task {meta.task}",
                    f"Objectives: {objectives}\nConstraints: {constraints}",
                    [("Evolve-Run", meta.run), ("Evolve-Task", meta.task)])


def _message(subject: str, body: str, trailers: list[tuple[str, Any]]) -> str:
    block = "\n".join(f"{key}: {_value(value)}" for key, value in trailers)
    return "\n\n".join(part for part in (subject, body, block) if part) + "\n"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(value) if not math.isfinite(value) else f"{value:.10g}"
    return " ".join(str(value).split())  # one line, whatever it was


def _ids(ids: set[int]) -> str:
    return " ".join(f"#{i}" for i in sorted(ids))
