"""The archive read as a git user reads it: plain ``git log``, ``git status``, checkouts."""

from __future__ import annotations

import subprocess

from archive_helpers import record

from evolve.archive import Archive
from evolve.archive.archive import BEST_REF, FRONT_REF


def git(archive: Archive, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=archive.path, capture_output=True, text=True)
    assert proc.returncode == 0 or not check, proc.stderr
    return proc.stdout


def grow(archive: Archive) -> None:
    """Seed #0, then a smaller child #1, then an even smaller grandchild #2 (the best)."""
    archive.add_batch([record(50, description="seed")], {})
    archive.add_batch([record(40, parents=(0,), description="share the embedding")], {})
    archive.add_batch([record(30, parents=(1,), description="tie the head")], {})


def test_plain_git_log_is_the_lineage_of_the_best_and_the_checkout_is_clean(archive):
    assert "does not have any commits" in subprocess.run(
        ["git", "log"], cwd=archive.path, capture_output=True, text=True).stderr  # nothing yet
    grow(archive)
    archive.add_batch([record(45, parents=(0,), description="a worse sibling")], {})
    assert git(archive, "log", "--format=%s").splitlines() == [
        "#2 seed: tie the head", "#1 seed: share the embedding", "#0 seed: seed"]
    assert git(archive, "symbolic-ref", "HEAD").strip() == "refs/heads/best"
    assert git(archive, "status", "--porcelain") == ""
    assert (archive.path / "program.py").read_text() == archive.get(2).source
    assert git(archive, "rev-parse", "best").strip() == git(archive, "rev-parse", BEST_REF).strip()


def test_subjects_hold_the_whole_intent(archive):
    intent = "replace the learned positional embedding by a sinusoidal one " * 4
    archive.add_batch([record(50, description=intent)], {})
    assert git(archive, "log", "-1", "--format=%s").strip() == f"#0 seed: {intent.strip()}"


def test_checkpoints_stay_out_of_the_default_log_and_can_be_excluded_from_all(archive):
    grow(archive)
    assert "Checkpoint" not in git(archive, "log", "--format=%s")
    assert "Checkpoint" in git(archive, "log", "--all", "--format=%s")
    shown = git(archive, "log", "--exclude=refs/evolve/state", "--all", "--format=%s")
    assert "Checkpoint" not in shown and "#2 seed: tie the head" in shown


def test_a_checked_out_front_is_never_moved_under_the_user(archive):
    archive.add_batch([record(50)], {})
    git(archive, "checkout", "-q", "front")
    before = git(archive, "rev-parse", "front").strip()
    archive.add_batch([record(40, parents=(0,))], {})  # a new front
    assert git(archive, "rev-parse", "front").strip() == before
    assert git(archive, "status", "--porcelain") == ""  # no phantom staged changes
    assert archive.unpublished == ["refs/heads/front"]
    assert '"id": 1' in git(archive, "show", f"{FRONT_REF}:front.json")  # the archive's own ref moved
    git(archive, "checkout", "-q", "best")
    archive.add_batch([record(60, parents=(0,))], {})  # the next write publishes the lagging branch
    assert git(archive, "rev-parse", "front").strip() == git(archive, "rev-parse", FRONT_REF).strip()
    assert archive.unpublished == []


def test_a_branch_checked_out_in_a_linked_work_tree_is_left_alone(archive, tmp_path):
    archive.add_batch([record(50)], {})
    git(archive, "worktree", "add", "-q", str(tmp_path / "look"), "front")
    before = git(archive, "rev-parse", "front").strip()
    archive.add_batch([record(40, parents=(0,))], {})
    assert git(archive, "rev-parse", "front").strip() == before
    assert "refs/heads/front" in archive.unpublished


def test_local_edits_in_the_best_checkout_are_kept_and_best_waits(archive):
    archive.add_batch([record(50)], {})
    (archive.path / "program.py").write_text("my own experiment\n")
    old = git(archive, "rev-parse", "best").strip()
    archive.add_batch([record(40, parents=(0,))], {})  # a better program would overwrite the edit
    assert (archive.path / "program.py").read_text() == "my own experiment\n"
    assert git(archive, "rev-parse", "best").strip() == old
    assert archive.unpublished == ["refs/heads/best"]
    assert git(archive, "rev-parse", BEST_REF).strip() == archive.get(1).sha


def test_before_anything_is_feasible_the_best_is_the_least_violating(archive):
    archive.add_batch([record(50, accuracy=0.2), record(60, accuracy=0.7), record(status="crashed")],
                      {})
    assert git(archive, "log", "-1", "--format=%(trailers:key=Evolve-Id,valueonly)").strip() == "1"
    archive.add_batch([record(99, accuracy=0.95, parents=(1,))], {})  # feasible beats any violation
    assert git(archive, "rev-parse", "best").strip() == archive.get(3).sha


def test_an_archive_from_before_best_adopts_it_on_the_next_write(archive):
    grow(archive)
    for ref in ("refs/heads/best", BEST_REF):
        git(archive, "update-ref", "-d", ref)
    git(archive, "symbolic-ref", "HEAD", "refs/heads/main")
    (archive.path / ".git" / "index").unlink()
    for name in ("program.py", "metrics.json"):
        (archive.path / name).unlink()
    archive.close()
    with Archive.open(archive.path) as a:
        a.reindex()
        assert git(a, "symbolic-ref", "HEAD").strip() == "refs/heads/best"
        assert git(a, "log", "--format=%s").splitlines()[0] == "#2 seed: tie the head"
        assert git(a, "status", "--porcelain") == ""


def test_a_stream_of_batches_publishes_at_most_every_few_seconds_and_on_close(tmp_path):
    from archive_helpers import META

    archive = Archive.create(tmp_path / "archive", META)
    archive.publish_interval_s = 3600.0
    archive.add_batch([record(50)], {})  # the first batch publishes
    first, = archive.add_batch([record(40, parents=(0,))], {})  # too soon: the branch waits
    assert git(archive, "rev-parse", "best").strip() == archive.get(0).sha
    assert git(archive, "status", "--porcelain") == ""  # waiting, but consistent
    archive.close()
    assert git(archive, "rev-parse", "best").strip() == first.sha
    assert git(archive, "status", "--porcelain") == ""


def test_a_branch_the_user_moved_meanwhile_is_kept_and_the_batch_still_lands(archive, monkeypatch):
    from evolve.archive import branches

    archive.add_batch([record(50)], {})
    real = branches.GitStore.update_refs

    def user_moves_front_first(store, commands):
        if any("refs/heads/front" in c for c in commands):
            git(archive, "branch", "-f", "front", archive.get(0).sha)
        return real(store, commands)

    monkeypatch.setattr(branches.GitStore, "update_refs", user_moves_front_first)
    new, = archive.add_batch([record(40, parents=(0,))], {})  # no exception: the batch is archived
    monkeypatch.undo()
    assert git(archive, "rev-parse", "front").strip() == archive.get(0).sha  # the user's move stands
    assert "refs/heads/front" in archive.unpublished and len(archive) == 2
    archive.add_batch([record(45, parents=(0,))], {})  # and the next publish catches up
    assert git(archive, "rev-parse", "front").strip() == git(archive, "rev-parse", FRONT_REF).strip()
