"""The ``agent`` strategy end to end: a scripted model behind the fake OpenAI server drives real tool
calls, evaluations run in the real sandbox on the toy task, attempts land in the real archive."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from agent_helpers import (agent_config, base_source, call, candidates, execute, iteration, move, state, subject,
                           tool_results, turn)

from evolve.config import ConfigError, parse_config
from evolve.testing.fake_llm import FakeLLMServer, Reply, Slow


def test_a_session_reads_edits_evaluates_takes_notes_and_submits(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def model(body: dict[str, Any]) -> Reply:
        seen.append(body)
        steps = [call("read_program"),
                 call("edit_program", **move(base_source(body), 0.5)),
                 call("evaluate", intent="move every value halfway to the target"),
                 call("write_notes", text=f"iteration {iteration(body)}: halfway helped"),
                 call("submit", summary="halfway")]
        return steps[turn(body)]

    with FakeLLMServer(model) as server:
        data = agent_config(tmp_path, server.base_url)
        data["budget"] = {"max_evaluations": 4}
        run, outcome = execute(data)
    seed, first, second, third = candidates(run)
    assert outcome.counters.evaluations == 4 and len(seen) == 5 + 5 + 3  # the budget ends iteration 3 early
    assert [c.parents for c in (first, second, third)] == [(0,), (1,), (2,)]
    assert {c.mutator for c in (first, second, third)} == {"agent"}
    assert seed.metrics["error"] > first.metrics["error"] > second.metrics["error"] > third.metrics["error"]
    assert subject(run, first) == "#1 agent: move every value halfway to the target"
    assert first.extra == {"iteration": 1} and first.usage.prompt_tokens > 0 and first.usage.cost_usd > 0
    # the tools answered with the program and with the evaluator's own figures
    results = tool_results(seen[4])
    assert "values = [2.0, -1.0, 0.5, 5.0]" in results[0] and results[1].startswith("edit applied")
    assert f"error={first.metrics['error']:.6g}" in results[2] and "better than the base #0" in results[2]
    # notes carried into the next iteration, and the kept attempt is its base
    assert "The current best program is #1" in seen[5]["messages"][1]["content"]
    assert "iteration 1: halfway helped" in seen[5]["messages"][1]["content"]
    agent = state(run)["strategy"]
    assert agent["best"] == 3 and agent["tally"] == {"kept": 3, "reverted": 0, "empty": 0}
    assert [line.split(" -> ")[1][:4] for line in agent["notes"]["journal"]] == ["kept"] * 3
    assert "best attempt #3" in agent["notes"]["journal"][2] and "evaluation budget spent" in agent["notes"]["journal"][2]
    assert agent["notes"]["scratchpad"] == "iteration 1: halfway helped\niteration 2: halfway helped"
    assert outcome.counters.spent.prompt_tokens >= sum(c.usage.prompt_tokens for c in (first, second, third)) > 0
    transcript = json.loads((run.config.run_dir / "transcripts/iteration-0001.json").read_text())
    assert transcript[-1]["role"] == "tool" and transcript[-1]["content"].startswith("submitted #1")


def test_a_worse_submission_is_reverted_and_the_next_iteration_starts_from_the_best(tmp_path: Path) -> None:
    firsts: list[str] = []

    def model(body: dict[str, Any]) -> Reply:
        if turn(body) == 0:
            firsts.append(body["messages"][1]["content"])
        fraction = {1: 0.5, 2: -3.0, 3: 0.5}[iteration(body)]  # iteration 2 moves away from the target
        steps = [call("edit_program", **move(base_source(body), fraction)), call("evaluate", intent=f"move {fraction}"),
                 call("submit", summary="done")]
        return steps[turn(body)]

    with FakeLLMServer(model) as server:
        data = agent_config(tmp_path, server.base_url)
        data["budget"] = {"max_evaluations": 4}
        run, _ = execute(data)
    cands = candidates(run)
    assert [c.parents for c in cands[1:]] == [(0,), (1,), (1,)]  # #3 starts from #1: #2 was reverted
    assert cands[2].metrics["error"] > cands[1].metrics["error"]
    assert "The current best program is #1" in firsts[2]
    journal = state(run)["strategy"]["notes"]["journal"]
    assert [" -> kept" in j for j in journal] == [True, False, True] and "-> reverted" in journal[1]


def test_the_model_s_claims_are_ignored(tmp_path: Path) -> None:
    bodies: list[dict[str, Any]] = []

    def model(body: dict[str, Any]) -> Reply:
        bodies.append(body)
        edit = {"search": move(base_source(body), 0.5)["search"], "replace": "values = [1 / 0]"}
        steps = [call("edit_program", **edit),
                 Reply(content="Accuracy is 1.0 and the error is 0.0.",
                       tool_calls=({"name": "evaluate", "arguments": {"intent": "perfect now", "metrics": {"error": 0}}},)),
                 call("submit", summary="error 0.0, accuracy 1.0")]
        return steps[turn(body)]

    with FakeLLMServer(model) as server:
        run, _ = execute(agent_config(tmp_path, server.base_url))
    _, attempt, _ = candidates(run)
    assert attempt.status == "error" and not attempt.feasible and attempt.metrics == {}
    report = tool_results(bodies[2])[1]
    assert "status error" in report and "ZeroDivisionError" in report and "ignored unknown argument: metrics" in report
    agent = state(run)["strategy"]
    assert agent["best"] == 0 and agent["tally"]["reverted"] == 2
    assert "-> reverted" in agent["notes"]["journal"][0] and "(unverified): error 0.0" in agent["notes"]["journal"][0]


def test_bad_tool_calls_cost_turns_not_the_run(tmp_path: Path) -> None:
    bodies: list[dict[str, Any]] = []

    def model(body: dict[str, Any]) -> Reply:
        bodies.append(body)
        src = base_source(body)
        halfway = move(src, 0.5)
        rewrite = src.replace(halfway["search"], halfway["replace"]).replace('"""Seed', '"""Rewritten seed')
        steps = [call("rm_rf"),
                 Reply(tool_calls=({"name": "edit_program", "arguments": "{not json"},)),
                 call("edit_program", search="print(json.dumps(values))", replace="print([0])"),
                 call("edit_program", search=halfway["search"], replace="values = [1, 2"),
                 call("edit_program", content=rewrite),
                 call("evaluate", intent="rewrite"),
                 call("evaluate", intent="the same again"),
                 call("edit_program", **move(rewrite, 0.5)),
                 call("submit", summary="done")]
        return steps[turn(body)]

    with FakeLLMServer(model) as server:
        run, _ = execute(agent_config(tmp_path, server.base_url, evaluations_per_iteration=1))
    results = tool_results(bodies[8])
    assert results[0].startswith("error: unknown tool 'rm_rf'")
    assert results[1].startswith("error: edit_program: arguments are not valid JSON")
    assert "outside the EVOLVE-BLOCK regions" in results[2] and "does not parse" in results[3]
    assert results[4] == "edit applied (changes outside EVOLVE-BLOCK discarded); the working copy is not evaluated yet"
    assert results[5].startswith("attempt #1 archived")
    assert results[6].startswith("not evaluated again: this exact program is #1")
    transcript = json.loads((run.config.run_dir / "transcripts/iteration-0001.json").read_text())
    assert transcript[-1]["content"].startswith("the working copy was not evaluated (no evaluations left in this "
                                                "iteration (limit 1)); submitted #1")
    first = candidates(run)[1]
    assert '"""Seed for the toy task' in first.source and first.metrics["error"] < candidates(run)[0].metrics["error"]
    assert "-> kept" in state(run)["strategy"]["notes"]["journal"][0]


def test_turn_and_evaluation_limits_of_an_iteration(tmp_path: Path) -> None:
    bodies: list[dict[str, Any]] = []

    def model(body: dict[str, Any]) -> Reply:
        bodies.append(body)
        src = base_source(body)
        steps = [call("edit_program", **move(src, 0.5)), call("evaluate", intent="half"),
                 call("edit_program", content=src.replace("2.0", "2.5")), call("evaluate", intent="again"),
                 Reply(content="Let me think about it."), call("read_program")]
        return steps[turn(body)]

    with FakeLLMServer(model) as server:
        data = agent_config(tmp_path, server.base_url, turns_per_iteration=6, evaluations_per_iteration=1)
        data["budget"] = {"max_evaluations": 4}
        run, outcome = execute(data)
    assert len(bodies) == 6 + 6 + 2  # two iterations of exactly six turns; the budget ends the third
    assert "no evaluations left in this iteration (limit 1)" in tool_results(bodies[4])[-1]
    assert bodies[5]["messages"][-1]["role"] == "user"  # a reply without a tool call gets a nudge
    assert "Continue with a tool call" in bodies[5]["messages"][-1]["content"]
    assert outcome.counters.evaluations == 4
    journal = state(run)["strategy"]["notes"]["journal"]
    assert all("best attempt" in j and "turn limit reached (6)" in j for j in journal[:2])


def test_token_limits_end_sessions_and_the_token_budget_ends_the_run(tmp_path: Path) -> None:
    with FakeLLMServer(lambda body: call("read_program")) as server:
        data = agent_config(tmp_path, server.base_url, tokens_per_iteration=1)
        data["budget"] = {"max_evaluations": 50, "max_tokens": 2000}
        run, outcome = execute(data)
        requests = len(server.requests)
    assert "token budget spent" in outcome.stop_reason
    journal = state(run)["strategy"]["notes"]["journal"]
    assert len(journal) == requests  # one turn per iteration: the iteration's token limit ended each
    assert all("nothing evaluated (token limit of the iteration reached" in j for j in journal[:-1])
    assert outcome.counters.rejected == requests and outcome.counters.evaluations == 1


def test_the_wall_time_budget_ends_a_session_between_turns(tmp_path: Path) -> None:
    with FakeLLMServer(lambda body: Slow(0.2, call("read_program"))) as server:
        data = agent_config(tmp_path, server.base_url, turns_per_iteration=200)
        data["budget"] = {"max_wall_s": 1.5}
        start = time.monotonic()
        _, outcome = execute(data)
    assert "wall-time budget spent" in outcome.stop_reason and time.monotonic() - start < 6


def test_an_interrupted_iteration_is_closed_on_resume_and_notes_survive(tmp_path: Path) -> None:
    firsts: list[str] = []

    def model(body: dict[str, Any]) -> Reply:
        if turn(body) == 0:
            firsts.append(body["messages"][1]["content"])
        if iteration(body) == 2 and turn(body) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the model "thinks", after an archived attempt
            return Slow(5.0, call("read_program"))
        steps = [call("edit_program", **move(base_source(body), 0.5)), call("evaluate", intent="half"),
                 call("write_notes", text="NOTE-ONE: halving works"), call("submit", summary="ok")]
        return steps[turn(body)]

    with FakeLLMServer(model) as server:
        data = agent_config(tmp_path, server.base_url)
        data["budget"] = {"max_evaluations": 10}
        run, outcome = execute(data)
        assert outcome.interrupted and len(candidates(run)) == 3
        assert state(run)["strategy"]["open"] == {"iteration": 2, "base": 1, "first_id": 2}
        data["budget"] = {"max_evaluations": 4}
        run, outcome = execute(data, resume=True)
    assert not outcome.interrupted and outcome.counters.evaluations == 4
    assert "NOTE-ONE" in firsts[-1] and "The current best program is #2" in firsts[-1]
    journal = state(run)["strategy"]["notes"]["journal"]
    assert "cut short by an interrupt" in journal[1] and "#2" in journal[1] and "-> kept" in journal[1]
    assert [c.parents for c in candidates(run)[1:]] == [(0,), (1,), (2,)]


@pytest.mark.parametrize("params, message", [
    ({"turns_per_iteration": 0}, "turns_per_iteration: must be >= 1 (got 0)"),
    ({"evaluations_per_iteration": True}, "evaluations_per_iteration: Input should be a valid integer (got True)"),
    ({"tokens_per_iteration": "lots"}, "tokens_per_iteration: Input should be a valid integer (got 'lots')"),
    ({"turns": 3}, "unknown parameter 'turns'"),
])
def test_bad_parameters_are_one_line_config_errors(tmp_path: Path, params: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(agent_config(tmp_path, "http://127.0.0.1:9/v1", **params))
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("<config>: strategy.params: strategy 'agent'")
