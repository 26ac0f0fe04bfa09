"""Git plumbing for the archive: objects written in-process, refs moved in one transaction.

Objects are written as loose objects in-process (zlib, a temp file, a rename: no subprocess), so a
killed writer leaves either a whole object or none; four system calls an object where gitdb's
writer made ~10, and half its CPU (0.25 against 0.45 ms an object). Each call may wait for the GIL
behind the run's other threads: in the P6 bench a batch's 11 objects took 3 ms alone and up to 90 ms
in a run on a loaded machine. An :class:`ObjectBatch` names objects before
they are written (an object's id is the hash of its bytes), so the archive can build a whole batch
(its commits, their shas) at once and leave the writing to another thread. Reads go through GitPython's persistent
``git cat-file --batch`` process. Refs are only ever changed by ``git update-ref --stdin`` with one
start/prepare/commit transaction, and (once the archive exists) only by the writer-lock holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import os
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from collections.abc import Iterator

import git
from git.refs.symbolic import SymbolicReference

from evolve.archive.records import ArchiveError

_IDENTITY = b"evolve <evolve@localhost>"
_STALE_INDEX_LOCK_S = 60.0


@dataclass(frozen=True)
class CommitData:
    tree: str
    parents: tuple[str, ...]
    message: str


class ObjectWriter:
    """Git's object formats on top of :meth:`write` (one object in, its hex sha out)."""

    def write(self, kind: bytes, data: bytes) -> str:
        raise NotImplementedError

    def blob(self, data: bytes) -> str:
        return self.write(b"blob", data)

    def tree(self, files: dict[str, str]) -> str:
        """A flat tree of regular files, ``name -> blob sha``."""
        body = b"".join(b"100644 " + name.encode() + b"\0" + bytes.fromhex(files[name])
                        for name in sorted(files, key=str.encode))
        return self.write(b"tree", body)

    def commit(self, tree: str, parents: list[str], message: str, when: float) -> str:
        stamp = _IDENTITY + b" %d +0000" % int(when)
        lines = [b"tree " + tree.encode(), *(b"parent " + p.encode() for p in parents),
                 b"author " + stamp, b"committer " + stamp]
        return self.write(b"commit", b"\n".join(lines) + b"\n\n" + message.encode())


class ObjectBatch(ObjectWriter):
    """Objects named now and written later, in order, by :meth:`GitStore.write_batch`."""

    def __init__(self) -> None:
        self.objects: list[tuple[bytes, bytes, str]] = []  # kind, data, sha

    def write(self, kind: bytes, data: bytes) -> str:
        sha = object_id(kind, data)
        self.objects.append((kind, data, sha))
        return sha


class GitStore(ObjectWriter):
    """One git repository (non-bare: its work tree shows the best program, ``git checkout``
    works in it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.git_dir = path / ".git"
        self._repo = git.Repo(path)
        self._objects = self.git_dir / "objects"
        self._temp_names: Iterator[str] = (f"tmp_obj_evolve_{os.getpid()}_{i}" for i in itertools.count())  # git prune cleans tmp_obj_*
        self._lock: IO[bytes] | None = None  # a file object: dropping the store releases the lock
        self._refs: _RefSession | None = None  # the writer's git update-ref process

    @classmethod
    def init(cls, path: Path) -> "GitStore":
        """Create an empty repository at ``path`` (which must not exist yet or be empty)."""
        _git(None, "init", "--quiet", "--initial-branch=best", str(path))
        # Reflogs are not needed (every ref the archive moves has its own history) and a reflog
        # append is one more file a SIGKILL could cut short.
        _git(path / ".git", "config", "core.logAllRefUpdates", "false")
        return cls(path)

    # --- objects ------------------------------------------------------------------------------
    def write(self, kind: bytes, data: bytes) -> str:
        """Store one object; returns its hex sha."""
        sha = object_id(kind, data)
        self._write_loose(kind, data, sha)
        return sha

    def write_batch(self, batch: ObjectBatch) -> None:
        """Store the objects of ``batch``."""
        for kind, data, sha in batch.objects:
            self._write_loose(kind, data, sha)

    def _write_loose(self, kind: bytes, data: bytes, sha: str) -> None:
        """A loose object, whole or not at all: written aside, then renamed into place (over an
        existing copy, which has the same bytes)."""
        directory = self._objects / sha[:2]
        body = memoryview(zlib.compress(kind + b" %d\0" % len(data) + data, 1))  # git reads any level; 1 is fastest
        while True:
            temp = directory / next(self._temp_names)
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
                break
            except FileNotFoundError:
                directory.mkdir(exist_ok=True)
            except FileExistsError:  # left by a killed process that had our pid
                pass
        try:
            while body:
                body = body[os.write(fd, body):]
        finally:
            os.close(fd)
        os.rename(temp, directory / sha[2:])

    def read(self, sha: str) -> bytes:
        data: bytes = self._repo.odb.stream(bytes.fromhex(sha)).read()
        return data

    def read_commit(self, sha: str) -> CommitData:
        header, _, message = self.read(sha).partition(b"\n\n")
        tree, parents = "", []
        for line in header.split(b"\n"):
            key, _, value = line.partition(b" ")
            if key == b"tree":
                tree = value.decode()
            elif key == b"parent":
                parents.append(value.decode())
        return CommitData(tree, tuple(parents), message.decode())

    def read_tree(self, sha: str) -> dict[str, str]:
        """``name -> sha`` of a tree's entries."""
        data, entries, pos = self.read(sha), {}, 0
        while pos < len(data):
            nul = data.index(b"\0", pos)
            name = data[data.index(b" ", pos) + 1:nul].decode()
            entries[name] = data[nul + 1:nul + 21].hex()
            pos = nul + 21
        return entries

    def read_files(self, commit: str) -> dict[str, bytes]:
        """The contents of a commit's (flat) tree."""
        tree = self.read_tree(self.read_commit(commit).tree)
        return {name: self.read(sha) for name, sha in tree.items()}

    # --- refs ---------------------------------------------------------------------------------
    def ref(self, name: str) -> str | None:
        try:
            return SymbolicReference.dereference_recursive(self._repo, name)
        except ValueError:
            return None

    def refs(self, *prefixes: str) -> dict[str, str]:
        """``refname -> sha`` of every ref under the given prefixes."""
        out = _git(self.git_dir, "for-each-ref", "--format=%(objectname) %(refname)", *prefixes)
        return {name: sha for sha, name in (line.split(" ", 1) for line in out.splitlines())}

    def update_refs(self, commands: list[str]) -> None:
        """Apply ``update-ref --stdin`` commands (``create R new``, ``update R new old``,
        ``delete R old``) in one transaction: all of them or none."""
        script = "\n".join(["start", *commands, "prepare", "commit", ""])
        if self._lock is None:
            _git(self.git_dir, "update-ref", "--stdin", input=script)
            return
        if self._refs is None:
            self._refs = _RefSession(self.git_dir, self._lock.fileno())
        try:
            self._refs.apply(script)
        except ArchiveError:
            self._refs = None  # git left after the failed transaction; the next one starts another
            raise

    def git(self, *args: str, work_tree: bool = False) -> str:
        """Run a git command on this repository (in its work tree with ``work_tree``)."""
        return _git(self.git_dir, *args, work_tree=self.path if work_tree else None)

    # --- writer lock ----------------------------------------------------------------------------
    def try_lock(self, wait_s: float = 0.0) -> bool:
        """Take the exclusive writer lock, waiting up to ``wait_s``. It is released by
        :meth:`close`, when this store is garbage-collected, or when this process and any git
        child it started are gone."""
        if self.holds_lock:
            return True
        lock = open(self.git_dir / "evolve-writer.lock", "ab")
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    lock.close()
                    return False
                time.sleep(0.02)
        self._lock = lock
        return True

    @property
    def holds_lock(self) -> bool:
        return self._lock is not None

    def remove_stale_ref_locks(self) -> None:
        """Delete ``*.lock`` files a killed ``update-ref`` left behind (they block later updates).
        Only the writer-lock holder may call this: then no transaction of ours is in flight."""
        assert self.holds_lock, "remove_stale_ref_locks needs the writer lock"
        for lock in [*(self.git_dir / "refs").rglob("*.lock"), self.git_dir / "packed-refs.lock"]:
            lock.unlink(missing_ok=True)
        # A killed ``read-tree`` (carrying the best checkout along) leaves the index locked; a
        # user's own git command holds that lock for moments, not minutes.
        index_lock = self.git_dir / "index.lock"
        try:
            if time.time() - index_lock.stat().st_mtime > _STALE_INDEX_LOCK_S:
                index_lock.unlink(missing_ok=True)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        """Release the writer lock (if held) and git's helper processes."""
        if self._refs is not None:
            self._refs.close()  # before the lock: git holds it too
            self._refs = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        self._repo.close()


class _RefSession:
    """One ``git update-ref --stdin`` process running the writer's transactions one after another:
    a process per batch cost ~5 ms of fork, exec and git start-up, and up to 40 ms in a P6 run
    whose other threads kept the GIL from the one waiting for it. git inherits the writer lock:
    if we are killed, git may still finish the transaction it was given (it has the whole script),
    and no new writer may start (or clear "stale" ref locks) until it has."""

    def __init__(self, git_dir: Path, lock_fd: int) -> None:
        self._errors = tempfile.TemporaryFile()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # no caller's GIT_DIR
        read_end, write_end = os.pipe()
        try:
            self._proc = subprocess.Popen(["git", f"--git-dir={git_dir.absolute()}", "update-ref", "--stdin"],
                                          stdin=read_end, stdout=subprocess.PIPE, stderr=self._errors,
                                          env=env, pass_fds=(lock_fd,))
        finally:
            os.close(read_end)
        # Ours, not the Popen's (which outlives a dropped store, to be reaped): an archive dropped
        # without close closes it, git reads the end of its input and leaves, and the lock is free.
        self._script = os.fdopen(write_end, "wb", buffering=0)

    def apply(self, script: str) -> None:
        """Run one start ... prepare/commit transaction; git answers ``<command>: ok`` to each."""
        assert self._proc.stdout is not None
        try:
            self._script.write(script.encode())
            for _ in range(3):  # start, prepare, commit
                if not self._proc.stdout.readline().endswith(b": ok\n"):
                    raise BrokenPipeError
        except BrokenPipeError:  # git refused the transaction and left
            self.close()
            self._errors.seek(0)
            lines = self._errors.read().decode(errors="replace").strip().splitlines() or ["no output"]
            raise ArchiveError(f"git update-ref failed: {lines[-1]}") from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._script.close()
        self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def object_id(kind: bytes, data: bytes) -> str:
    """The sha git gives an object of this kind and content, without writing it."""
    return hashlib.sha1(kind + b" %d\0" % len(data) + data).hexdigest()


def blob_id(data: bytes) -> str:
    """The sha git gives a blob with this content, without writing it."""
    return object_id(b"blob", data)


def _git(git_dir: Path | None, *args: str, input: str | None = None,
         pass_fds: tuple[int, ...] = (), work_tree: Path | None = None) -> str:
    # Absolute: git runs in the work tree (cwd) for work-tree commands, where a relative path (the
    # default ``run.output_dir: runs``) named nothing and the ``best`` branch was never published.
    cmd = ["git", *([f"--git-dir={git_dir.absolute()}"] if git_dir else []),
           *([f"--work-tree={work_tree.absolute()}"] if work_tree else []), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # no caller's GIT_DIR
    proc = subprocess.run(cmd, input=input, capture_output=True, text=True, env=env,
                          pass_fds=pass_fds, cwd=work_tree)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        raise ArchiveError(f"git {args[0]} failed: {lines[-1]}")
    return proc.stdout
