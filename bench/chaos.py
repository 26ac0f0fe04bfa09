"""Benchmark: kill -9 real runs at uniformly random times from t = 0, resume them, and compare.

A run must survive a SIGKILL at any instant: before its seeds are archived, while the zygote still
imports torch, mid-commit, mid-LLM-request. For each scenario this bench

1. runs the config once uninterrupted (the reference; its wall time is T);
2. starts the same config as a new run, as a user would (``python -m evolve.cli run CONFIG``), and
   sends SIGKILL to the run's main process only (like ``kill -9 PID``) after U(0, T) seconds;
   resumes it (``--resume``) and kills it again after a fresh U(0, T), until the run finishes by
   itself; then starts the next round, until ``--kills`` kills were made (the last round finishes);
3. checks each finished round against the reference: candidates lost (in the reference, not in the
   round's archive) and duplicated (more copies than in the reference), ``git fsck``, and equality
   candidate for candidate (parents, source, mutator, model, status, objective values);
4. after every kill, counts orphans: processes that inherited the killed run's environment tag and
   are still alive 3 s later (zygotes, sandboxed children, local model servers).

Scenarios: ``adder`` (configs/adder-repair.yaml: forkserver with torch, numeric mutations, a fixed
hidden seed, no wall budget) and ``llm`` (the toy task with ``llm-diff`` against the fake server in
this process; the first attempt of some requests meets a 429, a 500 or a garbage body, and some
answers are unparseable, so retries and rejections happen). Prints one line per kill and a table.

    python bench/chaos.py [--scenario adder llm] [--kills 30] [--evaluations 24] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluators.toy import TARGET  # noqa: E402
from evolve.archive import Archive  # noqa: E402
from evolve.testing import FakeLLMServer, Garbage, rate_limited, server_error  # noqa: E402

VALUES = re.compile(r"^values = \[([^\]\n]*)\]$", re.MULTILINE)
ORPHAN_GRACE_S = 3.0


# --- scenarios ----------------------------------------------------------------------------------
def adder_config(out: Path, name: str, evaluations: int) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "configs" / "adder-repair.yaml").read_text())
    data["run"].update(name=name, output_dir=str(out))
    data["task"]["options"] = {"hidden_seed": 20261202}  # the same hidden set in every run compared
    data["seeds"] = [str((ROOT / "configs" / s).resolve()) for s in data["seeds"]]  # relative to the config's folder
    data["budget"] = {"max_evaluations": evaluations}  # no wall budget: it would make runs differ
    return data


def llm_config(out: Path, name: str, evaluations: int, base_url: str) -> dict[str, Any]:
    return {
        "run": {"name": name, "output_dir": str(out), "seed": 7},
        "task": {"name": "toy"},
        "seeds": [str(ROOT / "seeds/toy/start.py")],
        "strategy": {"name": "hillclimb"},
        "mutators": [{"name": "llm-diff"}],
        "llm": {"base_url": base_url, "api_key_env": None, "retries": 3, "timeout_s": 10,
                "models": [{"name": "fake-model", "price_in": 1.0, "price_out": 2.0}]},
        "budget": {"max_evaluations": evaluations},
        "parallel": {"evaluations": 2, "llm_requests": 2},
    }


class ChaosModel:
    """The fake server's script: an answer that is a pure function of the request (so a resumed run
    gets what the reference got), with a fault on the first attempt of some requests."""

    def __init__(self) -> None:
        self.attempts: collections.Counter[str] = collections.Counter()

    def __call__(self, body: dict[str, Any]) -> Any:
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        self.attempts[digest] += 1
        roll = int(digest[:8], 16) % 20
        if self.attempts[digest] == 1 and roll < 3:
            return [rate_limited(0.0), server_error(500), Garbage()][roll]
        if roll == 3:
            return "I would rather not change anything."  # unparseable: a rejection
        parent = VALUES.search(body["messages"][-1]["content"])
        if parent is None:
            return "no program in the prompt"
        old = [float(v) for v in parent.group(1).split(",")]
        step = 0.2 + 0.6 * (int(digest[8:12], 16) / 0xFFFF)
        new = [round(o + (t - o) * step, 4) for o, t in zip(old, TARGET)]
        return ("Move the values toward the target.\n"
                f"<<<<<<< SEARCH\n{parent.group(0)}\n=======\nvalues = {json.dumps(new)}\n>>>>>>> REPLACE\n")


# --- one run, one session -----------------------------------------------------------------------
@dataclass
class Session:
    killed: bool
    returncode: int | None
    seconds: float
    stderr_tail: str
    orphans: int = 0


@dataclass
class Round:
    kills: int = 0
    sessions: list[Session] = field(default_factory=list)
    failure: str | None = None
    lost: int | None = None
    duplicated: int | None = None
    fsck_clean: bool | None = None
    equal: bool | None = None


def run_session(config_path: Path, resume: bool, kill_after: float | None) -> Session:
    """One ``evolve run`` process; SIGKILL its main process after ``kill_after`` s unless it ended."""
    tag = uuid.uuid4().hex
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EVOLVE_CHAOS_TAG": tag}
    command = [sys.executable, "-m", "evolve.cli", "run", str(config_path)] + (["--resume"] if resume else [])
    start = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
        try:
            proc.wait(timeout=kill_after)
            killed = False
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed = True
        seconds = time.monotonic() - start
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()[-1:] or [""]
    session = Session(killed, None if killed else proc.returncode, seconds, tail[0])
    if killed:
        time.sleep(ORPHAN_GRACE_S)
        session.orphans = len(tagged_processes(tag))
    return session


def tagged_processes(tag: str) -> list[int]:
    """Live processes whose environment carries ``tag`` (inherited from a killed run)."""
    needle = f"EVOLVE_CHAOS_TAG={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


# --- comparing archives -------------------------------------------------------------------------
def candidates(archive_dir: Path) -> list[tuple]:
    """Each candidate as what must be equal between two runs (no timestamps, no timings)."""
    with Archive.open(archive_dir) as archive:
        names = [o.name for o in archive.meta.objectives]
        return [(c.id, tuple(c.parents), c.source, c.mutator, c.usage.model, c.result.status, c.result.feasible,
                 tuple(_value(c.result.metrics.get(n)) for n in names))
                for c in archive.candidates()]


def _value(v: Any) -> float | str:
    """An objective value that compares equal to itself (NaN and missing become strings)."""
    return round(float(v), 9) if isinstance(v, (int, float)) and v == v else repr(v)


def fsck_clean(archive_dir: Path) -> bool:
    done = subprocess.run(["git", "-C", str(archive_dir), "fsck", "--full", "--strict"], capture_output=True, text=True)
    return done.returncode == 0 and not re.search(r"^(error|missing|broken|dangling blob)", done.stdout + done.stderr, re.M)


def judge(round_: Round, archive_dir: Path, reference: list[tuple]) -> None:
    try:
        got = candidates(archive_dir)
    except Exception as exc:  # an unreadable archive is a finding, reported in the table
        round_.failure = f"archive unreadable: {type(exc).__name__}: {exc}"
        return
    want_sources = collections.Counter(c[2] for c in reference)
    got_sources = collections.Counter(c[2] for c in got)
    round_.lost = sum((want_sources - got_sources).values())
    round_.duplicated = sum(max(0, n - max(1, want_sources[s])) for s, n in got_sources.items())
    round_.fsck_clean = fsck_clean(archive_dir)
    round_.equal = got == reference


# --- the bench ----------------------------------------------------------------------------------
def scenario(name: str, out: Path, args: argparse.Namespace, rng: random.Random) -> tuple[float, list[Round]]:
    def write_config(run_name: str, base_url: str | None) -> Path:
        data = (adder_config(out, run_name, args.evaluations) if name == "adder"
                else llm_config(out, run_name, args.evaluations, str(base_url)))
        path = out / f"{run_name}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    def with_server(run_name: str, body: Any) -> Any:
        if name != "llm":
            return body(write_config(run_name, None))
        with FakeLLMServer(ChaosModel()) as server:
            return body(write_config(run_name, server.base_url))

    reference_session = with_server(f"{name}-reference", lambda cfg: run_session(cfg, False, None))
    if reference_session.returncode != 0:
        raise SystemExit(f"{name}: the reference run failed: {reference_session.stderr_tail}")
    t_ref = reference_session.seconds
    reference = candidates(out / f"{name}-reference" / "archive")
    print(f"{name}: reference run {t_ref:.1f} s, {len(reference)} candidates", flush=True)

    rounds: list[Round] = []
    kills = 0
    while kills < args.kills:
        run_name = f"{name}-chaos{len(rounds)}"
        round_ = Round()
        rounds.append(round_)

        def chaos(cfg: Path) -> None:
            nonlocal kills
            resume = False
            while True:
                delay = rng.uniform(0, t_ref) if kills < args.kills else None
                session = run_session(cfg, resume, delay)
                round_.sessions.append(session)
                resume = True
                if session.killed:
                    kills += 1
                    round_.kills += 1
                    print(f"  kill {kills:>3} at {session.seconds:5.1f} s of session {len(round_.sessions)} "
                          f"({run_name}); orphans {session.orphans}", flush=True)
                    continue
                if session.returncode != 0:
                    round_.failure = f"exit {session.returncode}: {session.stderr_tail}"
                    print(f"  {run_name}: session {len(round_.sessions)} failed: {round_.failure}", flush=True)
                return

        with_server(run_name, chaos)
        if round_.failure is None:
            judge(round_, out / run_name / "archive", reference)
        else:
            break
    return t_ref, rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", nargs="+", choices=["adder", "llm"], default=["adder", "llm"])
    parser.add_argument("--kills", type=int, default=30, help="SIGKILLs per scenario (default 30)")
    parser.add_argument("--evaluations", type=int, default=24, help="evaluation budget of each run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    parser.add_argument("--keep", type=Path, help="keep the runs in this directory")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        for name in args.scenario:
            t_ref, rounds = scenario(name, out, args, rng)
            rows.append((name, t_ref, rounds))
    print(f"\n{'scenario':<8} {'T ref s':>7} {'kills':>5} {'rounds':>6} {'failed':>6} {'orphans':>7} "
          f"{'lost':>4} {'dup':>3} {'fsck':>5} {'equal':>7}")
    for name, t_ref, rounds in rows:
        judged = [r for r in rounds if r.equal is not None]
        orphans = sum(s.orphans for r in rounds for s in r.sessions)
        failed = sum(r.failure is not None for r in rounds)
        print(f"{name:<8} {t_ref:>7.1f} {sum(r.kills for r in rounds):>5} {len(rounds):>6} {failed:>6} {orphans:>7} "
              f"{sum(r.lost or 0 for r in judged):>4} {sum(r.duplicated or 0 for r in judged):>3} "
              f"{'clean' if all(r.fsck_clean for r in judged) else 'NO':>5} "
              f"{sum(bool(r.equal) for r in judged)}/{len(judged):<5}")
        for r in rounds:
            if r.failure:
                print(f"  {name}: {r.failure}")


if __name__ == "__main__":
    main()
