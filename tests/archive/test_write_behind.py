"""Write-behind: batches built on the caller's thread, written in order by the archive's writer thread."""

from __future__ import annotations

import subprocess

import pytest
from archive_helpers import META, record

from evolve.archive import Archive, ArchiveError
from evolve.archive.archive import STATE_REF


def git(path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True, text=True).stdout


def test_batches_written_behind_are_final_at_once_and_every_query_sees_them(archive):
    added = [archive.add_batch([record(50 - i, parents=(i - 1,) if i else ())], {"n": i}, behind=True)[0]
             for i in range(6)]
    assert [c.id for c in added] == list(range(6))
    assert len(archive) == 6 and archive.state() == {"n": 5}  # queries wait for the writer
    assert [archive.get(c.id) for c in added] == added  # the shas given out are the commits written
    assert git(archive.path, "rev-parse", "refs/evolve/candidates/5").strip() == added[5].sha
    archive.close()
    assert git(archive.path, "fsck", "--full") == "" and git(archive.path, "status", "--porcelain") == ""
    with Archive.open(archive.path) as again:
        assert again.candidates() == added and again.best() == added[5]


def test_a_failed_write_is_raised_by_the_next_write_query_and_close_and_nothing_after_it_lands(archive):
    archive.add_batch([record(50)], {"n": 0})
    first_checkpoint = git(archive.path, "rev-parse", STATE_REF).strip()
    # Rule: each batch's ref transaction expects the refs the previous one left. Another process
    # moved the state ref, so the writer thread's transaction fails.
    git(archive.path, "update-ref", STATE_REF, git(archive.path, "rev-parse", f"{STATE_REF}~1").strip())
    archive.add_batch([record(40, parents=(0,))], {"n": 1}, behind=True)  # handed over: no error yet
    with pytest.raises(ArchiveError, match="git update-ref failed"):
        archive.flush()
    with pytest.raises(ArchiveError, match="git update-ref failed"):  # nothing is built on it
        archive.add_batch([record(30, parents=(1,))], {"n": 2}, behind=True)
    with pytest.raises(ArchiveError, match="git update-ref failed"):
        archive.state()
    with pytest.raises(ArchiveError, match="git update-ref failed"):
        archive.close()
    for cid in (1, 2):
        assert subprocess.run(["git", "-C", str(archive.path), "rev-parse", "--verify", "-q",
                               f"refs/evolve/candidates/{cid}"], capture_output=True).returncode != 0
    git(archive.path, "update-ref", STATE_REF, first_checkpoint)  # put back: the archive is whole again
    with Archive.open(archive.path) as again:  # close released the writer lock
        assert [c.id for c in again.add_batch([record(45, parents=(0,))], {"n": 1})] == [1]


def test_a_relative_archive_path_publishes_the_best_branch(tmp_path, monkeypatch):
    # Rule: git runs in the work tree for the checkout it carries along, so the repository is named
    # by an absolute path (``run.output_dir: runs`` is relative; the branch was never published).
    monkeypatch.chdir(tmp_path)
    with Archive.create("runs/x/archive", META) as archive:
        archive.add_batch([record(50)], {})
        best, = archive.add_batch([record(40, parents=(0,))], {}, behind=True)
    assert git(tmp_path / "runs/x/archive", "rev-parse", "best").strip() == best.sha
    assert git(tmp_path / "runs/x/archive", "status", "--porcelain") == ""
