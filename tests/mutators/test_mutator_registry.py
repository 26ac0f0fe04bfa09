"""make_mutator: names, options, and the LLM client requirement."""

from __future__ import annotations

import pytest

from evolve.llm import LLMClient, ModelSpec
from evolve.mutators import MUTATORS, LLMDiffMutator, NumericMutator, RandomMutator, make_mutator


def test_known_names() -> None:
    assert sorted(MUTATORS) == ["llm-diff", "llm-rewrite", "numeric", "random"]
    assert isinstance(make_mutator("numeric", llm=None, max_edits=2), NumericMutator)
    assert isinstance(make_mutator("random"), RandomMutator)
    client = LLMClient("http://127.0.0.1:9/v1", [ModelSpec("m")])
    diff = make_mutator("llm-diff", llm=client, style="strict")
    assert isinstance(diff, LLMDiffMutator) and diff.strict and diff.asks == "diff" and diff.llm is client
    assert all(make_mutator(n, llm=client).name == n for n in MUTATORS)


@pytest.mark.parametrize("name, params, message", [
    ("magic", {}, "unknown mutator 'magic' \\(known: llm-diff, llm-rewrite, numeric, random\\)"),
    ("numeric", {"temperature": 1.0}, "mutator 'numeric': unknown option 'temperature' \\(known: adaptive, ast_rate, group_rate, max_edits\\)"),
    ("random", {"x": 1}, "mutator 'random': unknown option 'x' \\(known: none\\)"),
    ("llm-rewrite", {}, "mutator 'llm-rewrite' needs an LLM client"),
    ("llm-diff", {"style": "terse"}, "mutator 'llm-diff': style: Input should be 'auto', 'full' or 'strict' \\(got 'terse'\\)"),
    ("numeric", {"adaptive": 1}, "mutator 'numeric': adaptive: Input should be a valid boolean \\(got 1\\)"),
])
def test_errors_are_one_line(name: str, params: dict, message: str) -> None:
    client = LLMClient("http://127.0.0.1:9/v1", [ModelSpec("m")]) if "style" in params else None
    with pytest.raises(ValueError, match=message):
        make_mutator(name, llm=client, **params)


def test_errors_are_user_errors_and_a_constructor_bug_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    from evolve.errors import UserError
    from evolve.mutators import MutatorError, check_mutator
    from evolve.mutators.numeric import NumericMutator

    with pytest.raises(MutatorError) as err:
        check_mutator("numeric", {"max_edits": 0})
    assert isinstance(err.value, UserError)

    def broken(self: NumericMutator, **params: object) -> None:
        raise TypeError("a bug, not the user's input")

    monkeypatch.setattr(NumericMutator, "__init__", broken)
    check_mutator("numeric", {"max_edits": 2})  # validation never builds the mutator
    with pytest.raises(TypeError, match="a bug"):
        make_mutator("numeric", max_edits=2)
