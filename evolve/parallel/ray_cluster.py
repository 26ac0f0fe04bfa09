"""Evaluations on a Ray cluster: one evaluator actor per node; the archive, the strategy and the LLM
calls stay on the driver (the process running ``evolve run``).

**One actor per node, not one per slot.** Each node runs exactly this machine's evaluator
(:class:`~evolve.parallel.local.LocalEvaluator`: one :class:`~evolve.sandbox.Sandbox`, a scratch
folder per slot, the same :func:`evolve.evaluation.evaluate` call), so limits, containment and
measurement are a local run's by construction, and a node keeps one forkserver zygote per task (a
torch zygote holds ~213 MB; one per slot would multiply that). The actor's threads are its slots and
it claims one Ray CPU per slot, so two runs sharing a cluster never overcommit a node. The run's
``parallel.evaluations`` slots are dealt one at a time over the live nodes that declare CPUs (at most
one per CPU), so a 2-slot run on a 2-node cluster uses both nodes.

**The task on a node** is rebuilt from a :class:`TaskSpec`: a built-in task's name, or a task file's
text (only that one file travels, through Ray: it is written to the node's own folder and loaded
from there), plus the parsed options with the run's hidden seed, the objectives and the
constraints. Files the task reads (beside a task file, or path options such as microgpt's
``reference``) must exist at the same paths on every node, and so must evolve itself (the
driver's version).

**A node lost** (its actor's calls fail with a Ray actor error): every job it was running starts
again once on another node (``retried`` counts them; ``on_event`` logs ``evaluation.retry``), the
node is not used again by this evaluator, and a node that joined since takes its slots (else the
run goes on with fewer). A job lost a second time comes back as a ``crashed`` result naming both
losses, never dropped. With no node left, pending jobs fail with :class:`ClusterError` (the run
stops; ``--resume`` continues it).

**A node joining** is noticed while the run has fewer slots than it asked for (fewer CPUs than
``parallel.evaluations`` at the start, or nodes lost): then the dispatcher reads ``ray.nodes()``
about once per :data:`LOOK_EVERY_S` (a GCS call: 0.4 ms, 0.3 ms of CPU, on a head and 3 nodes; never
while every wanted slot is placed) and places actors on new nodes; a new actor is given jobs once it has
started (a node with no free CPU for it takes none). ``slots`` grows with it, which the steady
state reads when its next evaluation ends; a batch already queues all its jobs. ``on_event`` (the run
log's writer) gets ``ray.start`` (each node's slots), ``ray.node_joined`` and ``ray.node_lost``.

One dispatcher thread makes every Ray call after start-up (results arrive on Ray's callback thread
and are handed over), so the bookkeeping needs no lock. :meth:`RayEvaluator.close` never waits: it
asks each actor to close its sandbox and kills the actors from the dispatcher thread.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import shutil
import socket
import tempfile
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from evolve.config import RAY_CLIENT_REFUSED
from evolve.errors import UserError
from evolve.evaluation import EvalResult
from evolve.parallel.base import Evaluator
from evolve.parallel.local import PROGRAM_NAME, LocalEvaluator
from evolve.sandbox import Limits
from evolve.tasks import Constraint, Objective, Task, load_task_file, task_class

INSTALL = "pip install -e '.[ray]'"
#: How long the first actors may take to start (a worker process, importing evolve, building the task).
START_TIMEOUT_S = 120.0
#: After close, how long the actors get to close their sandboxes before they are killed.
STOP_GRACE_S = 10.0
#: While slots are missing and jobs wait, how often the dispatcher looks for nodes that joined.
LOOK_EVERY_S = 1.0

EventFn = Callable[..., None]


class ClusterError(UserError, RuntimeError):
    """The Ray cluster cannot be used (Ray missing, unreachable, no CPUs, every node lost); one line."""


def connect(address: str) -> bool:
    """Connect this process to the Ray cluster at ``address`` ("auto" or HOST:PORT) unless it already
    is; True when this call connected. A dead address fails in seconds (a TCP check first: Ray itself
    retries for minutes). A Ray Client address is refused (``RAY_ADDRESS`` too, which "auto" reads)."""
    if address == "auto" and os.environ.get("RAY_ADDRESS", "").startswith("ray://"):
        raise ClusterError(f"RAY_ADDRESS: {RAY_CLIENT_REFUSED}")
    try:
        import ray
    except ModuleNotFoundError:
        raise ClusterError(f"parallel.backend: ray needs Ray, which is not installed: {INSTALL}") from None
    if address != "auto":
        _check_reachable(address)
    if ray.is_initialized():  # e.g. a test's cluster, or the previous cell of `evolve compare`
        connected = str(ray.get_runtime_context().gcs_address)
        if address != "auto" and address.rpartition(":")[2] != connected.rpartition(":")[2]:
            raise ClusterError(f"parallel.address: this process is already connected to the Ray cluster at "
                               f"{connected!r}, not {address!r}")
        return False
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"parallel.address: cannot connect to a Ray cluster at {address!r}: "
                           f"{_first_line(exc)}") from None
    return True


def _check_reachable(address: str) -> None:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ClusterError(f"parallel.address: no Ray cluster answers at {address!r} ({reason}); "
                           "start one with `ray start --head` or fix the address") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class TaskSpec:
    """What a node needs to build the run's task exactly as the driver did."""

    name: str | None  # a built-in task ...
    file_name: str | None  # ... or a task file: its name and text
    file_text: str | None
    options: dict[str, Any]  # parsed, with the run's hidden seed
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...]

    @classmethod
    def of(cls, task: Task, ref: str) -> "TaskSpec":
        """The spec of ``task``, built from ``ref`` (a built-in task's name or a task file's path)."""
        is_file = ref.endswith(".py")
        path = Path(ref).expanduser()
        return cls(name=None if is_file else ref, file_name=path.name if is_file else None,
                   file_text=path.read_text(encoding="utf-8") if is_file else None, options=dict(task.options),
                   objectives=task.objectives, constraints=task.constraints)

    def build(self, folder: Path) -> Task:
        """The task, on this node (a task file is written into ``folder`` first)."""
        if self.file_text is not None:
            assert self.file_name is not None
            path = folder / self.file_name
            path.write_text(self.file_text, encoding="utf-8")
            cls = load_task_file(path)
        else:
            assert self.name is not None
            cls = task_class(self.name)
        return cls(objectives=self.objectives, constraints=self.constraints, **self.options)


class NodeEvaluator:
    """The actor on one node: this machine's :class:`LocalEvaluator` for the spec's task."""

    def __init__(self, spec: TaskSpec, slots: int, limits: Limits | None, program_name: str) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="evolve-node-"))
        self.local = LocalEvaluator(spec.build(self.folder), self.folder / "scratch", slots=slots, limits=limits,
                                    program_name=program_name)

    def node_id(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def evaluate(self, source: str) -> dict[str, Any]:
        return self.local.submit(source).result().to_dict()

    def stop(self) -> None:
        self.local.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@lru_cache(maxsize=1)
def _actor_class() -> Any:
    import ray

    remote: Any = ray.remote  # its overloads do not list the class options
    return remote(concurrency_groups={"control": 1})(NodeEvaluator)  # stop() never waits behind evaluations


def _lost_node_errors() -> tuple[type[BaseException], ...]:
    from ray import exceptions as rx

    return (rx.RayActorError, rx.WorkerCrashedError, rx.NodeDiedError, rx.ObjectLostError)


@dataclass(eq=False)
class _Job:
    source: str
    future: "Future[EvalResult]"
    lost: list[str] = field(default_factory=list)  # one line per node lost under it
    node: str | None = None  # where it runs now


@dataclass(eq=False)
class _Node:
    id: str
    actor: Any
    slots: int
    busy: int = 0
    ready: bool = False  # its actor has started: it may take jobs
    start_by: float = math.inf  # a mid-run actor not started by then counts as lost with its node

    @property
    def free(self) -> int:
        return self.slots - self.busy


class RayEvaluator(Evaluator):
    """Evaluates on the Ray cluster at ``address``: ``slots`` evaluations at once over its nodes."""

    def __init__(self, spec: TaskSpec, *, address: str = "auto", slots: int = 1, limits: Limits | None = None,
                 program_name: str = PROGRAM_NAME, on_event: EventFn | None = None,
                 start_timeout_s: float = START_TIMEOUT_S, join_timeout_s: float | None = None) -> None:
        """``start_timeout_s``: how long the first actors may take to start (else a ClusterError);
        ``join_timeout_s``: how long one started mid-run may take before its node counts as lost
        (default: the same)."""
        connect(address)
        import ray

        self._ray: Any = ray
        self.address, self.spec, self.limits, self.program_name = address, spec, limits, program_name
        self._wanted = max(1, slots)
        self._on_event: EventFn = on_event or (lambda event, **fields: None)
        self._events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._queue: deque[_Job] = deque()
        self._nodes: dict[str, _Node] = {}
        self._lost: set[str] = set()
        self._jobs: dict[Future[EvalResult], _Job] = {}
        self._closed = False
        self._looked = time.monotonic()  # when ray.nodes() was last read
        self._join_timeout_s = start_timeout_s if join_timeout_s is None else join_timeout_s
        #: Evaluations started again after a node was lost under them (each job at most once).
        self.retried = 0
        #: How many evaluations each node (Ray node id) finished.
        self.ran_on: Counter[str] = Counter()
        self._start(start_timeout_s)
        threading.Thread(target=self._dispatch_loop, name="evolve-ray-dispatch", daemon=True).start()

    def _start(self, timeout_s: float) -> None:
        placed = self._place()
        if not placed:
            raise ClusterError(f"the Ray cluster at {self.address!r} has no live node with a CPU to evaluate on")
        try:
            self._ray.get([node.actor.node_id.remote() for node in placed], timeout=timeout_s)
            for node in placed:
                node.ready = True
        except self._ray.exceptions.GetTimeoutError:
            self._kill_all()
            raise ClusterError(f"the evaluators on the Ray cluster at {self.address!r} did not start within "
                               f"{timeout_s:g} s (are its CPUs taken by another run?)") from None
        except self._ray.exceptions.RayError as exc:
            self._kill_all()
            raise ClusterError(f"an evaluator could not start on the Ray cluster at {self.address!r} "
                               f"(is evolve installed on every node?): {_first_line(exc)}") from None
        self._on_event("ray.start", address=self.address, slots=self.slots,
                       nodes={node.id: node.slots for node in placed})

    # --- the evaluator interface ---------------------------------------------------------------
    def submit(self, source: str) -> "Future[EvalResult]":
        if self._closed:
            raise RuntimeError("the evaluator is closed")
        future: Future[EvalResult] = Future()
        self._events.put(("submit", _Job(source, future)))
        return future

    def close(self) -> None:
        """Never waits: the dispatcher asks the actors to close their sandboxes, then kills them."""
        if not self._closed:
            self._closed = True
            self._events.put(("close", None))

    def node_of(self, future: "Future[EvalResult]") -> str | None:
        """The Ray node id where the job behind ``future`` runs now (None: queued or finished)."""
        job = self._jobs.get(future)
        return job.node if job is not None else None

    # --- the dispatcher thread ------------------------------------------------------------------
    def _dispatch_loop(self) -> None:
        while True:
            try:  # while slots are missing, wake up to look for new nodes
                kind, item = self._events.get(timeout=LOOK_EVERY_S if self._short() or self._starting() else None)
            except queue.Empty:
                kind, item = "look", None
            if kind == "close":
                self._stop_actors()
                return
            if self._closed:
                continue
            if kind == "submit":
                if item.future.set_running_or_notify_cancel():
                    self._jobs[item.future] = item
                    self._queue.append(item)
            elif kind == "ready":
                self._started(*item)
            elif kind == "done":
                self._finished(*item)
            self._dispatch()

    def _short(self) -> bool:
        return self.slots < self._wanted

    def _starting(self) -> bool:
        return any(not node.ready for node in self._nodes.values())

    def _dispatch(self) -> None:
        self._expire_starting()
        if self._short() and (not self._nodes or time.monotonic() - self._looked >= LOOK_EVERY_S):
            self._place_more()
        while self._queue:
            if not self._nodes:
                self._fail_queued()
                return
            node = max((n for n in self._nodes.values() if n.ready), key=lambda n: n.free, default=None)
            if node is None or node.free <= 0:
                return
            job = self._queue.popleft()
            node.busy += 1
            job.node = node.id
            ref = node.actor.evaluate.remote(job.source)
            ref.future().add_done_callback(lambda done, job=job, node=node: self._events.put(("done", (job, node, done))))

    def _finished(self, job: _Job, node: _Node, done: "Future[Any]") -> None:
        node.busy -= 1
        error = done.exception()
        if error is None:
            self.ran_on[node.id] += 1
            self._settle(job, EvalResult.from_dict(done.result()))
        elif isinstance(error, _lost_node_errors()):
            self._lose(node, error)
            job.lost.append(f"node {node.id[:12]} lost ({_first_line(error)})")
            if len(job.lost) > 1:
                self._settle(job, EvalResult(status="crashed", error="the evaluation was lost with its node twice: "
                                                                     + "; then ".join(job.lost)))
            else:
                self.retried += 1
                self._on_event("evaluation.retry", node=node.id, error=_first_line(error))
                job.node = None
                self._queue.appendleft(job)
        else:  # an exception inside the evaluation itself: the caller's, as locally
            self._jobs.pop(job.future, None)
            job.future.set_exception(error)

    def _started(self, node: _Node, done: "Future[Any]") -> None:
        """A mid-run actor answered: it takes jobs from now on, or its node counts as lost."""
        if self._nodes.get(node.id) is not node:
            return
        error = done.exception()
        if error is None:
            node.ready = True
            self._on_event("ray.node_joined", node=node.id, slots=node.slots)
        else:
            self._lose(node, error)

    def _expire_starting(self) -> None:
        """A mid-run actor not started after ``join_timeout_s`` (its node's CPUs taken by another
        run, say) counts as lost with its node: were it the last node, jobs would wait for ever."""
        now = time.monotonic()
        for node in [n for n in self._nodes.values() if not n.ready and n.start_by <= now]:
            self._lose(node, TimeoutError(f"its evaluator did not start within {self._join_timeout_s:g} s"))

    def _settle(self, job: _Job, result: EvalResult) -> None:
        self._jobs.pop(job.future, None)
        job.future.set_result(result)

    def _lose(self, node: _Node, error: BaseException) -> None:
        if node.id in self._lost:
            return
        self._lost.add(node.id)
        del self._nodes[node.id]
        self._on_event("ray.node_lost", node=node.id, error=_first_line(error))
        with _suppress_ray_errors(self._ray):  # its node may be gone already
            self._ray.kill(node.actor, no_restart=True)
        self._place_more()

    def _place(self) -> list[_Node]:
        """Start evaluator actors on live, unused nodes until the run's slots are dealt (one slot per
        node in turn, at most one per CPU the node declares)."""
        self._looked = time.monotonic()
        free = {n["NodeID"]: int(n.get("Resources", {}).get("CPU", 0)) for n in self._ray.nodes()
                if n.get("Alive") and n["NodeID"] not in self._nodes and n["NodeID"] not in self._lost}
        deal = _deal(self._wanted - sum(n.slots for n in self._nodes.values()), free)
        strategy = self._ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy
        placed = []
        for node_id, slots in deal.items():
            actor = _actor_class().options(num_cpus=slots, max_concurrency=slots,
                                           scheduling_strategy=strategy(node_id, soft=False)
                                           ).remote(self.spec, slots, self.limits, self.program_name)
            placed.append(node := _Node(node_id, actor, slots))
            self._nodes[node_id] = node
        self.slots = sum(n.slots for n in self._nodes.values())
        return placed

    def _place_more(self) -> None:
        """Mid-run placement: each new actor takes jobs once it answers (the dispatcher hears it)."""
        for node in self._place():
            node.start_by = time.monotonic() + self._join_timeout_s
            node.actor.node_id.remote().future().add_done_callback(
                lambda done, node=node: self._events.put(("ready", (node, done))))

    def _fail_queued(self) -> None:
        error = ClusterError(f"every node of the Ray cluster at {self.address!r} that evaluated for this run "
                             "was lost (resume with --resume once the cluster is back)")
        while self._queue:
            job = self._queue.popleft()
            self._jobs.pop(job.future, None)
            job.future.set_exception(error)

    def _stop_actors(self) -> None:
        stops = [node.actor.stop.options(concurrency_group="control").remote() for node in self._nodes.values()]
        with _suppress_ray_errors(self._ray):
            self._ray.wait(stops, num_returns=len(stops), timeout=STOP_GRACE_S)
        self._kill_all()

    def _kill_all(self) -> None:
        for node in self._nodes.values():
            with _suppress_ray_errors(self._ray):
                self._ray.kill(node.actor, no_restart=True)
        self._nodes.clear()


def _deal(slots: int, cpus: dict[str, int]) -> dict[str, int]:
    """``slots`` dealt one at a time over the nodes in turn, at most ``cpus[node]`` each."""
    deal: dict[str, int] = {}
    while slots > 0:
        open_nodes = [n for n, c in cpus.items() if deal.get(n, 0) < c]
        if not open_nodes:
            break
        for node in open_nodes[:slots]:
            deal[node] = deal.get(node, 0) + 1
            slots -= 1
    return deal


class _suppress_ray_errors:
    """Closing is best effort: a node that is already gone cannot be asked anything."""

    def __init__(self, ray: Any) -> None:
        self._errors = (ray.exceptions.RayError, ConnectionError, RuntimeError)

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> bool:
        return kind is not None and issubclass(kind, self._errors)
