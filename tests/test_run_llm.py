"""The evolution loop with LLM mutators against a real HTTP server on loopback (the fake one).

The scripted "model" reads the parent program out of the prompt and answers with a SEARCH/REPLACE
block moving the toy program's vector halfway to the target, so every strategy can make progress,
every answer costs tokens, and the run's accounting and budgets can be checked exactly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from evaluators.toy import TARGET
from evolve.archive import Archive
from evolve.config import parse_config
from evolve.run import EvolutionRun
from evolve.testing.fake_llm import FakeLLMServer

ROOT = Path(__file__).resolve().parents[1]
VALUES = re.compile(r"^values = \[([^\]\n]*)\]$", re.MULTILINE)


def halfway(body: dict[str, Any]) -> str:
    """A diff that moves the parent's ``values`` halfway to the toy target."""
    prompt = body["messages"][-1]["content"]
    parent = VALUES.search(prompt)
    assert parent, "the prompt must show the parent program"
    old = [float(v) for v in parent.group(1).split(",")]
    new = [round(o + (t - o) / 2, 4) for o, t in zip(old, TARGET)]
    return ("Move every value halfway to where the error is smallest.\n"
            f"<<<<<<< SEARCH\n{parent.group(0)}\n=======\nvalues = {json.dumps(new)}\n>>>>>>> REPLACE\n")


def config(tmp_path: Path, base_url: str, **over: Any) -> dict:
    data: dict[str, Any] = {
        "run": {"name": "llm", "output_dir": str(tmp_path / "runs"), "seed": 3},
        "task": {"name": "toy"},
        "seeds": [str(ROOT / "seeds/toy/start.py")],
        "strategy": {"name": "hillclimb"},
        "mutators": [{"name": "llm-diff"}],
        "llm": {"base_url": base_url, "api_key_env": None,
                "models": [{"name": "fake-model", "price_in": 1.0, "price_out": 2.0}]},
        "budget": {"max_evaluations": 8},
        "parallel": {"evaluations": 2, "llm_requests": 2},
    }
    data.update(over)
    return data


@pytest.mark.parametrize("strategy", [
    {"name": "hillclimb"},
    {"name": "islands", "params": {"islands": 2, "migration_interval": 2}},
    {"name": "random"},
])
def test_each_strategy_improves_the_program_through_the_llm(tmp_path: Path, strategy: dict) -> None:
    with FakeLLMServer(halfway) as server:
        run = EvolutionRun(parse_config(config(tmp_path, server.base_url, strategy=strategy)))
        outcome = run.execute()
    assert outcome.counters.evaluations == 8 and outcome.counters.rejected == 0
    assert len(server.requests) == 7  # one answer per child; the seed costs no request
    with Archive.open(run.archive_dir) as archive:
        cands = archive.candidates()
    children = cands[1:]
    assert {c.mutator for c in children} == {"llm-diff"} and {c.usage.model for c in children} == {"fake-model"}
    assert all(c.usage.prompt_tokens > 0 and c.usage.completion_tokens > 0 for c in children)
    seed_error = cands[0].result.metrics["error"]
    assert min(c.result.metrics["error"] for c in children) < seed_error / 3
    # Token and cost accounting: the archive's per-candidate figures add up to the run's counters.
    spent = outcome.counters.spent
    assert spent.prompt_tokens == sum(c.usage.prompt_tokens for c in children)
    assert spent.cost_usd == pytest.approx(sum(c.usage.cost_usd for c in children))
    assert spent.cost_usd == pytest.approx((spent.prompt_tokens * 1.0 + spent.completion_tokens * 2.0) / 1e6)


@pytest.mark.parametrize(("budget", "reason"), [
    ({"max_tokens": 1500}, "token budget spent"),
    ({"max_cost_usd": 0.002}, "cost budget spent"),
])
def test_token_and_cost_budgets_stop_the_run(tmp_path: Path, budget: dict, reason: str) -> None:
    with FakeLLMServer(halfway) as server:
        outcome = EvolutionRun(parse_config(config(tmp_path, server.base_url, budget=budget))).execute()
    assert reason in outcome.stop_reason
    c = outcome.counters
    spent = c.tokens if "max_tokens" in budget else c.spent.cost_usd
    limit = budget.get("max_tokens", budget.get("max_cost_usd"))
    per_batch = spent / c.batches
    # Checked between batches: the run stops in the first batch that reaches the budget, never later.
    assert limit <= spent < limit + 2 * per_batch
    assert 1 < c.evaluations < 50


def test_replay_from_the_response_cache_needs_no_server(tmp_path: Path) -> None:
    with FakeLLMServer(halfway) as server:
        first = EvolutionRun(parse_config(config(tmp_path / "a", server.base_url)))
        first.execute()
    # The same run elsewhere, with the first run's cache and the server gone: llm.replay answers
    # every request from the cache, so the run repeats candidate for candidate.
    data = config(tmp_path / "b", server.base_url)
    data["llm"]["replay"] = True
    second = parse_config(data)
    shutil.copytree(first.config.run_dir / "llm-cache", second.run_dir / "llm-cache")
    replayed = EvolutionRun(second)
    outcome = replayed.execute()
    assert outcome.counters.evaluations == 8
    assert sources(replayed.archive_dir) == sources(first.archive_dir)
    assert outcome.counters.tokens == first.counters.tokens > 0  # cached answers are budgeted alike


def test_replay_with_a_missing_answer_stops_the_run_with_the_reason(tmp_path: Path) -> None:
    with FakeLLMServer(halfway) as server:
        data = config(tmp_path, server.base_url)
    data["llm"]["replay"] = True
    run = EvolutionRun(parse_config(data))
    outcome = run.execute()
    assert outcome.counters.evaluations == 1 + 0  # the seed only: the first miss stops the run
    assert outcome.counters.rejected == 0  # a miss is the run's failure, never a rejection
    assert outcome.failure is not None and outcome.failure.startswith("replay: no cached answer for model fake-model, request ")
    assert "(last message begins '## Task')" in outcome.failure and "\n" not in outcome.failure


def sources(archive_dir: Path) -> list[tuple[int, tuple[int, ...], str]]:
    with Archive.open(archive_dir) as archive:
        return [(c.id, tuple(c.parents), c.source) for c in archive.candidates()]


@pytest.mark.parametrize("shipped", ["microgpt-memory.yaml", "sorter-params.yaml"])
def test_shipped_llm_configs_fail_in_one_line_without_an_endpoint(tmp_path: Path, shipped: str) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = yaml.safe_load((ROOT / "configs" / shipped).read_text())
    data["run"]["output_dir"] = str(tmp_path / "runs")
    data["seeds"] = [str((ROOT / "configs" / s).resolve()) for s in data["seeds"]]
    path = tmp_path / shipped
    path.write_text(yaml.safe_dump(data))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "EVOLVE_LLM"))}
    env["EVOLVE_LLM_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
    proc = subprocess.run([sys.executable, "-m", "evolve.cli", "run", str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3  # EXIT_LLM: the endpoint, not the config, is at fault
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"evolve: no LLM endpoint reachable at http://127.0.0.1:{port}/v1")
    for alternative in ("EVOLVE_LLM_BASE_URL", "provider: local", "configs/adder-repair.yaml"):
        assert alternative in lines[0]  # the refusal names what to do instead
    assert not (tmp_path / "runs").exists()  # nothing written
