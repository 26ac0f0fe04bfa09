"""The ``sorter`` task: the smallest transformer that learns to sort short strings of letters.

A case is ``length`` letters drawn from an alphabet of ``alphabet`` letters, duplicates allowed
(e.g. ``c a a``); the answer is the same letters sorted (``a a c``). Letters are tokens
``0 .. alphabet - 1`` and the separator is token ``alphabet``, so a prompt is ``x1 .. xn <sep>`` and
the model generates ``n`` tokens. Every one of the ``alphabet ** length`` cases is checked.

A candidate is a Python module defining

``train_model(alphabet: int, length: int, seed: int) -> torch.nn.Module``
    Builds and trains (or hand-sets) a model for the task size, deterministically for the seed;
    called with three positional arguments in this order. The model's ``forward(tokens:
    LongTensor[B, T]) -> scores[B, T', V]`` must be plain tensor code that ``torch.export`` can
    trace with a dynamic batch size; the evaluator reads ``scores[:, -1, :]``.

The generation loop is the evaluator's: greedy, batched over all cases, ``length`` steps, each
token fed back, the separator forbidden once the prompt has ended.

Evaluation runs in two sandboxed processes (artefact format: ``evaluators/_torch_model.py``):

1. ``build`` (untrusted): imports the candidate, calls ``train_model`` with the task's options,
   exports the trained model and writes ``program.json`` and ``tensors.pt``. Training happens
   here, so this phase's wall time is the ``train_s`` objective.
2. ``check`` (trusted, a process that never imported the candidate): loads the artefact, applies
   the adder's graph rules (``evaluators/adder.py``, ``evaluators/_graph_rules.py``), decodes
   every case, counts. Sorting operators are not on the allow-list, and token ids enter only
   through lookups into a stored table, so a forward that compares or ranks letters by tensor
   arithmetic is refused (``token-lookup``) instead of scoring with 0 parameters. A refusal, or a
   checker that crashes or is killed, makes the candidate ``invalid``.

Options: ``alphabet`` (2-8, default 3), ``length`` (2-6, default 3), ``seed`` (the training seed
passed to ``train_model``, default 0), ``build_timeout_s`` and ``check_timeout_s`` (120 s each;
larger sizes train longer: the seed needs about 15 CPU seconds at 5 letters of 5, 60 at 6 of 8).
Constraints: ``accuracy == 1`` and ``attention_ops >= 1`` (it must be a transformer).

Metrics: ``accuracy``/``correct`` over all cases, ``params`` (the strict count the search
minimises: stored bytes in float32 units plus value literals, as for the adder), ``params_adderboard``
(the AdderBoard convention, reported only), ``params_numel``, ``params_nonzero``,
``constants_numel``, ``mask_numel``, ``attention_ops`` (real attention only), ``train_s`` (build wall time: training
plus about 0.4 s of export), ``train_cpu_s`` (its CPU time, steadier on a busy machine), ``check_s``
and ``peak_rss_mib`` (build peak RSS above the zygote).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evaluators._graph_rules import inspect_program
from evaluators._phases import (
    CANDIDATE_FILE,
    build_and_check,
    import_candidate,
    invalid,
    refused,
)
from evaluators._timing import check_repeats, median, repeated, timing_info
from evaluators._torch_model import (
    ARTEFACT_FILES,
    export_model,
    generate,
    load_program,
    save_program,
)
from evolve.evaluation import EvalResult
from evolve.sandbox import Job, Limits, Sandbox
from evolve.tasks import Constraint, Objective, Task, TaskError

CHUNK_SIZE = 4096
def cases(alphabet: int, length: int) -> torch.Tensor:
    """Every string of ``length`` letters over ``alphabet`` letters, ``[alphabet ** length, length]``."""
    return torch.tensor(list(itertools.product(range(alphabet), repeat=length)), dtype=torch.long).view(-1, length)


def prompts(strings: torch.Tensor, alphabet: int) -> torch.Tensor:
    """``x1 .. xn <sep>`` for each row of ``strings``."""
    return torch.cat([strings, torch.full((strings.shape[0], 1), alphabet, dtype=torch.long)], dim=1)


# --- sandboxed phases -------------------------------------------------------------------------------


def build(program: str, alphabet: int, length: int, seed: int, out: str = ".") -> dict[str, Any]:
    """Build phase (untrusted process): candidate file -> trained model -> artefact files in ``out``."""
    torch.set_num_threads(1)
    module = import_candidate(Path(program))
    train_model = getattr(module, "train_model", None)
    if not callable(train_model):
        return invalid("the program defines no train_model(alphabet, length, seed) function")
    model = train_model(alphabet, length, seed)  # positional: parameter names are the candidate's
    if not isinstance(model, nn.Module):
        return invalid(f"train_model() returned {type(model).__name__}, expected a torch.nn.Module")
    example = prompts(cases(alphabet, length)[[1, -2, -1]], alphabet)  # three rows: the batch stays dynamic
    save_program(export_model(model, example, 2 * length), Path(out))
    return {"status": "ok"}


def check(alphabet: int, length: int, directory: str = ".") -> dict[str, Any]:
    """Check phase (trusted process): artefact -> metrics. Never imports candidate code."""
    torch.set_num_threads(1)
    strings = cases(alphabet, length)
    try:
        program = load_program(Path(directory))
        probe = prompts(strings[[1, len(strings) // 2, -2]], alphabet)
        structure, counts = inspect_program(program, probe, 2 * length)
        start = time.perf_counter()
        answers = generate(program, prompts(strings, alphabet), length, forbidden=(alphabet,), chunk_size=CHUNK_SIZE)
        decode_s = time.perf_counter() - start
    except Exception as exc:  # the graph's fault, whatever it is: refuse, with the reason
        return refused(exc)
    correct = int((answers == strings.sort(dim=1).values).all(dim=1).sum())  # expected only after decoding
    metrics = {
        "accuracy": correct / len(strings),
        "correct": correct,
        **structure,
    }
    info = {
        "cases": len(strings),
        "export": "dynamic" if program.graphs[0].seq_len is None else f"{len(program.graphs)} fixed lengths",
        **counts,
        "decode_s": round(decode_s, 4),
    }
    return {"status": "ok", "metrics": metrics, "info": info}


# --- the task ---------------------------------------------------------------------------------------


class SorterTask(Task):
    name = "sorter"
    description = "Smallest transformer that learns to sort n letters from an alphabet of k (all k**n cases must be right)."
    objectives = (Objective("params", "min", "params"), Objective("train_s", "min", "s"))
    constraints = (Constraint("accuracy", "==", 1.0), Constraint("attention_ops", ">=", 1))
    isolation = "forkserver"
    preload = ("torch", "evaluators.sorter")
    warmup = "evaluators._torch_model:warmup"
    #: repeats: builds timed for ``train_s`` (their median; evaluators/_timing.py). The artefact of the
    #: first build is the one checked; the others only time the same training.
    default_options = {"alphabet": 3, "length": 3, "seed": 0, "build_timeout_s": 120.0, "check_timeout_s": 120.0,
                       "repeats": 3}

    def validate_options(self) -> None:
        o = self.options
        for key, lo, hi in (("alphabet", 2, 8), ("length", 2, 6), ("seed", 0, 2**63 - 1)):
            if type(o[key]) is not int or not lo <= o[key] <= hi:
                raise TaskError(f"sorter: {key} must be an int in [{lo}, {hi}], got {o[key]!r}")
        for key in ("build_timeout_s", "check_timeout_s"):
            if isinstance(o[key], bool) or not isinstance(o[key], (int, float)) or o[key] <= 0:
                raise TaskError(f"sorter: {key} must be a positive number, got {o[key]!r}")
        check_repeats("sorter", o["repeats"])

    def evaluate(self, program: Path, sandbox: Sandbox) -> EvalResult:
        o = self.options
        size = {"alphabet": o["alphabet"], "length": o["length"]}
        outcome = build_and_check(
            sandbox,
            Job.call("evaluators.sorter:build", files={CANDIDATE_FILE: str(program)},
                     program=CANDIDATE_FILE, seed=o["seed"], **size),
            lambda files: Job.call("evaluators.sorter:check", files=files, **size),
            ARTEFACT_FILES,
            build_timeout_s=o["build_timeout_s"], check_timeout_s=o["check_timeout_s"],
        )
        if isinstance(outcome, EvalResult):
            return outcome
        built = outcome.built
        build = Job.call("evaluators.sorter:build", files={CANDIDATE_FILE: str(program)},
                         program=CANDIDATE_FILE, seed=o["seed"], **size)
        walls = repeated(built.wall_s, o["repeats"], lambda i: self._time_build(sandbox, build, i))
        if isinstance(walls, EvalResult):
            return walls
        metrics = {
            **outcome.value["metrics"],
            "train_s": median(walls),
            "train_cpu_s": round(built.cpu_s, 4),
            "check_s": round(outcome.checked.wall_s, 4),
            "peak_rss_mib": round(built.peak_rss_delta_mib, 3),
        }
        info = {**outcome.value["info"], **size, "seed": o["seed"], **timing_info("train_s", walls)}
        return EvalResult(status="ok", metrics=metrics, info=info, phases=outcome.phases)

    def _time_build(self, sandbox: Sandbox, build: Job, repeat: int) -> float | EvalResult:
        """One more timed build (a fresh working directory); a failure fails the candidate."""
        with sandbox.workdir() as build_dir:
            proc = sandbox.run(build, limits=Limits(timeout_s=self.options["build_timeout_s"]), workdir=build_dir)
        if not proc.ok:
            return EvalResult.failed(proc, f"build (repeat {repeat})")
        return float(proc.wall_s)


TASK = SorterTask
