"""One Usage type for tokens, dollars and the model (``evolve/usage.py``), and the stored formats it
must keep: a candidate's ``metrics.json``, the run state's counters and ``show --json``'s summary are
flat keys, byte-compatible with archives written before the type existed, both ways."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from evolve.archive.records import Summary
from evolve.candidate import Candidate
from evolve.run import Counters
from evolve.usage import Usage

#: A candidate's metrics.json as the evolve before Usage wrote it (f930866, printed by its own code).
OLD_DOCUMENT = (
    '{"status": "ok", "metrics": {"error": 0.5}, "feasible": true, "violation": 0.0, "error": null, '
    '"traceback": null, "info": {}, "phases": {}, "wall_s": 1.5, "parents": [0], "mutator": "llm-diff", '
    '"model": "qwen", "description": "smaller", "prompt_tokens": 900, "completion_tokens": 120, '
    '"cost_usd": 0.002, "generation": 1, "island": null, "extra": {}, "id": 1, "created_at": 1700000000.0}')
#: The run state's counters as it wrote them (``Counters().__dict__``).
OLD_COUNTERS = {"evaluations": 12, "rejected": 3, "rejected_in_a_row": 1, "prompt_tokens": 4000,
                "completion_tokens": 500, "cost_usd": 0.25, "wall_s": 42.0, "batches": 4}
#: The keys of ``show --json``'s summary, in order, as it printed them.
OLD_SUMMARY_KEYS = ["run", "task", "evaluations", "feasible", "statuses", "front_size", "best", "prompt_tokens",
                    "completion_tokens", "cost_usd", "eval_wall_s", "elapsed_s", "rejected", "other_tokens",
                    "other_cost_usd", "feasible_pct"]


@dataclass
class OldCounters:
    """The counters class before Usage: what an older evolve does with a state this one writes."""

    evaluations: int = 0
    rejected: int = 0
    rejected_in_a_row: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    wall_s: float = 0.0
    batches: int = 0


def test_usages_add_and_the_latest_model_is_kept() -> None:
    first, second = Usage(100, 10, 0.5, "m1"), Usage(50, 5, 0.25, "m2")
    total = first + second
    assert total == Usage(150, 15, 0.75, "m2") and total.tokens == 165
    assert first + Usage() == first  # nothing spent names no model and keeps the one named
    assert sum([first, second], Usage()) == total
    assert not Usage() and Usage(cost_usd=0.01)
    assert total.without_model() == Usage(150, 15, 0.75)


def test_flat_keys_round_trip_and_missing_keys_read_as_zero() -> None:
    usage = Usage(7, 3, 0.125)
    assert usage.to_dict() == {"prompt_tokens": 7, "completion_tokens": 3, "cost_usd": 0.125}
    assert Usage.from_dict(usage.to_dict()) == usage
    assert Usage.from_dict({"evaluations": 4}) == Usage()
    assert Usage.from_dict({"prompt_tokens": 5}, model="m") == Usage(5, 0, 0.0, "m")


def test_an_old_candidate_document_reads_and_writes_back_unchanged() -> None:
    doc = json.loads(OLD_DOCUMENT)
    cand = Candidate.from_document(doc, source="x = 1\n", sha="abc")
    assert cand.usage == Usage(900, 120, 0.002, "qwen")
    assert json.dumps(cand.document()) == OLD_DOCUMENT  # same keys, same order: old readers read ours


def test_a_seed_document_has_no_model_and_zero_spend() -> None:
    doc = json.loads(OLD_DOCUMENT)
    doc.update(mutator="seed", model=None, prompt_tokens=0, completion_tokens=0, cost_usd=0.0)
    assert Candidate.from_document(doc, source="", sha="").usage == Usage()


def test_old_run_counters_resume_and_ours_resume_in_an_older_evolve() -> None:
    counters = Counters.from_state(OLD_COUNTERS)
    assert counters.spent == Usage(4000, 500, 0.25) and counters.tokens == 4500
    assert (counters.evaluations, counters.rejected, counters.wall_s, counters.batches) == (12, 3, 42.0, 4)
    assert counters.to_state() == OLD_COUNTERS and list(counters.to_state()) == list(OLD_COUNTERS)
    assert OldCounters(**counters.to_state()) == OldCounters(**OLD_COUNTERS)  # the older evolve's resume
    assert Counters.from_state({}) == Counters()  # a state saved before any counter


def test_the_json_summary_keeps_its_keys() -> None:
    summary = Summary(run="r", task="t", evaluations=2, feasible=1, statuses={"ok": 2}, front_size=1, best={},
                      spent=Usage(400, 60, 2.0), eval_wall_s=1.0, elapsed_s=2.0, rejected=3,
                      on_candidates=Usage(100, 10, 0.5))
    data = summary.to_dict()
    assert list(data) == OLD_SUMMARY_KEYS
    assert (data["prompt_tokens"], data["completion_tokens"], data["cost_usd"]) == (400, 60, 2.0)
    assert (data["other_tokens"], data["other_cost_usd"]) == (350, pytest.approx(1.5))
