"""The evolution loop: strategy -> mutator -> sandbox/task -> archive, in batches, resumable.

Each batch: the strategy proposes one parent per evaluation slot, mutators write children
(concurrently, each with its own RNG derived from the run's RNG so thread timing never changes
results), the sandbox evaluates them (concurrently), and the archive commits the whole batch together
with the RNG and mutator state. A run killed at any moment resumes from its last committed batch and
continues the same sequence.

Agent strategies (``agent``, ``agent-cli``) replace the batch by an *iteration*: the strategy drives an
agent through :class:`_AgentHost`, which evaluates each attempt in the same sandbox and commits it
at once (one-record batch with the run state); a state-only checkpoint closes the iteration.
"""

from __future__ import annotations

import random
import secrets
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from evolve.agents.session import Attempt, Spend
from evolve.archive import Archive, CandidateRecord, RunMeta
from evolve.config import RunConfig, resolve_constraints, resolve_objectives
from evolve.evaluation import EvalResult, evaluate
from evolve.mutators import Mutation, MutationContext, Mutator, ProgramView, make_mutator
from evolve.sandbox import Limits, Sandbox
from evolve.strategies import AgentStrategy, Individual, Proposal, Strategy, make_strategy
from evolve.tasks import Constraint, Task, task_class

PROGRAM_NAME = "program.py"
HISTORY = 8
MAX_REJECTED_IN_A_ROW = 50


class RunError(RuntimeError):
    """The run cannot start or continue; the message is one line."""


@dataclass
class Counters:
    evaluations: int = 0
    rejected: int = 0
    rejected_in_a_row: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    wall_s: float = 0.0  # summed over sessions (resumes)
    batches: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class RunOutcome:
    stop_reason: str
    counters: Counters
    target_reached: int | None = None  # id of the first candidate meeting the target
    interrupted: bool = False


@dataclass
class _Slot:
    """One child being made: its proposal, the mutator chosen for it and its private RNG."""

    proposal: Proposal
    mutator: Mutator
    rng: random.Random
    mutation: Mutation | None = None
    result: EvalResult | None = None
    path: Path | None = None


@dataclass
class Known:
    """What the loop keeps in memory about an archived candidate."""

    id: int
    source: str
    result: EvalResult
    generation: int
    island: int | None
    mutator: str
    description: str = ""


ProgressFn = Callable[["EvolutionRun"], None]


class EvolutionRun:
    """One run, created or resumed from ``config``."""

    def __init__(self, config: RunConfig, *, resume: bool = False) -> None:
        self.config = config
        self.archive_dir = config.run_dir / "archive"
        self.scratch = config.run_dir / "scratch"
        exists = (self.archive_dir / ".git").exists()
        if exists and not resume:
            raise RunError(f"run {config.run.name!r} already exists in {config.run_dir}; "
                           "pass --resume to continue it or choose another run.name")
        self.fresh = not exists
        self.task = self._make_task()
        self.objectives = self.task.objectives
        self.targets: list[Constraint] = config.target_constraints()
        self.strategy: Strategy = make_strategy(config.strategy.name, self.objectives, config.strategy.params)
        if isinstance(self.strategy, AgentStrategy):
            self.strategy.preflight()  # e.g. the agent CLI is installed: fail before anything is written
        self.llm = _make_llm(config) if config.llm is not None else None
        try:
            if self.llm is not None:  # before the archive exists: a dead endpoint leaves nothing behind
                self.llm.check_reachable()
            self.mutators = [make_mutator(m.name, llm=self.llm, **m.params) for m in config.mutators]
        except BaseException:
            if self.llm is not None:
                self.llm.close()  # a local model server must not outlive a run that never started
            raise
        self.weights = [m.weight for m in config.mutators]
        self.rng = random.Random(config.run.seed)
        self.counters = Counters()
        self.known: dict[int, Known] = {}
        self.history: deque[str] = deque(maxlen=HISTORY)
        self.target_hit: int | None = None
        self.archive = self._open_archive()

    # --- set-up ------------------------------------------------------------------------------
    def _make_task(self) -> Task:
        options = dict(self.config.task.options)
        if self.fresh:
            hidden = secrets.randbits(62)
        else:
            with Archive.open(self.archive_dir) as archive:
                hidden = archive.meta.task_options.get("hidden_seed")
        task_cls = task_class(self.config.task.name)
        if "hidden_seed" in task_cls.default_options and options.get("hidden_seed") is None:
            options["hidden_seed"] = hidden
        self._hidden_seed = options.get("hidden_seed")
        task = task_cls(**options)
        task.objectives = resolve_objectives(self.config, task.objectives)  # type: ignore[misc]
        task.constraints = resolve_constraints(self.config, task.constraints)  # type: ignore[misc]
        return task

    def _open_archive(self) -> Archive:
        if self.fresh:
            meta = RunMeta.for_task(self.config.run.name, self.task, program_file=PROGRAM_NAME,
                                    config=self.config.to_yaml_dict())
            return Archive.create(self.archive_dir, meta)
        archive = Archive.open(self.archive_dir)
        if archive.meta.task != self.config.task.name:
            archive.close()
            raise RunError(f"run {self.config.run.name!r} was started for task {archive.meta.task!r}, "
                           f"not {self.config.task.name!r}")
        return archive

    def _restore(self) -> None:
        """Replay the archive into the strategy and restore RNG, counters and mutator state."""
        for cand in self.archive.candidates():
            self._remember(cand.id, cand.source, cand.result, cand.generation, cand.island, cand.mutator,
                           cand.description)
        state = self.archive.state() or {}
        if "rng" in state:
            self.rng.setstate(_rng_from_json(state["rng"]))
        self.counters = Counters(**state.get("counters", {}))
        for mutator, mstate in zip(self.mutators, state.get("mutators", [])):
            mutator.set_state(mstate)
        self.target_hit = state.get("target_hit")
        if isinstance(self.strategy, AgentStrategy):
            self.strategy.set_state(state.get("agent", {}))

    def _state(self) -> dict[str, Any]:
        state = {
            "rng": _rng_to_json(self.rng.getstate()),
            "counters": self.counters.__dict__,
            "mutators": [m.get_state() for m in self.mutators],
            "target_hit": self.target_hit,
        }
        if isinstance(self.strategy, AgentStrategy):
            state["agent"] = self.strategy.get_state()
        return state

    # --- the loop ----------------------------------------------------------------------------
    def execute(self, progress: ProgressFn | None = None) -> RunOutcome:
        limits = Limits()
        if self.config.sandbox.timeout_s is not None:
            limits = limits.with_(timeout_s=self.config.sandbox.timeout_s)
        if self.config.sandbox.memory_mb is not None:
            limits = limits.with_(memory_mb=self.config.sandbox.memory_mb)
        if self.config.sandbox.disk_mb is not None:
            limits = limits.with_(disk_mb=self.config.sandbox.disk_mb)
        self.scratch.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        base_wall = 0.0
        sandbox = Sandbox(mode=self.task.isolation, preload=self.task.preload, warmup=self.task.warmup,
                          limits=limits)
        interrupted = False
        try:
            if self.fresh:
                self._evaluate_seeds(sandbox)
            else:
                self._restore()
            base_wall = self.counters.wall_s
            step = self._agent_iteration if isinstance(self.strategy, AgentStrategy) else self._batch
            while (reason := self._stop_reason(base_wall, started)) is None:
                step(sandbox, base_wall, started)
                if progress:
                    progress(self)
        except KeyboardInterrupt:
            interrupted = True
            reason = "interrupted (resume with --resume)"
        finally:
            sandbox.close()
            self.archive.close()
            if self.llm is not None:
                self.llm.close()
        return RunOutcome(reason, self.counters, self.target_hit, interrupted)

    def _stop_reason(self, base_wall: float, started: float) -> str | None:
        b, c = self.config.budget, self.counters
        if self.target_hit is not None:
            return f"target reached by #{self.target_hit}"
        if b.max_evaluations is not None and c.evaluations >= b.max_evaluations:
            return f"evaluation budget spent ({c.evaluations})"
        if b.max_tokens is not None and c.tokens >= b.max_tokens:
            return f"token budget spent ({c.tokens})"
        if b.max_cost_usd is not None and c.cost_usd >= b.max_cost_usd:
            return f"cost budget spent (${c.cost_usd:.4f})"
        if b.max_wall_s is not None and base_wall + (time.monotonic() - started) >= b.max_wall_s:
            return f"wall-time budget spent ({b.max_wall_s:g} s)"
        if c.rejected_in_a_row >= MAX_REJECTED_IN_A_ROW:
            last = f" (last: {self.history[-1].split(': ', 1)[-1]})" if self.history else ""
            return f"{MAX_REJECTED_IN_A_ROW} mutations in a row were rejected before evaluation{last}"
        return None

    def _evaluate_seeds(self, sandbox: Sandbox) -> None:
        slots = []
        for path in self.config.seeds:
            source = path.read_text(encoding="utf-8")
            slots.append((source, Mutation(source=source, mutator="seed", description=f"seed {path.name}")))
        results = self._evaluate_all(sandbox, [s for s, _ in slots])
        records = [
            CandidateRecord(parents=(), source=source, result=result, mutator="seed", model=None,
                            description=mutation.description, generation=0, island=None)
            for (source, mutation), result in zip(slots, results)
        ]
        self._commit(records)

    def _batch(self, sandbox: Sandbox, base_wall: float, started: float) -> None:
        slots = []
        for _ in range(self._batch_size()):
            proposal = self.strategy.propose(self.rng)
            mutator = self.rng.choices(self.mutators, weights=self.weights)[0]
            slots.append(_Slot(proposal, mutator, random.Random(self.rng.getrandbits(64))))
        with ThreadPoolExecutor(self.config.parallel.llm_requests) as pool:
            for slot, mutation in zip(slots, pool.map(self._mutate, slots)):
                slot.mutation = mutation
        for slot in slots:
            m = slot.mutation
            assert m is not None
            self.counters.prompt_tokens += m.prompt_tokens
            self.counters.completion_tokens += m.completion_tokens
            self.counters.cost_usd += m.cost_usd
        accepted = [s for s in slots if s.mutation is not None and s.mutation.source is not None]
        for s in slots:
            if s not in accepted:
                self.counters.rejected += 1
                self.counters.rejected_in_a_row += 1
                self.history.append(f"rejected ({s.mutation.mutator}): {s.mutation.error}")
        if accepted:
            self.counters.rejected_in_a_row = 0
        results = self._evaluate_all(sandbox, [s.mutation.source for s in accepted])
        records = []
        for slot, result in zip(accepted, results):
            m = slot.mutation
            parent = self.known[slot.proposal.parents[0]]
            improved = self.strategy.ranker.better(_individual(-1, m.source, result, None, 0),
                                                   _individual(parent.id, parent.source, parent.result, None, 0))
            slot.mutator.feedback(m, improved)
            records.append(CandidateRecord(
                parents=slot.proposal.parents, source=m.source, result=result, mutator=m.mutator,
                model=m.model, description=m.description, prompt_tokens=m.prompt_tokens,
                completion_tokens=m.completion_tokens, cost_usd=m.cost_usd,
                generation=slot.proposal.generation, island=slot.proposal.island,
                extra={"inspirations": list(slot.proposal.inspirations)},
            ))
        self.counters.batches += 1
        self.counters.wall_s = base_wall + (time.monotonic() - started)
        self._commit(records)

    def _agent_iteration(self, sandbox: Sandbox, base_wall: float, started: float) -> None:
        """One agent iteration (attempts are committed as they happen), then a state-only checkpoint
        that saves what it decided: the current best, the notes."""
        assert isinstance(self.strategy, AgentStrategy)
        self.strategy.iterate(_AgentHost(self, sandbox, base_wall, started))
        self.counters.batches += 1
        self.counters.wall_s = base_wall + (time.monotonic() - started)
        self.archive.add_batch([], self._state())

    def _batch_size(self) -> int:
        n = self.config.parallel.evaluations
        if self.config.budget.max_evaluations is not None:
            n = min(n, self.config.budget.max_evaluations - self.counters.evaluations)
        return max(1, n)

    def _mutate(self, slot: _Slot) -> Mutation:
        parent = self.known[slot.proposal.parents[0]]
        ctx = MutationContext(
            parent=self._view(parent),
            inspirations=[self._view(self.known[i]) for i in slot.proposal.inspirations],
            objectives=self.objectives,
            constraints=self.task.constraints,
            task_description=self.task.description,
            history=list(self.history),
            rng=slot.rng,
        )
        try:
            return slot.mutator.mutate(ctx)
        except Exception as exc:  # a mutator failure (e.g. LLM retries exhausted) rejects this child only
            return Mutation(source=None, mutator=slot.mutator.name, description="", error=f"{type(exc).__name__}: {exc}")

    def _evaluate_all(self, sandbox: Sandbox, sources: list[str]) -> list[EvalResult]:
        paths = []
        for i, source in enumerate(sources):
            path = self.scratch / f"slot{i}" / PROGRAM_NAME
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(source, encoding="utf-8")
            paths.append(path)
        with ThreadPoolExecutor(self.config.parallel.evaluations) as pool:
            return list(pool.map(lambda p: evaluate(self.task, p, sandbox), paths))

    def _commit(self, records: list[CandidateRecord]) -> None:
        """Archive a batch together with the state that produced it (one atomic archive write)."""
        first = len(self.known)
        for i, record in enumerate(records):
            if self.target_hit is None and self._meets_target(record.result):
                self.target_hit = first + i
        self.counters.evaluations += len(records)
        stored = self.archive.add_batch(records, self._state())
        for i, cand in enumerate(stored):
            assert cand.id == first + i, "archive ids must be sequential"
            self._remember(cand.id, cand.source, cand.result, cand.generation, cand.island, cand.mutator,
                           cand.description)

    def _meets_target(self, result: EvalResult) -> bool:
        return bool(self.targets) and result.feasible and all(t.satisfied(result.metrics) for t in self.targets)

    def _remember(self, cid: int, source: str, result: EvalResult, generation: int, island: int | None,
                  mutator: str, description: str) -> None:
        self.known[cid] = Known(cid, source, result, generation, island, mutator, description)
        self.strategy.add(_individual(cid, source, result, island, generation))
        self.history.append(_history_line(cid, mutator, description, result, self.objectives))

    def _view(self, k: Known) -> ProgramView:
        r = k.result
        return ProgramView(id=k.id, source=k.source, metrics=r.metrics, status=r.status, feasible=r.feasible,
                           error=r.error, traceback=r.traceback)


class _AgentHost:
    """The run's side of an agent iteration (the :class:`evolve.agents.session.Host` protocol)."""

    def __init__(self, run: EvolutionRun, sandbox: Sandbox, base_wall: float, started: float) -> None:
        self._run, self._sandbox, self._base_wall, self._started = run, sandbox, base_wall, started
        task = run.task
        self.objectives, self.constraints = run.objectives, task.constraints
        self.task_description, self.task_name = task.description, task.name
        self.task_options = {k: v for k, v in task.options.items() if k != "hidden_seed"}
        self.program_name = PROGRAM_NAME
        self.archive_dir, self.scratch, self.run_dir = run.archive_dir, run.scratch, run.config.run_dir
        self.rng, self.llm = run.rng, run.llm

    @property
    def next_id(self) -> int:
        return len(self._run.known)

    def _elapsed(self) -> float:
        return self._base_wall + (time.monotonic() - self._started)

    def stop_reason(self) -> str | None:
        return self._run._stop_reason(self._base_wall, self._started)

    def wall_left(self) -> float | None:
        budget = self._run.config.budget.max_wall_s
        return None if budget is None else budget - self._elapsed()

    def charge(self, spend: Spend) -> None:
        c = self._run.counters
        c.prompt_tokens += spend.prompt_tokens
        c.completion_tokens += spend.completion_tokens
        c.cost_usd += spend.cost_usd

    def evaluate(self, source: str, *, parent: int, intent: str, mutator: str, spend: Spend,
                 extra: dict[str, Any]) -> Attempt:
        run = self._run
        [result] = run._evaluate_all(self._sandbox, [source])
        run.counters.rejected_in_a_row = 0
        run.counters.wall_s = self._elapsed()
        run._commit([CandidateRecord(
            parents=(parent,), source=source, result=result, mutator=mutator, model=spend.model,
            description=intent, prompt_tokens=spend.prompt_tokens, completion_tokens=spend.completion_tokens,
            cost_usd=spend.cost_usd, generation=run.known[parent].generation + 1, extra=extra)])
        return self.attempt(self.next_id - 1)

    def reject(self, reason: str) -> None:
        c = self._run.counters
        c.rejected += 1
        c.rejected_in_a_row += 1
        self._run.history.append(f"rejected: {reason}")

    def attempt(self, cid: int) -> Attempt:
        k = self._run.known[cid]
        return Attempt(k.id, k.source, k.result, k.generation)

    def commit_sha(self, cid: int) -> str:
        return self._run.archive.get(cid).sha

    def recent(self) -> list[str]:
        return list(self._run.history)


def _individual(cid: int, source: str, result: EvalResult, island: int | None, generation: int) -> Individual:
    return Individual(id=cid, metrics=result.metrics, feasible=result.feasible, violation=result.violation,
                      status=result.status, code_length=len(source), island=island, generation=generation)


def _history_line(cid: int, mutator: str, description: str, result: EvalResult, objectives: Any) -> str:
    figures = ", ".join(f"{o.name}={result.metrics[o.name]:g}" for o in objectives if o.name in result.metrics)
    verdict = "feasible" if result.feasible else (result.status if result.status != "ok" else "infeasible")
    return f"#{cid} {mutator}: {description} -> {verdict}{'; ' + figures if figures else ''}"


def _rng_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_json(data: list) -> tuple:
    version, internal, gauss = data
    return (version, tuple(internal), gauss)


def _make_llm(config: RunConfig) -> Any:
    from evolve.llm import client_from_config

    return client_from_config(config.llm, cache_dir=config.run_dir / "llm-cache", replay=config.llm.replay,
                              max_concurrency=config.parallel.llm_requests)
