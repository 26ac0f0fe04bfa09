"""The sqlite index: a cache of the archive's candidates so queries never walk git.

Each row holds the candidate's flat fields (for SQL: sorting, filtering, ad-hoc queries with the
``sqlite3`` shell), its full ``metrics.json`` document and its source, so a :class:`Candidate` is
rebuilt from one row. Metrics live in their own table (``id, name, value``) because every task has
different ones. ``info`` records which archive and which checkpoint commit the index reflects; the
archive compares that with git on open and catches up. Deleting the file loses nothing.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from evolve.candidate import Candidate
from evolve.usage import KEYS, Usage

SCHEMA_VERSION = "1"

#: Candidate columns that can be sorted on besides the metrics.
FIXED_SORT_KEYS = ("id", "generation", "violation", "cost_usd", "prompt_tokens",
                   "completion_tokens", "wall_s", "created_at")

_SCHEMA = """
CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE candidates (
    id INTEGER PRIMARY KEY, sha TEXT NOT NULL UNIQUE, parents TEXT NOT NULL, status TEXT NOT NULL,
    feasible INTEGER NOT NULL, violation REAL, error TEXT, mutator TEXT, model TEXT,
    description TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, cost_usd REAL,
    generation INTEGER, island INTEGER, wall_s REAL, created_at REAL,
    record TEXT NOT NULL, source TEXT NOT NULL);
CREATE TABLE metrics (id INTEGER NOT NULL, name TEXT NOT NULL, value REAL, PRIMARY KEY (id, name));
CREATE INDEX metrics_by_name ON metrics (name, value);
CREATE TABLE front (id INTEGER PRIMARY KEY);
"""

_COLUMNS = ("id", "sha", "parents", "status", "feasible", "violation", "error", "mutator", "model",
            "description", "prompt_tokens", "completion_tokens", "cost_usd", "generation", "island",
            "wall_s", "created_at", "record", "source")


class Index:
    """One sqlite file. Writes are transactions; an interrupted one leaves the previous content."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError:  # not a database (e.g. overwritten by hand): it is only a cache
            for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                stale.unlink(missing_ok=True)
            self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        # Any thread may write (the archive's writer thread does), one at a time: the archive
        # waits for its writer before it reads.
        db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0, check_same_thread=False)
        try:
            # WAL + NORMAL: a killed process never corrupts the file (only power loss could drop the
            # last transaction, which the next open recovers from git anyway).
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")  # checked and created under the lock: opens may race
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            version = db.execute("SELECT value FROM info WHERE key='schema'").fetchone() \
                if "info" in tables else None
            if version != (SCHEMA_VERSION,):  # new file, or an older layout: start afresh
                for table in tables:
                    db.execute(f"DROP TABLE {table}")
                for statement in _SCHEMA.strip().split(";\n"):
                    db.execute(statement)
                db.execute("INSERT INTO info VALUES ('schema', ?)", (SCHEMA_VERSION,))
            db.execute("COMMIT")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def info(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM info WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    # --- writes -------------------------------------------------------------------------------
    def apply(self, candidates: list[Candidate], *, front: list[int], info: dict[str, str | None],
              expect_checkpoint: str | None = None, reset: bool = False) -> bool:
        """Upsert ``candidates``, replace the front and the ``info`` entries, in one transaction.

        With ``expect_checkpoint`` the write happens only if the index still reflects that
        checkpoint (another process may have caught it up meanwhile); returns whether it wrote.
        ``reset`` empties the index first.
        """
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if expect_checkpoint is not None and self.info("checkpoint") != expect_checkpoint:
                db.execute("ROLLBACK")
                return False
            if reset:
                for table in ("candidates", "metrics", "front"):
                    db.execute(f"DELETE FROM {table}")
                db.execute("DELETE FROM info WHERE key != 'schema'")
            db.executemany(f"INSERT OR REPLACE INTO candidates VALUES ({','.join('?' * len(_COLUMNS))})",
                           [_row(c) for c in candidates])
            db.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?)",
                           [(c.id, name, float(v)) for c in candidates for name, v in c.metrics.items()
                            if isinstance(v, (int, float))])
            db.execute("DELETE FROM front")
            db.executemany("INSERT INTO front VALUES (?)", [(i,) for i in front])
            db.executemany("INSERT OR REPLACE INTO info VALUES (?, ?)", info.items())
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return True

    # --- reads --------------------------------------------------------------------------------
    def count(self) -> int:
        count: int = self._db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
        return count

    def get(self, id: int) -> Candidate | None:
        found = self._select("WHERE id = ?", (id,))
        return found[0] if found else None

    def by_sha_prefix(self, prefix: str) -> list[Candidate]:
        return self._select("WHERE sha >= ? AND sha < ? ORDER BY id", (prefix, prefix + "g"))

    def shas(self) -> dict[int, str]:
        return dict(self._db.execute("SELECT id, sha FROM candidates"))

    def metric_names(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT name FROM metrics ORDER BY name")]

    def candidates(self, sort: str = "id", *, descending: bool = False, limit: int | None = None,
                   feasible_only: bool = False, front_only: bool = False) -> list[Candidate]:
        """Candidates ordered by ``sort`` (a metric name or one of :data:`FIXED_SORT_KEYS`; the
        caller validates it); missing values last, ties by id."""
        direction = "DESC" if descending else "ASC"
        conditions = ["c.feasible = 1"] * feasible_only + ["c.id IN (SELECT id FROM front)"] * front_only
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        if sort in FIXED_SORT_KEYS:
            join, key, params = "", f"c.{sort}", []
        else:
            join, key, params = "LEFT JOIN metrics m ON m.id = c.id AND m.name = ?", "m.value", [sort]
        query = (f"SELECT c.sha, c.record, c.source FROM candidates c {join} "
                 f"{where} ORDER BY ({key} IS NULL), {key} {direction}, c.id LIMIT ?")
        rows = self._db.execute(query, (*params, -1 if limit is None else limit))
        return [_candidate(row) for row in rows]

    def totals(self) -> dict[str, Any]:
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(feasible), 0), COALESCE(SUM(prompt_tokens), 0), "
            "COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cost_usd), 0.0), "
            "COALESCE(SUM(wall_s), 0.0), MAX(created_at) FROM candidates").fetchone()
        keys = ("evaluations", "feasible", "prompt_tokens", "completion_tokens", "cost_usd",
                "eval_wall_s", "last_created_at")
        totals = dict(zip(keys, row))
        totals["spent"] = Usage.from_dict({k: totals.pop(k) for k in KEYS})
        totals["statuses"] = dict(self._db.execute(
            "SELECT status, COUNT(*) FROM candidates GROUP BY status ORDER BY status"))
        return totals

    def _select(self, clause: str, params: tuple[Any, ...]) -> list[Candidate]:
        rows = self._db.execute(f"SELECT sha, record, source FROM candidates {clause}", params)
        return [_candidate(row) for row in rows]

    def close(self) -> None:
        self._db.close()


def _row(c: Candidate) -> tuple[Any, ...]:
    return (c.id, c.sha, json.dumps(list(c.parents)), c.status, int(c.feasible), c.violation,
            c.result.error, c.mutator, c.usage.model, c.description, c.usage.prompt_tokens,
            c.usage.completion_tokens, c.usage.cost_usd, c.generation, c.island, c.result.wall_s, c.created_at,
            json.dumps(c.document(), sort_keys=True), c.source)


def _candidate(row: tuple[str, str, str]) -> Candidate:
    sha, record, source = row
    return Candidate.from_document(json.loads(record), source=source, sha=sha)
