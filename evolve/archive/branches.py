"""The branches a git user sees in the archive: ``best`` (HEAD) and ``front``.

The archive's own refs (``refs/evolve/*``) are moved in its ref transaction and are the truth. The
branches under ``refs/heads/`` are copies published after it, with git's own rule for a checkout: a
branch checked out in a work tree is never moved under the user. The one exception is the archive's
default checkout, ``best``: while HEAD points at it, its work tree and index are carried along with
``git read-tree -m -u`` (the same two-tree merge ``git checkout`` does), which refuses to clobber
local edits; if it refuses, the branch stays where it is and ``git status`` stays honest.
"""

from __future__ import annotations

from pathlib import Path

from evolve.archive.records import ArchiveError
from evolve.archive.store import GitStore

BEST_BRANCH = "refs/heads/best"
FRONT_BRANCH = "refs/heads/front"
_OLD_DEFAULT = "refs/heads/main"  # HEAD of archives made before ``best`` existed


def publish(store: GitStore, targets: dict[str, str | None]) -> list[str]:
    """Point each ``refs/heads/…`` branch at its target commit where that is safe; returns the
    branches left behind (checked out elsewhere, a work tree git refused to update, or moved by
    someone else meanwhile). Never raises for a branch: they are copies, the archive's refs hold."""
    _adopt_head(store)
    head, others = checked_out(store.git_dir)
    skipped, commands = [], []
    for branch, target in targets.items():
        current = store.ref(branch)
        if target is None or current == target:
            continue
        followed = branch == head and branch == BEST_BRANCH  # the archive's own checkout
        if branch in others or (branch == head and not followed) \
                or (followed and not _carry_work_tree(store, current, target)):
            skipped.append(branch)
            continue
        commands.append(f"update {branch} {target} {current or '0' * 40}")
    if commands:
        try:
            store.update_refs(commands)  # one git process for all branches
        except ArchiveError:  # a user moved one meanwhile: theirs stays, the next publish retries
            skipped += [c.split()[1] for c in commands]
    return skipped


def checked_out(git_dir: Path) -> tuple[str | None, set[str]]:
    """The branch HEAD names in the archive's own work tree, and those of linked work trees."""
    others = {_symbolic(head) for head in (git_dir / "worktrees").glob("*/HEAD")}
    return _symbolic(git_dir / "HEAD"), {b for b in others if b}


def _carry_work_tree(store: GitStore, old: str | None, new: str) -> bool:
    """Move the index and files of the main work tree from ``old`` to ``new`` like a checkout."""
    trees = [old, new] if old else [new]
    try:
        store.git("read-tree", "-m", "-u", *trees, work_tree=True)
    except ArchiveError:
        return False
    return True


def _adopt_head(store: GitStore) -> None:
    """Old archives: HEAD named an unborn ``main``, so plain ``git log`` found nothing."""
    if _symbolic(store.git_dir / "HEAD") == _OLD_DEFAULT and store.ref(_OLD_DEFAULT) is None:
        store.git("symbolic-ref", "HEAD", BEST_BRANCH)


def _symbolic(head: Path) -> str | None:
    try:
        text = head.read_text()
    except OSError:
        return None
    return text[5:].strip() if text.startswith("ref: ") else None
