"""The archive of one run: every evaluated candidate as a git commit, the Pareto front, an index.

Layout of ``runs/<run>/archive`` (a git repository) and its sibling ``runs/<run>/index.sqlite``:

- ``refs/evolve/meta``: root commit with ``meta.json`` (:class:`RunMeta`).
- ``refs/evolve/candidates/<id>``: one commit per evaluated candidate, parented on its parents'
  commits (seeds are root commits); tree = the program file + ``metrics.json``.
- ``refs/evolve/state``: the *checkpoint* chain. Each checkpoint commit holds ``state.json`` (the
  caller's resume state) and ``checkpoint.json`` (how many candidates exist, the ids/shas of the
  batch it added, the front). Its first parent is the previous checkpoint; its other parents are the
  batch's commits and the new front commit, so everything is reachable from this one ref.
- ``refs/evolve/front``: the front as a commit (its programs named by id + ``front.json``), each
  front commit parented on the previous one; ``refs/front/<id>``: one ref per front member.
- ``refs/evolve/best``: the best candidate so far (:func:`best_key`), so its history is the best
  program's lineage.
- The branches ``best`` (HEAD, checked out in the archive's work tree) and ``front`` are published
  from those two refs by :mod:`evolve.archive.branches`, never moved under a user's checkout. So
  plain ``git log`` in the archive is the lineage of the best program; checkpoints only show up with
  ``--all`` (hide them with ``git log --exclude=refs/evolve/state --all``).

Atomicity: a batch becomes part of the archive when ``refs/evolve/state`` moves, inside the single
``update-ref`` transaction that also moves every other ref. Git cannot promise that a SIGKILL in the
middle of that transaction's commit phase leaves all refs moved or none, so the checkpoint ref is the
truth and every other ref is derived: when a process becomes the writer (its first ``add_batch``, or
``reindex``), stale ref locks are removed and the derived refs are reset to what the checkpoint says.
The index is updated after git; on every open it catches up by walking the checkpoint chain.

Write-behind (``add_batch(..., behind=True)``, what a run uses): the batch is built on the caller's
thread (documents, commits and their shas: an object's id is the hash of its bytes) and its
candidates returned final, while :mod:`evolve.archive.writer`'s thread writes the objects, moves
the refs and updates the index, batch after batch in order. The guarantees above hold per batch;
what a kill adds to the loss is the batches still queued (at most :data:`~evolve.archive.writer.DEPTH`).
Every query waits for the queued writes first, and a failed write is raised by the next write,
query or :meth:`Archive.close`.

An ``Archive`` object is not thread-safe; one process at a time may write (an flock enforces it);
readers (``evolve show`` during a run) never write git and only ever catch the index up.
"""

from __future__ import annotations

import difflib
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from evolve.archive import branches, messages
from evolve.archive.branches import BEST_BRANCH, FRONT_BRANCH
from evolve.archive.index import FIXED_SORT_KEYS, Index
from evolve.pareto import non_dominated
from evolve.archive.records import ArchiveError, Checkpoint, RunMeta, Summary
from evolve.archive.store import GitStore, ObjectBatch, ObjectWriter, blob_id
from evolve.archive.writer import WriteBehind
from evolve.candidate import Candidate
from evolve.usage import Usage

META_REF = "refs/evolve/meta"
STATE_REF = "refs/evolve/state"
CANDIDATE_REFS = "refs/evolve/candidates/"
FRONT_REFS = "refs/front/"
FRONT_REF = "refs/evolve/front"
BEST_REF = "refs/evolve/best"
INDEX_NAME = "index.sqlite"
PUBLISH_INTERVAL_S = 5.0
_HEAL_CHUNK = 500  # candidates per index transaction while catching up
_LOCK_WAIT_S = 2.0


class Archive:
    """Open with :meth:`create` or :meth:`open`; close with :meth:`close` (or use ``with``)."""

    def __init__(self, store: GitStore, index: Index, meta: RunMeta, meta_sha: str) -> None:
        self.path = store.path
        self.meta = meta
        self._store, self._index, self._meta_sha = store, index, meta_sha
        self._shas: list[str] = []  # by id
        self._checkpoint = ""
        self._front: list[Candidate] = []
        self._front_commit: str | None = None
        self._best: Candidate | None = None
        self.unpublished: list[str] = []  # branches the last write left alone (checked out)
        #: Branches are published at most this often while batches stream in (each publish may
        #: cost a ``read-tree`` and an ``update-ref`` process), and always on close.
        self.publish_interval_s = PUBLISH_INTERVAL_S
        self._published_at, self._published_time = "", -math.inf
        self._writer = WriteBehind()
        self._closed = False

    # --- lifecycle ----------------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path | str, meta: RunMeta) -> "Archive":
        """Create the archive directory (atomically: built aside, then renamed into place)."""
        path = Path(path)
        if path.exists():
            raise ArchiveError(f"{path} already exists")
        if not meta.objectives:
            raise ArchiveError("run metadata needs at least one objective")
        created_at = meta.created_at or time.time()
        meta = replace(meta, created_at=created_at)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.creating-", dir=path.parent))
        try:
            store = GitStore.init(staging)
            meta_json = store.blob(_json_bytes(meta.to_dict(), "run metadata"))
            meta_sha = store.commit(store.tree({"meta.json": meta_json}), [],
                                    messages.meta_message(meta), created_at)
            checkpoint = _write_checkpoint(store, [meta_sha], _json_bytes({}, "state"), [], [], None,
                                           None, 0, created_at)
            store.update_refs([f"create {META_REF} {meta_sha}", f"create {STATE_REF} {checkpoint}"])
            store.close()
            staging.rename(path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return cls.open(path)

    @classmethod
    def open(cls, path: Path | str) -> "Archive":
        """Open an archive and bring its index up to date with git. Git is not written until the
        first :meth:`add_batch` (or :meth:`reindex`), so readers such as ``evolve show`` never
        change the repository."""
        path = Path(path)
        if not path.is_dir():
            raise ArchiveError(f"no archive at {path}: no such directory")
        if not (path / ".git").is_dir():
            raise ArchiveError(f"{path} is not an evolve archive (not a git repository)")
        store = GitStore(path)
        meta_sha = store.ref(META_REF)
        if meta_sha is None or store.ref(STATE_REF) is None:
            store.close()
            raise ArchiveError(f"{path} is not an evolve archive (no {META_REF})")
        meta = RunMeta.from_dict(json.loads(store.read_files(meta_sha)["meta.json"]))
        archive = cls(store, Index(path.parent / INDEX_NAME), meta, meta_sha)
        archive._heal_index()
        archive._load()
        return archive

    def close(self) -> None:
        """Finish the queued writes, publish the branches, release the files; raises a failed write."""
        if self._closed:
            return
        self._closed = True
        try:
            self._writer.flush()
            if self._store.holds_lock and self._published_at != self._checkpoint:
                self._publish()  # the branches catch up with the last batch
        finally:
            self._writer.close()
            self._index.close()
            self._store.close()

    def flush(self) -> None:
        """Wait for the batches still being written (``add_batch(..., behind=True)``)."""
        self._writer.flush()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def index_path(self) -> Path:
        return self._index.path

    # --- writing ------------------------------------------------------------------------------
    def add_batch(self, records: Sequence[Candidate], state: dict[str, Any], *, behind: bool = False,
                  written: Callable[[list[Candidate]], None] | None = None) -> list[Candidate]:
        """Archive ``records`` (unfiled candidates; ids assigned in order) and save ``state`` for resuming, all or
        nothing. A record's parents must be earlier ids (earlier in the batch is fine). With ``behind``
        the returned candidates are final but git and the index are written by the writer thread
        (see the module docstring); without it, once this returns. ``written`` is called with them
        once they are in the archive (on the writer thread with ``behind``)."""
        if behind:
            self._writer.check()  # nothing is built on a failed write
        else:
            self._writer.flush()
        self._become_writer()
        state_json = _json_bytes(state, "state")
        objects = ObjectBatch()
        added: list[Candidate] = []
        for record in records:
            added.append(self._write_candidate(objects, record, len(self._shas) + len(added), added))
        next_id = len(self._shas) + len(added)
        front = self._next_front(added)
        front_commit = self._front_commit
        if [c.id for c in front] != [c.id for c in self._front]:
            front_commit = self._write_front(objects, front, next_id - 1)
        best = min([c for c in [self._best, *added] if c is not None],
                   key=lambda c: best_key(c, self.meta), default=None)
        checkpoint = _write_checkpoint(
            objects, [self._checkpoint, *(c.sha for c in added)]
            + ([front_commit] if front_commit is not None and front_commit != self._front_commit else []),
            state_json, added, front, front_commit, best, next_id, time.time())
        commands = self._ref_commands(added, checkpoint, front, front_commit, best)
        previous = self._checkpoint
        self._shas += [c.sha for c in added]
        self._checkpoint, self._front, self._front_commit = checkpoint, front, front_commit
        self._best = best
        info = {"archive": self._meta_sha, "checkpoint": checkpoint, "front_commit": front_commit,
                "best": None if best is None else str(best.id)}

        def write() -> None:
            self._store.write_batch(objects)
            self._store.update_refs(commands)
            if not self._index.apply(added, front=[c.id for c in front], info=info,
                                     expect_checkpoint=previous):
                self._heal_index()  # the index was not where we left it (e.g. a failed earlier write)
            if time.monotonic() - self._published_time >= self.publish_interval_s:
                self._publish_at(checkpoint, best, front_commit)
            if written is not None:
                written(added)

        if behind:
            self._writer.submit(write)
        else:
            write()
        return added

    def _write_candidate(self, objects: ObjectWriter, record: Candidate, id: int,
                         batch: list[Candidate]) -> Candidate:
        parents = []
        for p in record.parents:
            if not (isinstance(p, int) and 0 <= p < id):
                raise ArchiveError(f"candidate #{id}: parent {p!r} is not an earlier candidate id")
            parents.append(self._shas[p] if p < len(self._shas) else batch[p - len(self._shas)].sha)
        draft = record.filed_as(id=id, sha="", created_at=time.time())
        document = _json_bytes(draft.document(), f"candidate #{id}")
        tree = objects.tree({self.meta.program_file: objects.blob(record.source.encode()),
                             "metrics.json": objects.blob(document)})
        sha = objects.commit(tree, list(dict.fromkeys(parents)), messages.candidate_message(draft),
                             draft.created_at)
        # Built from the stored bytes so it equals what a later open reads back.
        return Candidate.from_document(json.loads(document), source=record.source, sha=sha)

    def _next_front(self, added: list[Candidate]) -> list[Candidate]:
        """Non-dominated set of the old front plus the new feasible candidates (dominance is
        transitive, so nothing off the old front can return)."""
        pool = self._front + [c for c in added if eligible(c, self.meta)]
        points = [p for c in pool if (p := self.meta.point(c.metrics)) is not None]  # all: eligible
        return sorted((pool[i] for i in non_dominated(points)), key=lambda c: c.id)

    def _write_front(self, objects: ObjectWriter, front: list[Candidate], last_id: int) -> str:
        suffix = Path(self.meta.program_file).suffix
        document = {"objectives": [o.name for o in self.meta.objectives],
                    "candidates": [{"id": c.id, "sha": c.sha, "file": f"{c.id}{suffix}",
                                    "metrics": c.metrics, "mutator": c.mutator,
                                    "parents": list(c.parents), "generation": c.generation,
                                    "description": c.description} for c in front]}
        # Every source blob already exists: it was written with its candidate's commit.
        files = {f"{c.id}{suffix}": blob_id(c.source.encode()) for c in front}
        files["front.json"] = objects.blob(_json_bytes(document, "front"))
        old, new = {c.id for c in self._front}, {c.id for c in front}
        message = messages.front_message(front, new - old, old - new, last_id)
        parents = [self._front_commit] if self._front_commit else []
        return objects.commit(objects.tree(files), parents, message, time.time())

    def _ref_commands(self, added: list[Candidate], checkpoint: str, front: list[Candidate],
                      front_commit: str | None, best: Candidate | None) -> list[str]:
        commands = [f"create {CANDIDATE_REFS}{c.id} {c.sha}" for c in added]
        commands.append(f"update {STATE_REF} {checkpoint} {self._checkpoint}")
        old_best = self._best.sha if self._best is not None else "0" * 40
        if best is not None and best.sha != old_best:
            commands.append(f"update {BEST_REF} {best.sha} {old_best}")
        if front_commit != self._front_commit:
            commands.append(f"update {FRONT_REF} {front_commit} {self._front_commit or '0' * 40}")
            old, new = {c.id: c.sha for c in self._front}, {c.id: c.sha for c in front}
            commands += [f"delete {FRONT_REFS}{i} {old[i]}" for i in sorted(old.keys() - new.keys())]
            commands += [f"create {FRONT_REFS}{i} {new[i]}" for i in sorted(new.keys() - old.keys())]
        return commands

    def _become_writer(self) -> None:
        """Take the writer lock, then catch up with what a previous (possibly killed) writer left:
        batches added since we opened, half-moved refs, stale ref locks."""
        if not self._store.holds_lock:
            self._take_lock()
            self._sync()

    def _take_lock(self) -> None:
        # The short wait covers a git child of a killed writer finishing its ref transaction.
        if not self._store.try_lock(wait_s=_LOCK_WAIT_S):
            raise ArchiveError(f"{self.path} is being written by another process")

    def _sync(self) -> None:
        self._heal_index()
        self._load()
        self._repair_refs()
        self._publish()
        self._published_time = -math.inf  # the first batch of this writer shows up at once

    def _publish(self) -> None:
        """Move the user-facing branches to the archive's refs where no checkout forbids it."""
        self._publish_at(self._checkpoint, self._best, self._front_commit)

    def _publish_at(self, checkpoint: str, best: Candidate | None, front_commit: str | None) -> None:
        """Publish the branches as of ``checkpoint`` (the writer thread's batch, which may trail the
        batches built since)."""
        self.unpublished = branches.publish(self._store, {
            BEST_BRANCH: best.sha if best is not None else None, FRONT_BRANCH: front_commit})
        self._published_at, self._published_time = checkpoint, time.monotonic()

    # --- consistency --------------------------------------------------------------------------
    def _load(self) -> None:
        shas = self._index.shas()
        self._shas = [shas[i] for i in range(len(shas))]
        self._checkpoint = self._index.info("checkpoint") or ""
        self._front = self._index.candidates(front_only=True)
        self._front_commit = self._index.info("front_commit")
        best = self._index.info("best")
        self._best = self._index.get(int(best)) if best is not None else self._scan_best()

    def _scan_best(self) -> Candidate | None:
        """The best candidate of an archive written before ``best`` was recorded."""
        return min(self._index.candidates(), key=lambda c: best_key(c, self.meta), default=None)

    def _heal_index(self) -> None:
        """Catch the index up with the checkpoint chain (git is written first, so the index can
        only lag). Repeats if another process moved the index meanwhile."""
        while not self._catch_up():
            pass

    def _catch_up(self) -> bool:
        head = self._store.ref(STATE_REF)
        reset = self._index.info("archive") != self._meta_sha
        known = None if reset else self._index.info("checkpoint")
        chain, sha = [], head
        while sha not in (known, self._meta_sha):
            if sha is None:
                raise ArchiveError(f"{self.path}: the checkpoint chain is broken (no {STATE_REF})")
            commit = self._store.read_commit(sha)
            document = self._store.read(self._store.read_tree(commit.tree)["checkpoint.json"])
            chain.append((sha, json.loads(document)))
            sha = commit.parents[0]
        reset = reset or sha != known  # walked to the root without meeting the index's checkpoint
        expect, pending = (None if reset else known), []
        for i, (sha, checkpoint) in enumerate(reversed(chain)):
            pending += [self._read_candidate(c_id, c_sha) for c_id, c_sha in checkpoint["batch"]]
            if len(pending) < _HEAL_CHUNK and i + 1 < len(chain):
                continue
            best = checkpoint.get("best")
            info = {"archive": self._meta_sha, "checkpoint": sha,
                    "front_commit": checkpoint["front_commit"],
                    "best": None if best is None else str(best[0])}
            if not self._index.apply(pending, front=checkpoint["front"], info=info,
                                     expect_checkpoint=expect, reset=reset):
                return False
            expect, reset, pending = sha, False, []
        return True

    def _read_candidate(self, id: int, sha: str) -> Candidate:
        files = self._store.read_files(sha)
        candidate = Candidate.from_document(json.loads(files["metrics.json"]), sha=sha,
                                            source=files[self.meta.program_file].decode())
        if candidate.id != id:
            raise ArchiveError(f"{self.path}: commit {sha[:10]} holds #{candidate.id}, expected #{id}")
        return candidate

    def _repair_refs(self) -> None:
        """Make every derived ref agree with the loaded checkpoint; needs the writer lock."""
        self._store.remove_stale_ref_locks()
        expected = {f"{CANDIDATE_REFS}{i}": sha for i, sha in enumerate(self._shas)}
        expected.update({f"{FRONT_REFS}{c.id}": c.sha for c in self._front})
        if self._front_commit:
            expected[FRONT_REF] = self._front_commit
        if self._best is not None:
            expected[BEST_REF] = self._best.sha
        actual = self._store.refs(CANDIDATE_REFS, FRONT_REFS, FRONT_REF, BEST_REF)
        commands = [f"update {ref} {sha}" for ref, sha in expected.items() if actual.get(ref) != sha]
        commands += [f"delete {ref}" for ref in sorted(actual.keys() - expected.keys())]
        if commands:
            self._store.update_refs(commands)

    def reindex(self) -> int:
        """Rebuild the index from git alone (and repair derived refs); returns the candidate count.
        Takes the writer lock, so it fails while a run is writing."""
        self._writer.flush()
        self._take_lock()
        self._index.apply([], front=[], info={}, reset=True)
        self._sync()
        return len(self)

    # --- queries ------------------------------------------------------------------------------
    def __len__(self) -> int:
        self._writer.flush()
        return self._index.count()

    def state(self) -> dict[str, Any]:
        """The state saved with the last batch (``{}`` before the first)."""
        self._writer.flush()
        state: dict[str, Any] = json.loads(self._store.read_files(self._checkpoint)["state.json"])
        return state

    def checkpoints(self) -> list[Checkpoint]:
        """Every committed batch, oldest first, with the state saved alongside it. Read-only;
        reports use it to plot what a run had spent (evaluations, tokens, time) batch by batch."""
        self._writer.flush()
        found, sha = [], self._checkpoint
        while sha and sha != self._meta_sha:
            commit = self._store.read_commit(sha)
            files = self._store.read_tree(commit.tree)
            document = json.loads(self._store.read(files["checkpoint.json"]))
            found.append(Checkpoint(next_id=document["next_id"],
                                    state=json.loads(self._store.read(files["state.json"]))))
            sha = commit.parents[0]
        return found[::-1]

    def get(self, key: int | str) -> Candidate:
        """A candidate by id (``42``, ``"42"``, ``"#42"``) or by a sha prefix (4+ hex digits). A
        decimal string is an id first; failing that (or with a leading zero) a sha prefix."""
        self._writer.flush()
        text = str(key).strip().lstrip("#")
        if text.isdigit() and (text == "0" or text[0] != "0"):
            found = self._index.get(int(text))
            if found is not None:
                return found
            if isinstance(key, int) or len(text) < 4:
                raise ArchiveError(f"no candidate #{text} (the archive holds {len(self)})")
        prefix = text.lower()
        if len(prefix) < 4 or any(ch not in "0123456789abcdef" for ch in prefix):
            raise ArchiveError(f"no candidate {key!r}: give an id or a sha prefix of 4+ hex digits")
        matches = self._index.by_sha_prefix(prefix)
        if len(matches) != 1:
            why = "no candidate has" if not matches else f"{len(matches)} candidates have"
            raise ArchiveError(f"{why} a sha starting with {prefix!r}")
        return matches[0]

    def candidates(self, sort: str | None = None, *, limit: int | None = None,
                   descending: bool | None = None, feasible_only: bool = False) -> list[Candidate]:
        """Candidates by id, or sorted by a metric or a column (:func:`sort_keys`). The default
        direction puts the best first: objectives by their goal, ``>=`` constraint metrics high
        first, everything else ascending. Missing values sort last."""
        return self._query(sort, limit, descending, feasible_only=feasible_only)

    def front(self, sort: str | None = None, *, limit: int | None = None,
              descending: bool | None = None) -> list[Candidate]:
        """The current Pareto front (feasible, non-dominated), by id or sorted like
        :meth:`candidates`."""
        return self._query(sort, limit, descending, front_only=True)

    def _query(self, sort: str | None, limit: int | None, descending: bool | None,
               **only: bool) -> list[Candidate]:
        self._writer.flush()
        key = sort or "id"
        if key not in self.sort_keys():
            raise ArchiveError(f"unknown sort key {key!r} (known: {', '.join(self.sort_keys())})")
        if descending is None:
            descending = self._best_is_high(key)
        return self._index.candidates(key, descending=descending, limit=limit, **only)

    def sort_keys(self) -> list[str]:
        self._writer.flush()
        declared = [o.name for o in self.meta.objectives] + [c.metric for c in self.meta.constraints]
        return list(dict.fromkeys([*declared, *self._index.metric_names(), *FIXED_SORT_KEYS]))

    def _best_is_high(self, key: str) -> bool:
        for o in self.meta.objectives:
            if o.name == key:
                return o.goal == "max"
        return any(c.metric == key and c.op == ">=" for c in self.meta.constraints)

    def best(self) -> Candidate | None:
        """The best candidate so far (:func:`best_key`): the head of the ``best`` branch."""
        return self._best

    def lineage(self, key: int | str) -> list[Candidate]:
        """The candidate, its first parent, that one's first parent … down to a seed."""
        chain = [self.get(key)]
        while chain[-1].parents:
            chain.append(self.get(chain[-1].parents[0]))
        return chain

    def diff(self, key: int | str, other: int | str | None = None) -> str:
        """Unified diff from ``other`` (default: the first parent; a seed diffs against nothing)."""
        new = self.get(key)
        old: Candidate | None
        if other is not None:
            old = self.get(other)
        else:
            old = self.get(new.parents[0]) if new.parents else None
        name = self.meta.program_file
        return "".join(difflib.unified_diff(
            _lines(old.source if old else ""), _lines(new.source),
            f"#{old.id}/{name}" if old else "/dev/null", f"#{new.id}/{name}"))

    def diff_seed(self, key: int | str) -> str:
        """Unified diff from the seed at the root of the candidate's lineage."""
        return self.diff(key, self.lineage(key)[-1].id)

    def summary(self) -> Summary:
        """Run-level figures. Spend comes from the run's saved counters, which also hold what no
        candidate carries (rejected mutations, agent turns): summing candidates missed 5-48 % of it."""
        self._writer.flush()
        totals = self._index.totals()
        on_candidates = totals["spent"]
        totals.update(_run_spend(self.state() or {}), on_candidates=on_candidates)
        best: dict[str, dict[str, float] | None] = {}
        for o in self.meta.objectives:
            top = self._index.candidates(o.name, descending=o.goal == "max", limit=1,
                                         feasible_only=True)
            value = top[0].metrics.get(o.name) if top else None
            best[o.name] = {"id": top[0].id, "value": value} if value is not None else None
        last = totals.pop("last_created_at")
        return Summary(run=self.meta.run, task=self.meta.task, front_size=len(self.front()),
                       best=best, elapsed_s=(last - self.meta.created_at) if last else 0.0,
                       **totals)


def best_key(c: Candidate, meta: RunMeta) -> tuple[int, float, int]:
    """Order of "best so far": a feasible candidate by the first objective, otherwise the least
    constraint violation (so a run has a best, and a lineage to read, before anything is feasible);
    earlier ids win ties."""
    first = meta.objectives[0]
    value = c.metrics.get(first.name)
    if c.result.ok and c.feasible and isinstance(value, (int, float)) and not math.isnan(value):
        return (0, first.oriented(float(value)), c.id)
    return (1, c.violation if c.result.ok else math.inf, c.id)


def _run_spend(state: dict[str, Any]) -> dict[str, Any]:
    """Token and cost totals, and rejections, from the run's counters (when saved)."""
    counters = state.get("counters")
    if not isinstance(counters, dict) or "prompt_tokens" not in counters:
        return {}
    return {"spent": Usage.from_dict(counters), "rejected": int(counters.get("rejected", 0))}


def eligible(c: Candidate, meta: RunMeta) -> bool:
    """May ``c`` be on the front: evaluated, feasible, and every objective present."""
    return c.result.ok and c.feasible and meta.point(c.metrics) is not None


def _write_checkpoint(store: ObjectWriter, parents: list[str], state_json: bytes,
                      added: list[Candidate], front: list[Candidate], front_commit: str | None,
                      best: Candidate | None, next_id: int, when: float) -> str:
    document = {"next_id": next_id, "batch": [[c.id, c.sha] for c in added],
                "front": [c.id for c in front], "front_commit": front_commit,
                "best": None if best is None else [best.id, best.sha]}
    tree = store.tree({"state.json": store.blob(state_json),
                       "checkpoint.json": store.blob(_json_bytes(document, "checkpoint"))})
    return store.commit(tree, parents, messages.checkpoint_message(added, next_id), when)


def _json_bytes(value: Any, what: str) -> bytes:
    try:
        return json.dumps(value, indent=2).encode()
    except (TypeError, ValueError) as exc:
        raise ArchiveError(f"{what} is not JSON-serialisable: {exc}") from None


def _lines(text: str) -> list[str]:
    """Lines for difflib, each ending in a newline (a missing final newline is not shown)."""
    return [line if line.endswith("\n") else line + "\n" for line in text.splitlines(keepends=True)]
