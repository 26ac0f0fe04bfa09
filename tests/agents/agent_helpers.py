"""Shared helpers of the agent tests: run configs on the toy task, the fake agent CLI, scripted tool calls."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from evaluators.toy import TARGET
from evolve.archive import Archive, Candidate
from evolve.config import parse_config
from evolve.run import EvolutionRun, RunOutcome
from evolve.testing.fake_llm import Reply

ROOT = Path(__file__).resolve().parents[2]
FAKE_AGENT = Path(__file__).with_name("fake_agent.py")
VALUES = re.compile(r"^values = \[([^\]\n]*)\]$", re.MULTILINE)


def base_config(tmp_path: Path, strategy: dict[str, Any], **over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "run": {"name": "agent", "output_dir": str(tmp_path / "runs"), "seed": 5},
        "task": {"name": "toy"},
        "seeds": [str(ROOT / "seeds/toy/start.py")],
        "strategy": strategy,
        "budget": {"max_evaluations": 3},
    }
    data.update(over)
    return data


def cli_config(tmp_path: Path, modes: str, *, pidfile: Path | None = None, **params: Any) -> dict[str, Any]:
    """agent-cli driven by the fake agent playing ``modes`` (see fake_agent.py)."""
    command = [sys.executable, str(FAKE_AGENT), modes, "{workdir}", "{iteration}"]
    if pidfile is not None:
        command.append(str(pidfile))
    return base_config(tmp_path, {"name": "agent-cli", "params": {"command": command, "timeout_s": 30, **params}})


def agent_config(tmp_path: Path, base_url: str, **params: Any) -> dict[str, Any]:
    """The tool-calling agent against a (fake) endpoint."""
    llm = {"base_url": base_url, "api_key_env": None, "retries": 0,
           "models": [{"name": "fake-model", "price_in": 1.0, "price_out": 2.0}]}
    return base_config(tmp_path, {"name": "agent", "params": params}, llm=llm)


def execute(data: dict[str, Any], resume: bool = False) -> tuple[EvolutionRun, RunOutcome]:
    run = EvolutionRun(parse_config(data), resume=resume)
    return run, run.execute()


def candidates(run: EvolutionRun) -> list[Candidate]:
    with Archive.open(run.archive_dir) as archive:
        return archive.candidates()


def state(run: EvolutionRun) -> dict[str, Any]:
    with Archive.open(run.archive_dir) as archive:
        return archive.state()


def subject(run: EvolutionRun, cand: Candidate) -> str:
    """The first line of a candidate's commit message, read with plain git."""
    return subprocess.run(["git", "show", "-s", "--format=%s", cand.sha], cwd=run.archive_dir,
                          capture_output=True, text=True, check=True).stdout.strip()


# --- scripting the tool-calling agent ------------------------------------------------------------
def call(name: str, **arguments: Any) -> Reply:
    return Reply(tool_calls=({"name": name, "arguments": arguments},))


def turn(body: dict[str, Any]) -> int:
    """How many answers the model has given in this session so far."""
    return sum(1 for m in body["messages"] if m["role"] == "assistant")


def iteration(body: dict[str, Any]) -> int:
    return int(re.search(r"^Iteration (\d+)\.", body["messages"][1]["content"], re.MULTILINE).group(1))


def base_source(body: dict[str, Any]) -> str:
    """The base program shown in the session's first message."""
    return body["messages"][1]["content"].split("```python\n", 1)[1].rsplit("```", 1)[0]


def move(source: str, fraction: float) -> dict[str, str]:
    """edit_program arguments moving ``values`` by ``fraction`` of the way to the toy target."""
    line = VALUES.search(source)
    old = [float(v) for v in line.group(1).split(",")]
    new = [round(o + (t - o) * fraction, 4) for o, t in zip(old, TARGET)]
    return {"search": line.group(0), "replace": f"values = {json.dumps(new)}"}


def tool_results(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "tool"]
