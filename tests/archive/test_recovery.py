"""The index is a cache of git, and refs a killed writer left half-moved are repaired."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess

import pytest
from archive_helpers import META, record

from evolve.archive import Archive, ArchiveError
from evolve.archive.archive import FRONT_BRANCH


def dump(index_path) -> dict[str, list[tuple]]:
    db = sqlite3.connect(index_path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: sorted(db.execute(f"SELECT * FROM {t}")) for t in sorted(tables)}
    finally:
        db.close()


def git(path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True,
                          text=True).stdout


def fill(archive: Archive) -> None:
    archive.add_batch([record(50, 30.0), record(40, 35.0, parents=(0,))], {"n": 1})
    archive.add_batch([record(status="crashed", parents=(1,)), record(30, 30.0, parents=(1, 0))], {"n": 2})
    archive.add_batch([record(45, 10.0, accuracy=0.2, parents=(3,))], {"n": 3})


def test_deleting_the_index_rebuilds_identical_rows(archive):
    fill(archive)
    before = dump(archive.index_path)
    assert len(before["candidates"]) == 5 and len(before["front"]) == 1
    archive.close()
    for path in archive.index_path.parent.glob("index.sqlite*"):
        path.unlink()
    with Archive.open(archive.path) as again:
        assert dump(again.index_path) == before
        assert again.reindex() == 5
        assert dump(again.index_path) == before
        assert again.state() == {"n": 3}


def test_an_index_behind_git_catches_up_on_open(archive, tmp_path):
    """A crash between the git commit and the index update leaves the index one batch behind."""
    archive.add_batch([record(50, 30.0)], {"n": 1})
    archive.close()
    shutil.copy(archive.index_path, tmp_path / "stale.sqlite")
    with Archive.open(archive.path) as a:
        a.add_batch([record(40, 30.0, parents=(0,)), record(60, 5.0)], {"n": 2})
        expected = dump(a.index_path)
    shutil.copy(tmp_path / "stale.sqlite", archive.index_path)
    assert len(dump(archive.index_path)["candidates"]) == 1
    with Archive.open(archive.path) as healed:
        assert dump(healed.index_path) == expected
        assert [c.id for c in healed.front()] == [1, 2]
        assert [c.id for c in healed.add_batch([record(parents=(2,))], {"n": 3})] == [3]


def test_an_unreadable_or_foreign_index_is_rebuilt(archive, tmp_path):
    fill(archive)
    expected = dump(archive.index_path)
    archive.close()
    archive.index_path.write_bytes(b"this is not a database" * 100)
    with Archive.open(archive.path) as a:
        assert dump(a.index_path) == expected
    # An index left by another archive at the same place (e.g. a deleted and recreated run).
    other = Archive.create(tmp_path / "other" / "archive", META)
    other.add_batch([record(1)], {})
    other.close()
    shutil.copy(other.index_path, archive.index_path)
    with Archive.open(archive.path) as a:
        assert dump(a.index_path) == expected


def test_half_moved_refs_and_stale_locks_are_repaired_by_the_next_writer(archive):
    fill(archive)
    front = archive.front()
    shas = {c.id: c.sha for c in archive.candidates()}
    archive.close()
    refs = archive.path / ".git" / "refs"
    # What a writer killed inside its ref transaction can leave: refs beyond the checkpoint, missing
    # refs, a front branch/front refs of the previous front, and ref lock files.
    git(archive.path, "update-ref", "refs/evolve/candidates/9", shas[2])
    git(archive.path, "update-ref", "-d", "refs/evolve/candidates/3")
    git(archive.path, "update-ref", "refs/front/0", shas[0])
    git(archive.path, "update-ref", "-d", f"refs/front/{front[0].id}")
    git(archive.path, "update-ref", FRONT_BRANCH, f"{FRONT_BRANCH}~1")
    (refs / "evolve" / "candidates" / "5.lock").write_text(shas[2])
    (refs / "evolve" / "state.lock").write_text(shas[2])
    with Archive.open(archive.path) as a:
        assert git(a.path, "rev-parse", "refs/evolve/candidates/9").strip() == shas[2]  # readers don't write
        new, = a.add_batch([record(20, 20.0, parents=(3,))], {"n": 4})
        assert new.id == 5
        listed = git(a.path, "for-each-ref", "--format=%(refname) %(objectname)",
                     "refs/evolve/candidates/", "refs/front/").splitlines()
        expected = {f"refs/evolve/candidates/{c.id} {c.sha}" for c in a.candidates()}
        expected |= {f"refs/front/{c.id} {c.sha}" for c in a.front()}
        assert set(listed) == expected
        assert [c.id for c in a.front()] == [5]
        front_json = git(a.path, "show", f"{FRONT_BRANCH}:front.json")
        assert '"id": 5' in front_json
    assert not list(refs.rglob("*.lock"))
    fsck = subprocess.run(["git", "-C", str(archive.path), "fsck", "--full"], capture_output=True,
                          text=True)
    assert fsck.returncode == 0, fsck.stderr


def test_one_writer_at_a_time_and_the_second_catches_up(archive):
    other = Archive.open(archive.path)
    try:
        archive.add_batch([record(50)], {"by": "first"})
        with pytest.raises(ArchiveError, match="being written by another process"):
            other.add_batch([record(40)], {"by": "second"})
        archive.close()
        added = other.add_batch([record(40, parents=(0,))], {"by": "second"})
        assert [c.id for c in added] == [1]
        assert other.state() == {"by": "second"} and len(other) == 2
    finally:
        other.close()


def test_a_writer_dropped_without_close_releases_the_lock(archive):
    first = Archive.open(archive.path)
    first.add_batch([record(50)], {})
    del first  # e.g. a finished run object nobody closed
    with Archive.open(archive.path) as second:
        assert [c.id for c in second.add_batch([record(40)], {})] == [1]
