"""Accounting from a Codex-style ``--json`` event stream."""

from __future__ import annotations

import json

from evolve.agents.events import EventTally


def stream(*events: object) -> EventTally:
    tally = EventTally()
    for event in events:
        tally.feed(event if isinstance(event, str) else json.dumps(event))
    return tally


def test_usage_is_summed_over_turns_and_cached_tokens_are_not_added_again() -> None:
    tally = stream(
        {"type": "thread.started", "thread_id": "t"},
        {"type": "turn.completed", "usage": {"input_tokens": 1000, "cached_input_tokens": 400, "output_tokens": 50}},
        {"type": "turn.completed", "usage": {"input_tokens": 700, "cached_input_tokens": 0, "output_tokens": 30,
                                             "reasoning_output_tokens": 20}},
    )
    assert (tally.turns, tally.input_tokens, tally.cached_input_tokens, tally.output_tokens) == (2, 1700, 400, 80)
    assert tally.tokens == 1780


def test_agent_messages_are_kept_as_claims_and_commands_counted() -> None:
    tally = stream(
        {"type": "item.completed", "item": {"id": "1", "type": "command_execution", "command": "pytest"}},
        {"type": "item.completed", "item": {"id": "2", "type": "agent_message", "text": "first"}},
        {"type": "item.completed", "item": {"id": "3", "type": "agent_message", "text": "accuracy is 1.0"}},
    )
    assert tally.commands == 1 and tally.messages == ["first", "accuracy is 1.0"]
    assert tally.last_message == "accuracy is 1.0"


def test_failures_are_recorded_and_foreign_lines_ignored() -> None:
    tally = stream("Reading prompt from stdin...", "", "[1, 2]", '{"no_type": 1}',
                   {"type": "turn.failed", "error": {"message": "stream disconnected"}},
                   {"type": "error", "message": "quota exceeded"},
                   {"type": "turn.completed", "usage": {"input_tokens": "many", "output_tokens": -5}})
    assert tally.errors == ["stream disconnected", "quota exceeded"]
    assert (tally.other_lines, tally.events) == (3, 3)
    assert tally.tokens == 0 and tally.turns == 1
