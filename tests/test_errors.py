"""UserError: one line whatever the message, and the base of every user-facing error class."""

from __future__ import annotations

import pytest

from evolve.errors import UserError


def test_str_is_the_first_line() -> None:
    assert str(UserError("bad key\nTraceback: noise")) == "bad key"
    assert str(UserError()) == "UserError"


@pytest.mark.parametrize("path, name", [
    ("evolve.archive.records", "ArchiveError"), ("evolve.cli", "UsageError"),
    ("evolve.compare.comparison", "CompareError"), ("evolve.config", "ConfigError"),
    ("evolve.evaluation", "ProgramError"), ("evolve.llm.client", "LLMError"),
    ("evolve.mutators.base", "MutatorError"), ("evolve.run", "RunError"),
    ("evolve.sandbox.zygote", "ForkServerError"), ("evolve.strategies.base", "StrategyError"),
    ("evolve.tasks", "TaskError"), ("evolve.agents.worktree", "WorktreeError"),
])
def test_every_user_facing_error_is_a_user_error(path: str, name: str) -> None:
    import importlib

    assert issubclass(getattr(importlib.import_module(path), name), UserError)
