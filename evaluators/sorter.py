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

``train_s`` is the median of ``repeats`` builds (``evaluators/_timing.py``). Only the first build's
artefact is checked, so every repeat must write byte for byte the same artefact (rule
``timed-build-is-checked-build``, ``tests/evaluators/test_redteam.py``); otherwise a candidate
that skips training at random, or whenever it can tell it is not the first build, would be timed
on builds that never trained the model that was scored. ``train_model`` must therefore be
deterministic for its seed, as the build's single thread makes ordinary torch training.

Options: ``alphabet`` (2-8, default 3), ``length`` (2-6, default 3), ``seed`` (the training seed
passed to ``train_model``, default 0), ``build_timeout_s`` and ``check_timeout_s`` (120 s each;
larger sizes train longer: the seed needs about 15 CPU seconds at 5 letters of 5, 60 at 6 of 8).
Constraints: ``accuracy == 1`` and ``attention_ops >= 1`` (it must be a transformer).

Metrics: ``accuracy``/``correct`` over all cases, ``params`` (the strict count the search
minimises: stored bytes in float32 units plus value literals plus numbers built from structure
(``folded-constant``), as for the adder; the seed's is 319, its 318 weights and the ``arange(T)``
that indexes its positional embedding, a folded constant of cost 1), ``params_adderboard``
(the AdderBoard convention, reported only), ``params_numel``, ``params_nonzero``,
``constants_numel``, ``mask_numel``, ``attention_ops`` (real attention only), ``train_s`` (build wall time: training
plus about 0.4 s of export), ``train_cpu_s`` (its CPU time, steadier on a busy machine), ``check_s``
and ``peak_rss_mib`` (build peak RSS above the zygote).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from evaluators._phases import ARTEFACT_FILES, CANDIDATE_FILE, ArtefactFileError, artefact_digest, artefact_files, build_and_check
from evaluators._timing import Repeats, median, repeated, timing_info
from evolve.evaluation import EvalResult
from evolve.plugins import Params as PluginParams
from evolve.sandbox import Job, Limits, Sandbox
from evolve.tasks import Constraint, Objective, Task

# --- the task ---------------------------------------------------------------------------------------


class SorterTask(Task):
    name = "sorter"
    description = "Smallest transformer that learns to sort n letters from an alphabet of k (all k**n cases must be right)."
    objectives = (Objective("params", "min", "params"), Objective("train_s", "min", "s"))
    constraints = (Constraint("accuracy", "==", 1.0), Constraint("attention_ops", ">=", 1))
    isolation = "forkserver"
    preload = ("torch", "evaluators._sorter_phases")
    warmup = "evaluators._torch_model:warmup"

    class Params(PluginParams):
        alphabet: int = Field(3, ge=2, le=8)  # letters to sort
        length: int = Field(3, ge=2, le=6)  # letters per string
        seed: int = Field(0, ge=0, le=2**63 - 1)  # the build's training seed
        build_timeout_s: float = Field(120.0, gt=0)
        check_timeout_s: float = Field(120.0, gt=0)
        #: builds timed for ``train_s`` (their median; evaluators/_timing.py). The artefact of the
        #: first build is the one checked; the others only time the same training.
        repeats: Repeats = 3

    def evaluate(self, program: Path, sandbox: Sandbox) -> EvalResult:
        o = self.options
        size = {"alphabet": o["alphabet"], "length": o["length"]}
        build = Job.call("evaluators._sorter_phases:build", files={CANDIDATE_FILE: str(program)},
                         program=CANDIDATE_FILE, seed=o["seed"], **size)
        outcome = build_and_check(
            sandbox,
            build,
            lambda files: Job.call("evaluators._sorter_phases:check", files=files, **size),
            ARTEFACT_FILES,
            build_timeout_s=o["build_timeout_s"], check_timeout_s=o["check_timeout_s"],
        )
        if isinstance(outcome, EvalResult):
            return outcome
        built = outcome.built
        walls = repeated(built.wall_s, o["repeats"], lambda i: self._time_build(sandbox, build, i, outcome.digest))
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

    def _time_build(self, sandbox: Sandbox, build: Job, repeat: int, digest: str) -> float | EvalResult:
        """One more timed build (a fresh working directory); a failure, or an artefact other than the
        checked one (``digest``), fails the candidate."""
        with sandbox.workdir() as build_dir:
            proc = sandbox.run(build, limits=Limits(timeout_s=self.options["build_timeout_s"]), workdir=build_dir)
            if not proc.ok:
                return EvalResult.failed(proc, f"build (repeat {repeat})")
            try:
                rebuilt = artefact_digest(artefact_files(build_dir, ARTEFACT_FILES))
            except ArtefactFileError:
                rebuilt = ""
        if rebuilt != digest:
            error = (f"timed-build-is-checked-build: build repeat {repeat} wrote another artefact than the checked "
                     "build; train_model must build the same model every time for its seed")
            return EvalResult(status="invalid", error=error, phases={f"build (repeat {repeat})": proc.summary()})
        return float(proc.wall_s)


TASK = SorterTask
