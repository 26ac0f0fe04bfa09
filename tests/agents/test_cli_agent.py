"""The ``agent-cli`` strategy end to end: a scripted fake agent CLI (real subprocesses) edits a real git
worktree; evolve re-scores the result in the real sandbox on the toy task and keeps or reverts."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from agent_helpers import VALUES, candidates, cli_config, execute, state, subject

from evolve.agents.cli_agent import CODEX_VERSION
from evolve.archive import Archive
from evolve.config import ConfigError, parse_config
from evolve.run import EvolutionRun
from evolve.strategies import StrategyError


def gone(pids: list[int], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.05)
    return False


def test_improve_is_kept_break_is_reverted_and_files_outside_are_discarded(tmp_path: Path) -> None:
    data = cli_config(tmp_path, "improve,break,outside", price_in=2.0, price_out=10.0)
    data["budget"] = {"max_evaluations": 4}
    run, outcome = execute(data)
    seed, good, broken, outside = candidates(run)
    assert [c.parents for c in (good, broken, outside)] == [(0,), (1,), (1,)]  # #3 starts again from #1
    assert good.metrics["error"] < seed.metrics["error"] and outside.metrics["error"] < good.metrics["error"]
    # the broken program's claim is logged, its figures are the evaluator's
    assert broken.status == "error" and broken.metrics == {} and "ZeroDivisionError" in broken.result.error
    assert broken.extra["agent"]["claim"] == "Done: error is now 0.0 and every check passes."
    assert subject(run, broken) == "#2 agent-cli: Done: error is now 0.0 and every check passes."
    # only the program's EVOLVE-BLOCK came back; other files were discarded
    assert outside.extra["agent"]["discarded"] == ["metrics.json", "notes.txt", "sub/helper.py"]
    assert outside.extra["agent"]["note"] == "changes outside EVOLVE-BLOCK discarded"
    assert "Hacked" not in outside.source and VALUES.sub("", outside.source) == VALUES.sub("", good.source)
    with Archive.open(run.archive_dir) as archive:
        assert archive.get(3).sha == outside.sha
    tree = subprocess.run(["git", "ls-tree", "--name-only", outside.sha], cwd=run.archive_dir, capture_output=True,
                          text=True, check=True).stdout.split()
    assert tree == ["metrics.json", "program.py"]
    assert not (run.scratch / "agent-worktree").exists() and not (run.scratch / "agent-home").exists()
    # keep / revert, and the journal says what was measured
    agent = state(run)["strategy"]
    assert agent["best"] == 3 and agent["tally"] == {"kept": 2, "reverted": 1, "empty": 0}
    assert "-> reverted" in agent["notes"]["journal"][1] and "(unverified): Done" in agent["notes"]["journal"][1]
    # tokens from the JSONL events: three iterations of one turn each
    c = outcome.counters.spent
    assert (c.prompt_tokens, c.completion_tokens) == (3 * 1200, 3 * 80)
    assert c.cost_usd == pytest.approx(3 * (1200 * 2.0 + 80 * 10.0) / 1e6)
    u = good.usage
    assert (u.prompt_tokens, u.completion_tokens, u.model) == (1200, 80, Path(sys.executable).name)
    assert good.extra["agent"]["stream"]["cached_input_tokens"] == 300
    assert set(good.extra["timing"]) == {"checkout_s", "agent_s", "cleanup_s"}
    assert (run.config.run_dir / "transcripts/iteration-0001.jsonl").read_text().count("turn.completed") == 1


def test_a_hanging_agent_is_killed_with_its_whole_group_and_its_iteration_recorded(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    data = cli_config(tmp_path, "hang", pidfile=pidfile, timeout_s=1.5)
    data["budget"] = {"max_evaluations": 2}
    start = time.monotonic()
    run, _ = execute(data)
    assert time.monotonic() - start < 10
    assert gone([int(p) for p in pidfile.read_text().split()])  # the agent and the child it started
    _, attempt = candidates(run)
    assert attempt.extra["agent"]["exit"] == "timed out" and attempt.extra["agent"]["wall_s"] >= 1.5
    assert attempt.status == "ok" and attempt.extra["agent"]["stream"]["commands"] == 1


def test_the_wall_time_budget_cuts_the_agent_short(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    data = cli_config(tmp_path, "hang", pidfile=pidfile, timeout_s=600)
    data["budget"] = {"max_wall_s": 2.0}
    start = time.monotonic()
    _, outcome = execute(data)
    assert "wall-time budget spent" in outcome.stop_reason and time.monotonic() - start < 8
    assert gone([int(p) for p in pidfile.read_text().split()])


def test_token_limits_stop_a_spending_agent_as_it_reports_usage(tmp_path: Path) -> None:
    data = cli_config(tmp_path, "spend", tokens_per_iteration=3000)
    data["budget"] = {"max_evaluations": 10, "max_tokens": 5000}
    run, outcome = execute(data)
    c = outcome.counters
    assert "token budget spent" in outcome.stop_reason and c.evaluations == 1
    assert c.spent.prompt_tokens % 1200 == 0 and 5000 <= c.tokens <= 5000 + 3 * 1280
    journal = state(run)["strategy"]["notes"]["journal"]
    assert "stopped (token limit of the iteration reached" in journal[0] and "program unchanged" in journal[0]
    assert c.rejected == len(journal) == 2


def test_the_prompt_s_evaluate_command_works_and_the_environment_is_scrubbed(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-agents")
    monkeypatch.setenv("EVOLVE_TEST_PASSED", "yes")
    data = cli_config(tmp_path, "check,env,improve", env=["EVOLVE_TEST_PASSED"])
    data["budget"] = {"max_evaluations": 2}
    run, _ = execute(data)
    check, env, improved = state(run)["strategy"]["notes"]["journal"]
    assert "evaluate exit 0: toy: ok" in check and "program unchanged" in check
    names = env.split("names=")[1].split(",")
    assert "EVOLVE_TEST_PASSED" in names and "OPENAI_API_KEY" not in names and "PATH" in names
    assert f"HOME={run.scratch / 'agent-home'} " in env
    assert "-> kept" in improved


def test_git_commands_of_the_agent_never_reach_the_archive(tmp_path: Path) -> None:
    data = cli_config(tmp_path, "git")
    run, _ = execute(data)
    _, first, _ = candidates(run)
    hack = first.extra["agent"]["claim"].split()[-1]
    missing = subprocess.run(["git", "cat-file", "-e", hack], cwd=run.archive_dir, capture_output=True)
    assert missing.returncode != 0  # the agent's commit lives in the scratch repository only
    with Archive.open(run.archive_dir) as archive:
        assert [c.id for c in archive.candidates()] == [0, 1, 2] and archive.state()["strategy"]["best"] == 2


def test_interrupt_kills_the_agent_and_resume_continues_with_the_notes(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    data = cli_config(tmp_path, "improve,hang", pidfile=pidfile, timeout_s=600)
    data["budget"] = {"max_evaluations": 4}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    proc = subprocess.Popen([sys.executable, "-m", "evolve.cli", "run", str(path)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert gone([int(p) for p in pidfile.read_text().split()])
    data["strategy"]["params"]["command"][2] = "improve"  # another agent: an experiment change, hence --force
    path.write_text(yaml.safe_dump(data))
    done = subprocess.run([sys.executable, "-m", "evolve.cli", "run", str(path), "--resume", "--force"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with Archive.open(tmp_path / "runs/agent/archive") as archive:
        cands, agent = archive.candidates(), archive.state()["strategy"]
    assert [c.parents for c in cands] == [(), (0,), (1,), (2,)]
    # iteration 2 archived nothing before the interrupt: it runs again after the saved iteration 1
    assert [j.split(" from")[0] for j in agent["notes"]["journal"]] == ["iteration 1", "iteration 2", "iteration 3"]


@pytest.mark.parametrize("params, message", [
    ({"command": ["codex", "{nope}"]}, "command: unknown placeholder {nope}"),
    ({"command": ["codex", "{workdir"]}, "command: "),
    ({"command": "{program} x"}, "cannot be a placeholder"),
    ({"command": []}, "command must be a non-empty list"),
    ({"env": ["NOT-A-NAME"]}, "env: must be a list of environment variable names (got ['NOT-A-NAME'])"),
    ({"timeout_s": -1}, "timeout_s: must be >= 0.001 (got -1)"),
    ({"prompt": "Improve {program} using {secret}"}, "prompt: unknown placeholder {secret}"),
    ({"tokens_per_iteration": 0}, "tokens_per_iteration: must be >= 1 (got 0)"),
])
def test_bad_parameters_are_one_line_config_errors(tmp_path: Path, params: dict, message: str) -> None:
    data = cli_config(tmp_path, "improve")
    data["strategy"]["params"].update(params)
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_missing_agent_command_fails_before_anything_is_written(tmp_path: Path) -> None:
    data = cli_config(tmp_path, "improve")
    data["strategy"]["params"] = {}  # the default: codex exec ...
    if shutil.which("codex"):
        pytest.skip("codex is installed here")
    with pytest.raises(StrategyError, match=f"command 'codex' not found .*@openai/codex@{CODEX_VERSION}"):
        EvolutionRun(parse_config(data))
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(shutil.which("codex") is None or not os.environ.get("CODEX_API_KEY"),
                    reason="needs the Codex CLI and a CODEX_API_KEY")
def test_real_codex_one_iteration(tmp_path: Path) -> None:
    version = subprocess.run(["codex", "--version"], capture_output=True, text=True).stdout
    assert CODEX_VERSION in version, f"evolve documents codex {CODEX_VERSION}, found {version.strip()}"
    data = cli_config(tmp_path, "improve", timeout_s=600, env=["CODEX_API_KEY"])
    data["strategy"]["params"]["command"] = ["codex", "exec", "--json", "--sandbox", "workspace-write",
                                             "-C", "{workdir}", "{prompt}"]
    data["budget"] = {"max_evaluations": 2, "max_wall_s": 900}
    run, outcome = execute(data)
    assert outcome.counters.spent.prompt_tokens > 0 and state(run)["strategy"]["notes"]["journal"]
