"""Task ``microgpt``: make Karpathy's pure-Python GPT trainer leaner without changing its output.

The candidate is a standalone script run as ``python program.py --data names.txt --steps N --seed S``
in a fresh interpreter, so the peak RSS measured is the program's own (comparable with
``/usr/bin/time -v``). It is correct when its stdout is byte-identical to the reference program's
(the shipped baseline seed) for the same arguments and data: every loss and every sample.

Evaluation is a cascade, cheapest first, stopping at the first failure:

1. ``public``: the public seed on the full names file, ``steps`` steps;
2. ``hidden``: a secret seed and a secret subset of the names, ``steps`` steps, so that printing a
   memorised output does not pass;
3. ``full``: the hidden variant again, ``full_steps`` steps (skipped when 0).

The metrics come from the last stage that ran; stages 2-3 run on inputs the candidate cannot
predict, so their figures cannot be special-cased. In the hidden variant the program's own shuffle
puts a longest name first: the first step then builds the largest graph any step can, so the peak
memory of a short run is the peak of a full run and does not depend on the secret seed.

A secret stage says how it failed (status, limit, exit code, the first differing line's number)
but never quotes the candidate: not its stdout, its stderr or its error line. Those are written by
the candidate, which knows the secret seed and names (its argv and data), and they reach whoever
reads results (an LLM prompt): a candidate that computed the hidden output honestly and printed it
to stderr would let the next one print it from memory. The public stage runs the same program, so
its errors are shown in full there (rule ``secret-output-withheld``,
``tests/evaluators/test_redteam.py``).

The program runs on the standard library alone (rule ``stdlib-only``, :class:`~evolve.sandbox.Sandbox`):
its view has no site-packages and no ctypes, so its ``wall_s`` is a Python program's, not numpy's,
torch's or machine code's it wrote (``tests/evaluators/test_microgpt.py``).

Reference outputs come from running the reference in the same sandbox (the two hidden ones
concurrently) and are cached on disk under ``cache_dir``, which no sandboxed process may read, keyed
by the reference's source, seed, steps and data. Unless ``hidden_seed`` is given, the hidden variant
derives from a secret drawn once from os.urandom and kept in ``cache_dir``: evaluations sharing a
cache share the hidden variant, so their figures are comparable and their references are computed
once (the baseline needs ~0.4 s a step). Delete the ``hidden_seed`` file there to draw a new one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import shutil
import tempfile
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pydantic import Field, model_validator

from evaluators._timing import Repeats, median, repeated, timing_info
from evolve.evaluation import EvalResult
from evolve.plugins import ConfigPath
from evolve.plugins import Params as PluginParams
from evolve.sandbox import Job, Limits, ProcessResult, Sandbox
from evolve.tasks import Constraint, Objective, Task

NAMES = Path(__file__).resolve().parent / "data" / "names.txt"
BASELINE = Path(__file__).resolve().parent.parent / "seeds" / "microgpt" / "baseline.py"
SECONDS_PER_STEP = 2.0  # candidate time budget per step: ~5x the baseline's 0.4 s
REFERENCE_MEMORY_MB = 1024  # generous: the baseline's address space peaks near 70 MB
CLIP = 200  # longest excerpt of a line quoted in an error


@dataclass(frozen=True)
class Stage:
    """One run of the cascade. ``secret`` stages never reveal the expected output."""

    name: str
    seed: int
    steps: int
    data: Path
    secret: bool


class MicroGPTTask(Task):
    name = "microgpt"
    description = "shrink the peak memory and time of a pure-Python GPT trainer; stdout must stay byte-identical"
    # peak_memory_mib: every page the run held (memory cgroup), which a candidate cannot hide in a
    # memfd or a file the way it can from ru_maxrss; peak_rss_mib is reported beside it.
    objectives = (Objective("peak_memory_mib", "min", "MiB"), Objective("wall_s", "min", "s"))
    constraints = (Constraint("output_match", "==", 1.0),)
    isolation = "fresh"
    stdlib_only = True  # a pure-Python trainer: its wall_s must not come from numpy, torch or ctypes

    class Params(PluginParams):
        steps: int = Field(50, ge=1)  # training steps of the public and hidden runs
        full_steps: int = Field(200, ge=0)  # training steps of the final hidden run; 0 skips it
        seed: int = Field(42, ge=0)  # seed of the public run
        hidden_seed: int | None = Field(None, ge=0)  # None: a secret drawn once from os.urandom, kept in cache_dir
        hidden_names: int = Field(30000, ge=1)  # size of the hidden subset of names
        memory_mb: int = Field(512, ge=64)  # address-space limit of a run
        timeout_s: float | None = Field(None, gt=0)  # per run; None: 30 s + 2 s per step
        cache_dir: ConfigPath = "~/.cache/evolve/microgpt"  # relative: to the config's folder
        reference: ConfigPath | None = None  # trusted program defining the expected output; None: the baseline seed
        # runs of the last stage timed for wall_s (their median; evaluators/_timing.py); 1 by default
        # because a run costs 10-80 s; each repeat's output must match too
        repeats: Repeats = 1

        @model_validator(mode="after")
        def _consistent(self) -> "MicroGPTTask.Params":
            if 0 < self.full_steps <= self.steps:
                raise ValueError(f"full_steps must be 0 or more than steps ({self.steps})")
            if not Path(self.reference or BASELINE).expanduser().is_file():
                raise ValueError(f"reference program {self.reference or BASELINE} not found (set option reference)")
            if self.hidden_names > len(_names()):
                raise ValueError(f"hidden_names must be at most {len(_names())} (got {self.hidden_names})")
            return self

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        o = self.options
        self.reference = Path(o["reference"] or BASELINE).expanduser().resolve()
        self.cache = ReferenceCache(Path(o["cache_dir"]).expanduser())
        self._names = _names()
        self._hidden: tuple[int, Path] | None = None
        self._lock = threading.Lock()

    # --- the cascade ---------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        o = self.options
        seed, data = self._hidden_variant()
        stages = [Stage("public", o["seed"], o["steps"], NAMES, False), Stage("hidden", seed, o["steps"], data, True)]
        if o["full_steps"]:
            stages.append(Stage("full", seed, o["full_steps"], data, True))
        return stages

    def evaluate(self, program: Path, sandbox: Sandbox) -> EvalResult:
        stages = self.stages()
        info: dict[str, Any] = {"hidden_variant": fingerprint(stages[1]), "reference_runs": 0}
        phases: dict[str, dict[str, Any]] = {}
        expected: dict[str, dict[str, Any]] = {}
        steps_checked = 0
        for number, stage in enumerate(stages, 1):
            if stage.name not in expected:  # the secret stages' references are computed together
                group = [s for s in stages if s.secret] if stage.secret else [stage]
                for s, (record, ran) in zip(group, self._references(group, sandbox)):
                    expected[s.name] = record
                    info["reference_runs"] += ran
            limits = self._limits(stage.steps, self.options["timeout_s"], self.options["memory_mb"])
            proc = sandbox.run(_job(program, stage), limits=limits)
            phases[stage.name] = proc.summary()
            info.update(stage=stage.name, reference_peak_rss_mib=expected[stage.name]["peak_rss_mib"])
            if not proc.ok:
                result = EvalResult.failed(proc, stage.name, **info)
                result.phases = phases
                return _withheld(result, proc, stage)
            diff = first_difference(expected[stage.name]["stdout"], proc.stdout, secret=stage.secret)
            if not diff:
                steps_checked = max(steps_checked, stage.steps)
            metrics = {
                "peak_memory_mib": proc.peak_memory_mib,
                "peak_rss_mib": proc.peak_rss_mib,
                "wall_s": proc.wall_s,
                "cpu_s": proc.cpu_s,
                "output_match": 0.0 if diff else 1.0,
                "steps_checked": float(steps_checked),
                "stage": float(number),
            }
            if diff:
                error = f"{stage.name} run ({_describe(stage)}): {diff}"
                return EvalResult(status="ok", metrics=metrics, error=error, info=info, phases=phases)
        walls = repeated(proc.wall_s, self.options["repeats"],
                         lambda i: self._time_again(program, stage, limits, expected[stage.name], sandbox, i))
        if isinstance(walls, EvalResult):
            return walls
        metrics["wall_s"] = median(walls)
        info.update(timing_info("wall_s", walls))
        return EvalResult(status="ok", metrics=metrics, info=info, phases=phases)

    def _time_again(self, program: Path, stage: Stage, limits: Limits, expected: dict[str, Any],
                    sandbox: Sandbox, repeat: int) -> float | EvalResult:
        """One more timed run of the last stage; it must succeed and print the same output again."""
        proc = sandbox.run(_job(program, stage), limits=limits)
        if not proc.ok:
            return _withheld(EvalResult.failed(proc, f"{stage.name} (repeat {repeat})"), proc, stage)
        diff = first_difference(expected["stdout"], proc.stdout, secret=stage.secret)
        if diff:
            return EvalResult(status="error", error=f"{stage.name} run, repeat {repeat}: {diff}")
        return float(proc.wall_s)

    def _references(self, stages: list[Stage], sandbox: Sandbox) -> list[tuple[dict[str, Any], bool]]:
        """Reference records for ``stages`` (cached, or run concurrently), each with whether it ran."""

        def one(stage: Stage) -> tuple[dict[str, Any], bool]:
            return self.cache.get(self._cache_key(stage), lambda: self._run_reference(stage, sandbox))

        if len(stages) == 1:
            return [one(stages[0])]
        with ThreadPoolExecutor(max_workers=len(stages)) as pool:
            return list(pool.map(one, stages))

    # --- helpers -------------------------------------------------------------------------------
    def _hidden_variant(self) -> tuple[int, Path]:
        """The secret (seed, data file) of this task instance, written once to a private temp dir."""
        with self._lock:
            if self._hidden is None:
                secret = self.options["hidden_seed"]
                secret = self.cache.secret() if secret is None else secret
                seed, names = hidden_variant(secret, self.options["hidden_names"], self._names)
                directory = Path(tempfile.mkdtemp(prefix="evolve-microgpt-"))
                weakref.finalize(self, shutil.rmtree, directory, True)
                path = directory / "names.txt"
                path.write_text("".join(n + "\n" for n in names))
                self._hidden = (seed, path)
            return self._hidden

    def _cache_key(self, stage: Stage) -> str:
        parts = [_sha256(self.reference.read_bytes()), str(stage.seed), str(stage.steps), _sha256(stage.data.read_bytes())]
        return _sha256("\n".join(parts).encode())

    def _run_reference(self, stage: Stage, sandbox: Sandbox) -> dict[str, Any]:
        limits = self._limits(stage.steps, 60 + 4 * SECONDS_PER_STEP * stage.steps, REFERENCE_MEMORY_MB)
        proc = sandbox.run(_job(self.reference, stage), limits=limits)
        if not proc.ok:
            raise RuntimeError(f"microgpt reference {self.reference} failed on the {stage.name} run: {proc.error}")
        return {"stdout": proc.stdout, "peak_rss_mib": proc.peak_rss_mib, "wall_s": proc.wall_s, "cpu_s": proc.cpu_s}

    @staticmethod
    def _limits(steps: int, timeout_s: float | None, memory_mb: int) -> Limits:
        return Limits(
            timeout_s=float(timeout_s or 30 + SECONDS_PER_STEP * steps),
            memory_mb=memory_mb,
            processes=1,  # one process: peak RSS must not be split across helpers
            output_bytes=64_000 + 64 * steps,
        )


class ReferenceCache:
    """Reference runs on disk, one JSON file per key, written atomically; computed once per key
    even when several evaluations of one process ask for it at the same time."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: str, compute: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """The record for ``key`` and whether ``compute()`` had to run to produce it."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            record = self.load(key)
            if record is not None:
                return record, False
            record = compute()
            self.store(key, record)
            return record, True

    def secret(self) -> int:
        """This cache's hidden seed: drawn from os.urandom on first use, then kept (mode 0600) so
        that every evaluation sharing the cache shares the hidden variant and its references."""
        path = self.directory / "hidden_seed"
        if not path.exists():
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self._write_tmp(str(int.from_bytes(os.urandom(8), "big")))
            try:
                os.link(tmp, path)  # never replaces a secret another process created meanwhile
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        return int(path.read_text())

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        try:
            record = json.loads(self.path(key).read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and isinstance(record.get("stdout"), str) else None

    def store(self, key: str, record: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.replace(self._write_tmp(json.dumps(record)), self.path(key))

    def _write_tmp(self, text: str) -> str:
        """A new private (0600) file in the cache directory holding ``text``; returns its path."""
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp


def hidden_variant(hidden_seed: int, count: int, names: list[str]) -> tuple[int, list[str]]:
    """A secret program seed and ``count`` names, arranged so that the program's own
    ``random.seed(seed); random.shuffle(docs)`` trains on a longest name first."""
    rng = random.Random(hidden_seed)
    seed = rng.randrange(2**31)
    chosen = rng.sample(names, count)
    longest = max(map(len, names))
    pick = rng.choice([n for n in names if len(n) == longest])
    order = list(range(count))
    random.Random(seed).shuffle(order)  # the permutation the program's shuffle will apply
    first = order[0]
    if pick in chosen:
        where = chosen.index(pick)
        chosen[where], chosen[first] = chosen[first], chosen[where]
    else:
        chosen[first] = pick
    return seed, chosen


def fingerprint(stage: Stage) -> str:
    """Which hidden variant results were computed on, for whoever reads them (an LLM prompt), who
    must not learn the secret: a hash of the seed *and* the names, because the seed alone is 31
    bits, and a hash of it alone is inverted by hashing each of the 2**31 seeds."""
    return _sha256(f"{stage.seed}\n".encode() + stage.data.read_bytes())[:12]


def first_difference(expected: str, got: str, *, secret: bool) -> str | None:
    """A one-line description of the first differing line, or None when the outputs are equal.
    A secret run's lines are withheld: the expected one would leak the hidden reference output, the
    candidate's own could carry what it learnt of the secret."""
    if expected == got:
        return None
    want, have = expected.split("\n"), got.split("\n")
    line = next((i for i, (a, b) in enumerate(zip(want, have)) if a != b), min(len(want), len(have)))
    a = repr(want[line][:CLIP]) if line < len(want) else "end of output"
    b = repr(have[line][:CLIP]) if line < len(have) else "end of output"
    if secret:
        return f"output differs from the reference at line {line + 1} (expected and actual lines withheld)"
    return f"output differs from the reference at line {line + 1}: expected {a}, got {b}"


def _withheld(result: EvalResult, proc: ProcessResult, stage: Stage) -> EvalResult:
    """``result`` without the candidate's words when ``stage`` is secret (its stderr tail and error
    line could carry the hidden names or output back to the caller); the sandbox's figures stay."""
    if not stage.secret:
        return result
    how = f"{proc.status}" + (f", {proc.limit} limit" if proc.limit else "") + (
        f", exit code {proc.exit_code}" if proc.exit_code else "") + (f", signal {proc.signal}" if proc.signal else "")
    result.error = f"{stage.name} run ({_describe(stage)}) failed ({how}); its output is withheld in secret runs"
    result.traceback = None
    return result


def _job(program: Path, stage: Stage) -> Job:
    argv = ("--data", "names.txt", "--steps", str(stage.steps), "--seed", str(stage.seed))
    return Job.script("program.py", *argv, files={"program.py": str(program), "names.txt": str(stage.data)})


def _describe(stage: Stage) -> str:
    if stage.secret:
        return f"{stage.steps} steps, secret seed and names"
    return f"--seed {stage.seed} --steps {stage.steps}, full names file"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.cache
def _names() -> list[str]:
    """The public names dataset, one name a line (read once per process)."""
    return [line.strip() for line in NAMES.read_text().splitlines() if line.strip()]


TASK = MicroGPTTask
