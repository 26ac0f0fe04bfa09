"""The evolution loop: strategy -> mutator -> sandbox/task -> archive, in batches, resumable.

Each batch: the strategy proposes one parent per evaluation slot, mutators write children
(concurrently, each with its own RNG derived from the run's RNG so thread timing never changes
results), the sandbox evaluates them (concurrently), and the archive commits the whole batch together
with the RNG and mutator state. A run killed at any moment resumes from its last committed batch and
continues the same sequence. With ``parallel.mode: async`` the batch gives way to a steady state
(:mod:`evolve.parallel.scheduler`): children are written while others are evaluated, each is filed
with the run state as it finishes, and the budget is never overshot; a resumed run continues, but
not the same sequence (timing decides which results a proposal sees).

The loop knows no strategy type: it calls ``strategy.step(run)`` until a budget is spent. A
population strategy's step is :meth:`EvolutionRun.breed` (the batch above). An agent strategy's
step is an *iteration*: it drives an agent that files each attempt at once through
:meth:`EvolutionRun.evaluate` (a one-record batch with the run state), and a state-only
:meth:`EvolutionRun.checkpoint` closes it. The run's public methods are the whole host interface
(:class:`evolve.agents.session.Host`); nothing outside this module touches its counters.

One record, :class:`~evolve.candidate.Candidate`, carries a child from its evaluation to the
archive, the strategy, the mutators' context and the agents.

Surviving anything (measured by ``bench/chaos.py``): a run killed before its seeds were filed
evaluates them on resume; the prompts' history (rejections included) rides in the run state, so a
resumed run asks exactly what an uninterrupted one would; an LLM setup failure (key, model, a lost
endpoint, a replay miss) stops the run with :data:`EXIT_LLM`-worthy ``RunOutcome.failure`` instead of
rejecting every child, and the streak of rejections counts only mutators failing on good replies
(it restarts on resume). Ctrl-C cancels the LLM requests in flight and abandons running threads
(nothing of the batch is archived); a second Ctrl-C exits at once. Everything that happens on the
way goes to ``runs/<name>/run.log`` (:mod:`evolve.runlog`).
"""

from __future__ import annotations

import contextlib
import importlib
import random
import secrets
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NoReturn

from evolve.archive import Archive, RunMeta
from evolve.candidate import Candidate
from evolve.config import RunConfig, build_task
from evolve.config_changes import compare_configs
from evolve.errors import UserError
from evolve.evaluation import EvalResult
from evolve.llm.faults import LLMCancelled, LLMRunFailure, LLMUnreachable, RetriesExhausted
from evolve.mutators import Mutation, MutationContext, Mutator, make_mutator
from evolve.runlog import FILE_NAME as RUN_LOG, RunLog
from evolve.stopping import install_ctrl_c, parallel, restore_ctrl_c
from evolve.parallel import Evaluator, gather
from evolve.parallel.local import LocalEvaluator
from evolve.parallel.scheduler import SteadyState
from evolve.sandbox import Limits
from evolve.strategies import Proposal, Strategy, make_strategy
from evolve.tasks import Constraint, Objective, TaskFileError
from evolve.usage import Usage

PROGRAM_NAME = "program.py"
HISTORY = 8
MAX_REJECTED_IN_A_ROW = 50
#: What a user without an endpoint can do instead (appended to the one-line "unreachable" error).
NO_ENDPOINT_ALTERNATIVES = ("set EVOLVE_LLM_BASE_URL (and OPENAI_API_KEY) to an OpenAI-compatible endpoint, "
                            "use `llm: {provider: local}` for the offline model, or run a numeric-only "
                            "config such as configs/adder-repair.yaml")
#: Rejections that are the endpoint's fault, not the mutator's: they never feed the streak (the LLM
#: client stops the run when the endpoint itself fails) nor the prompts' history.
NOT_THE_MUTATORS = frozenset({"retries exhausted"})


class RunError(UserError, RuntimeError):
    """The run cannot start or continue; the message is one line."""


@dataclass
class Counters:
    evaluations: int = 0
    rejected: int = 0
    rejected_in_a_row: int = 0
    spent: Usage = Usage()  # every LLM token and dollar of the run (no model: runs mix them)
    wall_s: float = 0.0  # summed over sessions (resumes)
    batches: int = 0
    #: Evaluations started again after a cluster node was lost under them. Saved beside the counters,
    #: not among them: an older evolve builds its counters from that mapping and knows no such key.
    evaluations_retried: int = 0

    @property
    def tokens(self) -> int:
        return self.spent.tokens

    def to_state(self) -> dict[str, Any]:
        """The saved layout: flat keys, ``spent`` as its three figures (the layout of every run state
        ever written, so an older evolve resumes a newer state and the other way round)."""
        state: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            if name == "evaluations_retried":
                continue
            state.update(self.spent.to_dict() if name == "spent" else {name: getattr(self, name)})
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Counters":
        kept = {k: v for k, v in state.items() if k in cls.__dataclass_fields__ and k != "spent"}
        return cls(**kept, spent=Usage.from_dict(state))


@dataclass
class RunOutcome:
    stop_reason: str
    counters: Counters
    target_reached: int | None = None  # id of the first candidate meeting the target
    interrupted: bool = False
    failure: str | None = None  # an LLM setup failure stopped the run (resumable once it is fixed)


ProgressFn = Callable[["EvolutionRun"], None]
#: One child on its way: the proposal, the mutator that writes it and the child's own RNG.
ChildJob = tuple[Proposal, Mutator, random.Random]


class EvolutionRun:
    """One run, created or resumed from ``config``; during :meth:`execute` it is also the
    :class:`~evolve.agents.session.Host` every strategy's step talks to (public methods only)."""

    def __init__(self, config: RunConfig, *, resume: bool = False, force: bool = False) -> None:
        self.config = config
        self.archive_dir = config.run_dir / "archive"
        self.scratch = config.run_dir / "scratch"
        exists = (self.archive_dir / ".git").exists()
        if exists and not resume:
            raise RunError(f"run {config.run.name!r} already exists in {config.run_dir}; "
                           "pass --resume to continue it or choose another run.name")
        self.fresh = not exists
        #: What changed in the config since the run's last session (printed by the CLI).
        self.config_notes: list[str] = [] if self.fresh else self._check_config(force)
        self.log = RunLog(config.run_dir / RUN_LOG)
        self.task = build_task(config, self._hidden_seed())
        self.objectives = self.task.objectives
        self.targets: list[Constraint] = config.target_constraints()
        self.strategy: Strategy = make_strategy(config.strategy.name, self.objectives, config.strategy.params)
        self.strategy.preflight()  # e.g. the agent CLI is installed: fail before anything is written
        if config.parallel.backend == "ray":  # an unreachable cluster, too, leaves nothing behind
            from evolve.parallel.ray_cluster import connect

            connect(config.parallel.address)
        #: A new run with an LLM starts its seeds' evaluation before bringing the LLM up: the
        #: sandbox evaluates them in its own processes while this one loads the OpenAI SDK (~0.6-0.9
        #: s, the longest step of a run's start; P6 bench). A refused endpoint removes it all.
        self._early: _EarlySeeds | None = None
        if self.fresh and config.llm is not None and config.parallel.backend == "local":
            self._early = _EarlySeeds(self)
        self.llm = None
        try:
            self.llm = _make_llm(config, self.log) if config.llm is not None else None
            if self.llm is not None:  # before the archive exists: a dead endpoint leaves nothing behind
                try:
                    self.llm.check_reachable()
                except LLMUnreachable as exc:
                    raise type(exc)(f"{exc}; {NO_ENDPOINT_ALTERNATIVES}") from None
            self.mutators = [make_mutator(m.name, llm=self.llm, **m.params) for m in config.mutators]
        except BaseException:
            if self.llm is not None:
                self.llm.close()  # a local model server must not outlive a run that never started
            if self._early is not None:
                self._early.abandon()
            raise
        self.weights = [m.weight for m in config.mutators]
        self.rng = random.Random(config.run.seed)
        self.counters = Counters()
        self.known: dict[int, Candidate] = {}
        self.history: deque[str] = deque(maxlen=HISTORY)
        self.target_hit: int | None = None
        self._evaluator: Evaluator | None = None  # set while executing
        self._retried_seen = 0  # the evaluator's retries already in the counters
        self._progress: ProgressFn | None = None  # set while executing (the steady state reports each filing)
        self._started, self._base_wall = time.monotonic(), 0.0
        self.archive = self._open_archive()

    # --- set-up ------------------------------------------------------------------------------
    def _hidden_seed(self) -> int | None:
        """A fresh secret for a new run; the archived one on resume (the checker's cases stay put)."""
        if self.fresh:
            return secrets.randbits(62)
        with Archive.open(self.archive_dir) as archive:
            seed: int | None = archive.meta.task_options.get("hidden_seed")
            return seed

    def _check_config(self, force: bool) -> list[str]:
        """Compare with the config of the run's last session: budgets may change (said so), the
        experiment may not without ``force``."""
        with Archive.open(self.archive_dir) as archive:
            saved = (archive.state() or {}).get("config") or archive.meta.config
        changes = compare_configs(saved, self.config.to_yaml_dict())
        refusal = changes.refusal(self.config.run.name)
        if refusal is not None and not force:
            raise RunError(refusal)
        return changes.notes()

    def _open_archive(self) -> Archive:
        if self.fresh:
            meta = RunMeta.for_task(self.config.run.name, self.task, program_file=PROGRAM_NAME,
                                    config=self.config.to_yaml_dict())
            return Archive.create(self.archive_dir, meta)
        archive = Archive.open(self.archive_dir)
        if archive.meta.task != self.task.name:
            archive.close()
            raise RunError(f"run {self.config.run.name!r} was started for task {archive.meta.task!r}, "
                           f"not {self.task.name!r}")
        return archive

    def _restore(self) -> None:
        """Replay the archive into the strategy and restore RNG, counters and mutator state."""
        for cand in self.archive.candidates():
            self._remember(cand)
        state = self.archive.state() or {}
        if "rng" in state:
            self.rng.setstate(_rng_from_json(state["rng"]))
        self.counters = Counters.from_state(state.get("counters", {}))
        self.counters.evaluations_retried = state.get("evaluations_retried", 0)
        self.counters.rejected_in_a_row = 0  # a resumed run gets a fresh streak (e.g. a new model, the endpoint back)
        if isinstance(state.get("history"), list):  # the prompts' history, rejections included
            self.history = deque(state["history"], maxlen=HISTORY)
        for mutator, mstate in zip(self.mutators, state.get("mutators", [])):
            mutator.set_state(mstate)
        self.target_hit = state.get("target_hit")
        self.strategy.set_state(state.get("strategy", state.get("agent", {})))  # "agent": archives before 0.2

    def _state(self) -> dict[str, Any]:
        return {
            "rng": _rng_to_json(self.rng.getstate()),
            "counters": self.counters.to_state(),
            "evaluations_retried": self.counters.evaluations_retried,
            "mutators": [m.get_state() for m in self.mutators],
            "target_hit": self.target_hit,
            "strategy": self.strategy.get_state(),
            "history": list(self.history),
            "config": self.config.to_yaml_dict(),
        }

    # --- the loop ----------------------------------------------------------------------------
    def _limits(self) -> Limits:
        limits = Limits()
        if self.config.sandbox.timeout_s is not None:
            limits = limits.with_(timeout_s=self.config.sandbox.timeout_s)
        if self.config.sandbox.memory_mb is not None:
            limits = limits.with_(memory_mb=self.config.sandbox.memory_mb)
        if self.config.sandbox.disk_mb is not None:
            limits = limits.with_(disk_mb=self.config.sandbox.disk_mb)
        return limits

    def execute(self, progress: ProgressFn | None = None) -> RunOutcome:
        self.scratch.mkdir(parents=True, exist_ok=True)
        self._started = time.monotonic()
        self._progress = progress
        interrupted, failure, stopped_by = False, None, None
        previous = install_ctrl_c()
        try:
            # In the try: a cluster that fails to start closes the run.
            self._evaluator = self._early.evaluator if self._early is not None else self._make_evaluator(self._limits())
            if not self.fresh:
                self._restore()
            self.log.write("run.resume" if self.known else "run.start", candidates=len(self.known),
                           config_changes=self.config_notes)
            if not self.known:  # a new run, or one killed before its seeds were filed
                _import_behind("moocore")  # while the seeds are evaluated
                self._evaluate_seeds()
            elif self.config_notes:  # remember the config this session runs with (the next resume compares)
                self.archive.add_batch([], self._state())
            self._base_wall = self.counters.wall_s
            if progress:  # the seeds, or the resumed counters (a resumed bar starts at 12/30, not 0/30)
                progress(self)
            while (reason := self.stop_reason()) is None:
                self.strategy.step(self)
                if progress:
                    progress(self)
        except KeyboardInterrupt:
            if self.llm is not None:
                self.llm.cancel()  # requests still in flight are abandoned, never archived
            interrupted = True
            reason = "interrupted (resume with --resume)"
        except LLMRunFailure as exc:
            failure = str(exc)
            reason = f"LLM failure: {exc} (resume with --resume once it is fixed)"
        except UserError as exc:  # the task file raised, every cluster node was lost: one line, exit 2
            stopped_by, reason = exc, "error"
        finally:
            try:
                if self._evaluator is not None:
                    self._evaluator.close()
                self.archive.close()  # finishes the writes left behind; raises one that failed
            finally:
                if self.llm is not None:
                    self.llm.close()
                restore_ctrl_c(previous)  # last: a second Ctrl-C during the clean-up still exits at once
        if stopped_by is not None:
            self._stop_with(stopped_by)
        self.log.write("run.stop", reason=reason, evaluations=self.counters.evaluations,
                       rejected=self.counters.rejected, retried=self.counters.evaluations_retried,
                       tokens=self.counters.tokens, cost_usd=self.counters.spent.cost_usd)
        self.log.close()
        return RunOutcome(reason, self.counters, self.target_hit, interrupted, failure)

    def _stop_with(self, error: UserError) -> NoReturn:
        """Log why the run stopped (after the archive's writes left behind, which log too) and raise
        ``error``; what was filed stays filed, and ``--resume`` continues once the cause is fixed."""
        details = error.details if isinstance(error, TaskFileError) else None
        reason = "task file error" if details is not None else "error"
        self.log.write("run.stop", reason=reason, error=str(error), evaluations=self.counters.evaluations,
                       **({"traceback": details} if details is not None else {}))
        self.log.close()
        if isinstance(error, TaskFileError):  # the researcher's task raised: the traceback is in the log
            raise TaskFileError(f"{error} (traceback in {self.log.path}), then --resume", error.details) from None
        raise error

    def _evaluate_seeds(self) -> None:
        if self._early is not None:
            sources, results = self._early.sources, gather(self._early.futures)
        else:
            sources = self._seed_sources()
            results = self._evaluate_all([source for source, _ in sources])
        self._file([Candidate(source=source, result=result, mutator="seed", description=f"seed {name}")
                    for (source, name), result in zip(sources, results)], behind=True)

    def _seed_sources(self) -> list[tuple[str, str]]:
        return [(path.read_text(encoding="utf-8"), path.name) for path in self.config.seeds]

    def _batch_size(self) -> int:
        n = self.config.parallel.evaluations
        if self.config.budget.max_evaluations is not None:
            n = min(n, self.config.budget.max_evaluations - self.counters.evaluations)
        return max(1, n)

    def _mutate(self, proposal: Proposal, mutator: Mutator, rng: random.Random) -> Mutation:
        ctx = MutationContext(
            parent=self.known[proposal.parents[0]],
            inspirations=[self.known[i] for i in proposal.inspirations],
            objectives=self.objectives,
            constraints=self.task.constraints,
            task_description=self.task.description,
            history=list(self.history),
            rng=rng,
        )
        try:
            return mutator.mutate(ctx)
        except (LLMRunFailure, LLMCancelled):
            raise  # the run's failure, not this child's
        except RetriesExhausted as exc:
            return Mutation(source=None, mutator=mutator.name, error=str(exc), kind="retries exhausted")
        except Exception as exc:  # a mutator failure rejects this child only
            return Mutation(source=None, mutator=mutator.name, error=f"{type(exc).__name__}: {exc}", kind="mutator error")

    def _make_evaluator(self, limits: Limits) -> Evaluator:
        if self.config.parallel.backend == "ray":
            from evolve.parallel.ray_cluster import RayEvaluator, TaskSpec

            return RayEvaluator(TaskSpec.of(self.task, self.config.task.ref), address=self.config.parallel.address,
                                slots=self.config.parallel.evaluations, limits=limits, program_name=PROGRAM_NAME,
                                on_event=self.log.write)
        return LocalEvaluator(self.task, self.scratch, slots=self.config.parallel.evaluations, limits=limits,
                              program_name=PROGRAM_NAME)

    def _evaluate_all(self, sources: list[str]) -> list[EvalResult]:
        assert self._evaluator is not None, "evaluations happen inside execute()"
        return self._evaluator.evaluate_all(sources)

    def _file(self, records: list[Candidate], *, behind: bool = False) -> None:
        """Archive a batch together with the state that produced it (one atomic archive write).
        ``behind``: the archive's writer thread writes it while the run goes on (the loop of a
        population strategy; an agent's attempt is checked out of the archive, so it is written at once)."""
        first = len(self.known)
        if self._evaluator is not None:
            self.counters.evaluations_retried += self._evaluator.retried - self._retried_seen
            self._retried_seen = self._evaluator.retried
        for i, record in enumerate(records):
            if self.target_hit is None and self._meets_target(record.result):
                self.target_hit = first + i
        self.counters.evaluations += len(records)
        state = self._state()
        state["history"] = (list(self.history) + [_history_line(r, self.objectives, first + i)
                                                  for i, r in enumerate(records)])[-HISTORY:]
        # The state holds the history as it will be once they are filed; the run log says
        # "evaluation" once a candidate is in the archive (with ``behind``, a moment later).
        stored = self.archive.add_batch(records, state, behind=behind, written=self._log_filed)
        for i, cand in enumerate(stored):
            assert cand.id == first + i, "archive ids must be sequential"
            self._remember(cand)

    def _log_filed(self, stored: list[Candidate]) -> None:
        for cand in stored:
            self.log.write("evaluation", id=cand.id, parents=list(cand.parents), mutator=cand.mutator,
                           model=cand.usage.model, status=cand.result.status, feasible=cand.result.feasible,
                           metrics={o.name: cand.result.metrics.get(o.name) for o in self.objectives})

    def _meets_target(self, result: EvalResult) -> bool:
        return bool(self.targets) and result.feasible and all(t.satisfied(result.metrics) for t in self.targets)

    def _remember(self, cand: Candidate) -> None:
        self.known[cand.id] = cand
        self.strategy.add(cand)
        self.history.append(_history_line(cand, self.objectives))

    def _elapsed(self) -> float:
        return self._base_wall + (time.monotonic() - self._started)

    # --- the host: what a strategy's step may ask of the run ------------------------------------
    def breed(self, propose: Callable[[random.Random], Proposal]) -> None:
        """One batch: ``propose`` a parent per evaluation slot, mutate concurrently (each child with
        its own RNG drawn from the run's, so thread timing never changes results), evaluate, and
        archive the batch with the run state. With ``parallel.mode: async`` the step is the steady
        state instead (:mod:`evolve.parallel.scheduler`), until the run must stop."""
        if self.config.parallel.mode == "async":
            assert self._evaluator is not None, "breeding happens inside execute()"
            steady = SteadyState[ChildJob, Mutation](self._evaluator, mutations=self.config.parallel.llm_requests,
                                                     log=self.log.write)
            steady.run(_Breeding(self, propose))
            return
        slots = [self._draw_child(propose) for _ in range(self._batch_size())]
        mutations = parallel(lambda slot: self._mutate(*slot), slots, self.config.parallel.llm_requests)
        for m in mutations:
            self.charge(m.usage)
        accepted = [(slot, m) for slot, m in zip(slots, mutations) if m.source is not None]
        for m in mutations:
            if m.source is None:
                self._count_rejection(f"rejected ({m.mutator}): {m.error}", m.kind or "rejected", m.mutator)
        if accepted:
            self.counters.rejected_in_a_row = 0
        results = self._evaluate_all([m.source for _, m in accepted if m.source is not None])
        records = [self._child(slot, m, result) for (slot, m), result in zip(accepted, results)]
        self.counters.batches += 1
        self.counters.wall_s = self._elapsed()
        self._file(records, behind=True)

    def _draw_child(self, propose: Callable[[random.Random], Proposal]) -> ChildJob:
        """A parent, a mutator and the child's own RNG, drawn from the run's RNG in this order."""
        proposal = propose(self.rng)
        mutator = self.rng.choices(self.mutators, weights=self.weights)[0]
        return proposal, mutator, random.Random(self.rng.getrandbits(64))

    def _child(self, job: ChildJob, m: Mutation, result: EvalResult) -> Candidate:
        """The record of an evaluated child; its mutator hears whether it beat its parent."""
        proposal, mutator, _ = job
        assert m.source is not None
        child = Candidate(
            source=m.source, result=result, parents=proposal.parents, mutator=m.mutator, usage=m.usage,
            description=m.description, generation=proposal.generation, island=proposal.island,
            extra={"inspirations": list(proposal.inspirations)})
        mutator.feedback(m, self.strategy.ranker.better(child, self.known[proposal.parents[0]]))
        return child

    def checkpoint(self) -> None:
        """Close a step that filed its candidates as it went (an agent iteration): save the state."""
        self.counters.batches += 1
        self.counters.wall_s = self._elapsed()
        self.archive.add_batch([], self._state())

    def stop_reason(self) -> str | None:
        """Why the run must stop now (a budget spent, the target reached), else None."""
        b, c = self.config.budget, self.counters
        if self.target_hit is not None:
            return f"target reached by #{self.target_hit}"
        if b.max_evaluations is not None and c.evaluations >= b.max_evaluations:
            return f"evaluation budget spent ({c.evaluations})"
        if b.max_tokens is not None and c.tokens >= b.max_tokens:
            return f"token budget spent ({c.tokens})"
        if b.max_cost_usd is not None and c.spent.cost_usd >= b.max_cost_usd:
            return f"cost budget spent (${c.spent.cost_usd:.4f})"
        if b.max_wall_s is not None and self._elapsed() >= b.max_wall_s:
            return f"wall-time budget spent ({b.max_wall_s:g} s)"
        if c.rejected_in_a_row >= MAX_REJECTED_IN_A_ROW:
            last = f" (last: {self.history[-1].split(': ', 1)[-1]})" if self.history else ""
            return f"{MAX_REJECTED_IN_A_ROW} mutations in a row were rejected before evaluation{last}"
        return None

    def wall_left(self) -> float | None:
        """Seconds left in the wall-time budget (None: no such budget)."""
        budget = self.config.budget.max_wall_s
        return None if budget is None else budget - self._elapsed()

    def charge(self, spend: Usage) -> None:
        """Add tokens and dollars (a mutation's, an agent's turns) to the run's budgets."""
        self.counters.spent = self.counters.spent + spend.without_model()

    def evaluate(self, source: str, *, parent: int, intent: str, mutator: str, spend: Usage,
                 extra: dict[str, Any]) -> Candidate:
        """Evaluate ``source`` in the run's sandbox and file it at once, with the run state."""
        [result] = self._evaluate_all([source])
        self.counters.rejected_in_a_row = 0
        self.counters.wall_s = self._elapsed()
        self._file([Candidate(
            parents=(parent,), source=source, result=result, mutator=mutator, usage=spend,
            description=intent, generation=self.known[parent].generation + 1, extra=extra)])
        return self.known[self.next_id - 1]

    def reject(self, reason: str, kind: str = "no attempt") -> None:
        """Count an agent iteration that produced nothing to evaluate."""
        self._count_rejection(f"rejected: {reason}", kind, "agent")

    def _count_rejection(self, line: str, kind: str, mutator: str) -> None:
        """Count a child rejected before evaluation; only the mutator's own failures (on good replies)
        feed the streak and the prompts' history."""
        self.counters.rejected += 1
        self.log.write("rejection", kind=kind, mutator=mutator, reason=line.split(": ", 1)[-1])
        if kind in NOT_THE_MUTATORS:
            return
        self.counters.rejected_in_a_row += 1
        self.history.append(line)

    def candidate(self, cid: int) -> Candidate:
        return self.known[cid]

    def commit_sha(self, cid: int) -> str:
        """The candidate's commit, written (an agent checks it out of the archive)."""
        self.archive.flush()
        return self.known[cid].sha

    def recent(self) -> list[str]:
        """One-line summaries of the latest archived programs (and rejections), oldest first."""
        return list(self.history)

    @property
    def next_id(self) -> int:
        return len(self.known)

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        return self.task.constraints

    @property
    def task_name(self) -> str:
        return self.task.name

    @property
    def task_description(self) -> str:
        return self.task.description

    @property
    def task_options(self) -> dict[str, Any]:
        """What a user may pass to ``evolve eval`` (never the hidden seed)."""
        return {k: v for k, v in self.task.options.items() if k != "hidden_seed"}

    @property
    def program_name(self) -> str:
        return PROGRAM_NAME

    @property
    def run_dir(self) -> Path:
        return self.config.run_dir


class _EarlySeeds:
    """The seeds of a new run, submitted to its evaluator while the run is still being set up
    (see ``EvolutionRun._early``); :meth:`abandon` closes the evaluator and removes the folders it
    made, so a run that never starts leaves nothing behind."""

    def __init__(self, run: EvolutionRun) -> None:
        made = [d for d in (run.config.run.output_dir, run.config.run_dir, run.scratch) if not d.exists()]
        self.sources = run._seed_sources()
        run.scratch.mkdir(parents=True, exist_ok=True)
        self._made, self._scratch = made, run.scratch
        self._evaluator: Evaluator | None = None
        try:
            self._evaluator = run._make_evaluator(run._limits())
            self.futures = [self._evaluator.submit(source) for source, _ in self.sources]
        except BaseException:
            self.abandon()
            raise

    @property
    def evaluator(self) -> Evaluator:
        assert self._evaluator is not None, "made in __init__"
        return self._evaluator

    def abandon(self) -> None:
        if self._evaluator is not None:
            self._evaluator.close()
        for folder in reversed(self._made):  # scratch, then the run's folder, then the output folder
            if folder == self._scratch:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):  # only if empty
                    folder.rmdir()


class _Breeding:
    """The run as the steady state's :class:`~evolve.parallel.scheduler.Breeder`: the same draws,
    accounting and records as a batch, one child at a time."""

    def __init__(self, run: EvolutionRun, propose: Callable[[random.Random], Proposal]) -> None:
        self.run, self._propose = run, propose

    def stop_reason(self) -> str | None:
        return self.run.stop_reason()

    def room(self) -> int | None:
        budget = self.run.config.budget.max_evaluations
        return None if budget is None else budget - self.run.counters.evaluations

    def propose(self) -> ChildJob:
        return self.run._draw_child(self._propose)

    def mutate(self, job: ChildJob) -> Mutation:
        return self.run._mutate(*job)

    def mutated(self, job: ChildJob, m: Mutation) -> str | None:
        run = self.run
        run.charge(m.usage)
        if m.source is None:
            run._count_rejection(f"rejected ({m.mutator}): {m.error}", m.kind or "rejected", m.mutator)
        else:
            run.counters.rejected_in_a_row = 0
        return m.source

    def evaluated(self, job: ChildJob, m: Mutation, result: EvalResult) -> None:
        run = self.run
        record = run._child(job, m, result)
        run.counters.batches += 1  # a one-child batch
        run.counters.wall_s = run._elapsed()
        run._file([record], behind=True)
        if run._progress is not None:
            run._progress(run)


def _import_behind(module: str) -> None:
    """Import ``module`` on a daemon thread. The Pareto front's C code (moocore, with numpy) used to
    load at the first feasible child, on the scheduler's thread: 0.1-0.4 s of a P6 run (2 cores,
    shared). Loaded while the run waits for its seeds' evaluation, it costs nothing; a failed
    import is left for the first use to report."""
    def load() -> None:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)

    threading.Thread(target=load, name="evolve-import", daemon=True).start()


def _history_line(cand: Candidate, objectives: tuple[Objective, ...], cid: int | None = None) -> str:
    result = cand.result
    figures = ", ".join(f"{o.name}={result.metrics[o.name]:g}" for o in objectives if o.name in result.metrics)
    verdict = "feasible" if result.feasible else (result.status if result.status != "ok" else "infeasible")
    return f"#{cand.id if cid is None else cid} {cand.mutator}: {cand.description} -> {verdict}{'; ' + figures if figures else ''}"


def _rng_to_json(state: tuple[Any, ...]) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_json(data: list[Any]) -> tuple[Any, ...]:
    version, internal, gauss = data
    return (version, tuple(internal), gauss)


def _make_llm(config: RunConfig, log: RunLog) -> Any:
    from evolve.llm import client_from_config

    assert config.llm is not None
    return client_from_config(config.llm, cache_dir=config.run_dir / "llm-cache", replay=config.llm.replay,
                              max_concurrency=config.parallel.llm_requests, on_event=log.write)
