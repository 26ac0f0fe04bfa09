"""The evolution loop end to end on the fast toy task: budgets, targets, determinism, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from evolve.archive import Archive
from evolve.config import parse_config
from evolve.run import EvolutionRun, RunError

ROOT = Path(__file__).resolve().parents[1]


def config(tmp_path: Path, **over: object) -> dict:
    data: dict = {
        "run": {"name": "t", "output_dir": str(tmp_path / "runs"), "seed": 7},
        "task": {"name": "toy"},
        "seeds": [str(ROOT / "seeds/toy/start.py")],
        "strategy": {"name": "hillclimb"},
        "mutators": [{"name": "numeric"}],
        "budget": {"max_evaluations": 12},
        "parallel": {"evaluations": 2},
    }
    data.update(over)
    return data


def run(data: dict, resume: bool = False) -> tuple[EvolutionRun, object]:
    r = EvolutionRun(parse_config(data), resume=resume)
    return r, r.execute()


def sources(run_dir: Path) -> list[tuple[int, tuple[int, ...], str]]:
    return [(c.id, tuple(c.parents), c.source) for c in Archive.open(run_dir / "archive").candidates()]


def test_evaluation_budget_is_exact_and_everything_is_archived(tmp_path: Path) -> None:
    r, outcome = run(config(tmp_path))
    assert outcome.counters.evaluations == 12
    cands = Archive.open(r.archive_dir).candidates()
    assert len(cands) == 12 and [c.id for c in cands] == list(range(12))
    assert cands[0].parents == () and all(c.parents for c in cands[1:])
    assert "evaluation budget spent" in outcome.stop_reason


def test_hillclimb_improves_the_toy_error(tmp_path: Path) -> None:
    data = config(tmp_path, budget={"max_evaluations": 40})
    r, _ = run(data)
    cands = Archive.open(r.archive_dir).candidates()
    seed_error = cands[0].result.metrics["error"]
    best = min(c.result.metrics.get("error", float("inf")) for c in cands)
    assert best < seed_error * 0.8


def test_target_stops_the_run_early(tmp_path: Path) -> None:
    data = config(tmp_path, budget={"max_evaluations": 500}, target=["chars <= 100000"])
    data["task"]["constraints"] = ["error <= 1000"]  # the seed (error 10.3) is already feasible
    _, outcome = run(data)
    assert outcome.target_reached == 0 and outcome.counters.evaluations == 1


def test_same_seed_same_run(tmp_path: Path) -> None:
    a = config(tmp_path / "a")
    b = config(tmp_path / "b")
    ra, _ = run(a)
    rb, _ = run(b)
    assert sources(ra.config.run_dir) == sources(rb.config.run_dir)


def test_existing_run_needs_resume_and_resume_continues_the_same_sequence(tmp_path: Path) -> None:
    whole = config(tmp_path / "whole", budget={"max_evaluations": 10})
    r_whole, _ = run(whole)
    part = config(tmp_path / "part", budget={"max_evaluations": 5})
    run(part)
    with pytest.raises(RunError, match="already exists"):
        EvolutionRun(parse_config(part))
    part["budget"] = {"max_evaluations": 10}
    r_part, outcome = run(part, resume=True)
    assert outcome.counters.evaluations == 10
    assert sources(r_part.config.run_dir) == sources(r_whole.config.run_dir)


def test_wrong_task_on_resume_is_refused(tmp_path: Path) -> None:
    run(config(tmp_path, budget={"max_evaluations": 2}))
    other = config(tmp_path, budget={"max_evaluations": 4})
    other["task"] = {"name": "microgpt"}
    other["seeds"] = [str(ROOT / "seeds/microgpt/optimized.py")]
    with pytest.raises(RunError, match=r"different experiment \(.*task.name: 'toy' -> 'microgpt'\); pass --force"):
        EvolutionRun(parse_config(other), resume=True)
    with pytest.raises(RunError, match="was started for task 'toy'"):  # even --force cannot change the task
        EvolutionRun(parse_config(other), resume=True, force=True)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path: Path) -> None:
    data = config(tmp_path, budget={"max_evaluations": 400}, parallel={"evaluations": 1})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    proc = subprocess.Popen([sys.executable, "-m", "evolve.cli", "run", str(path)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    archive_dir = tmp_path / "runs/t/archive"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if archive_dir.exists() and len(Archive.open(archive_dir).candidates()) >= 5:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err
    done = len(Archive.open(archive_dir).candidates())
    assert 5 <= done < 400
    data["budget"] = {"max_evaluations": done + 3}
    path.write_text(yaml.safe_dump(data))
    rc = subprocess.run([sys.executable, "-m", "evolve.cli", "run", str(path), "--resume"], cwd=tmp_path,
                        capture_output=True, text=True, timeout=120)
    assert rc.returncode == 0, rc.stderr
    ids = [c.id for c in Archive.open(archive_dir).candidates()]
    assert ids == list(range(done + 3))
    assert not any(p.name().startswith("python") and "evolve.sandbox" in " ".join(p.cmdline())
                   for p in _children_of(os.getpid()))


def _commit_count(archive_dir: Path) -> int:
    """Commits in the archive, read with plain git so the polling never takes the writer's lock."""
    if not (archive_dir / ".git").exists() and not (archive_dir / "HEAD").exists():
        return 0
    out = subprocess.run(["git", "rev-list", "--all", "--count"], cwd=archive_dir, capture_output=True, text=True)
    return int(out.stdout.strip() or 0) if out.returncode == 0 else 0


def _children_of(pid: int) -> list:
    import psutil

    return psutil.Process(pid).children(recursive=True)


@pytest.mark.slow
def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    import random

    budget = 40
    whole = config(tmp_path / "whole", budget={"max_evaluations": budget})
    r_whole, _ = run(whole)
    expected = sources(r_whole.config.run_dir)

    data = config(tmp_path / "killed", budget={"max_evaluations": budget})
    path = tmp_path / "killed.yaml"
    path.write_text(yaml.safe_dump(data))
    archive_dir = Path(data["run"]["output_dir"]) / "t/archive"
    rng = random.Random(1234)
    counts = []
    for _ in range(4):
        # Kill at a random point after the archive has grown by a random number of commits, so every
        # kill lands in the middle of real work however fast this machine evaluates.
        target = _commit_count(archive_dir) + rng.randint(1, 6)
        proc = subprocess.Popen([sys.executable, "-m", "evolve.cli", "run", str(path), "--resume"],
                                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while proc.poll() is None and _commit_count(archive_dir) < target and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))
        proc.kill()
        proc.wait()
        counts.append(len(sources(archive_dir.parent)) if archive_dir.exists() else 0)
    assert any(0 < n < budget for n in counts), counts  # the kills really interrupted work in progress
    rc = subprocess.run([sys.executable, "-m", "evolve.cli", "run", str(path), "--resume"], cwd=tmp_path,
                        capture_output=True, text=True, timeout=300)
    assert rc.returncode == 0, rc.stderr
    assert sources(archive_dir.parent) == expected
    fsck = subprocess.run(["git", "fsck", "--full"], cwd=archive_dir, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr


@pytest.mark.slow
def test_shipped_adder_repair_config_fixes_nanogpt58(tmp_path: Path) -> None:
    """The README's main command: the numeric mutator alone repairs the published 58-param adder."""
    from evolve.evaluation import evaluate
    from evolve.tasks import get_task

    data = yaml.safe_load((ROOT / "configs/adder-repair.yaml").read_text())
    data["run"]["output_dir"] = str(tmp_path / "runs")
    data["seeds"] = [str((ROOT / "configs" / s).resolve()) for s in data["seeds"]]
    path = tmp_path / "adder-repair.yaml"
    path.write_text(yaml.safe_dump(data))
    proc = subprocess.run([sys.executable, "-m", "evolve.cli", "run", str(path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "target reached" in proc.stderr
    with Archive.open(tmp_path / "runs/adder-repair/archive") as archive:
        cands = archive.candidates()
        seed, best = cands[0], [c for c in archive.front() if c.result.feasible][0]
    assert len(cands) <= data["budget"]["max_evaluations"]
    assert seed.result.metrics["accuracy"] < 0.93 and not seed.result.feasible
    assert best.result.metrics["params"] <= 83 and best.result.metrics["accuracy"] == 1.0
    # Re-score the archived program from scratch: the archive's verdict is reproducible.
    program = tmp_path / "best.py"
    program.write_text(best.source)
    again = evaluate(get_task("adder"), program)
    assert again.feasible and again.metrics["accuracy"] == best.result.metrics["accuracy"]
