"""A git worktree of one archived candidate, for an external agent to work in.

The worktree does not belong to the archive's repository: it hangs off a private bare repository
under the run's scratch directory that *borrows* the archive's objects (``objects/info/alternates``).
The agent still gets a real checkout with the candidate's lineage in ``git log``, but any git command
it runs writes to the scratch repository, never to the archive's refs or objects. The worktree is
detached at the candidate's commit and removed after every iteration; a leftover from a killed run
is cleared before the next checkout.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

from evolve.errors import UserError

MAX_PROGRAM_BYTES = 1 << 20


class WorktreeError(UserError, RuntimeError):
    """A git operation on the scratch repository failed; the message is one line."""


class Worktree:
    def __init__(self, archive_dir: Path, scratch: Path) -> None:
        self.objects = (archive_dir / ".git" / "objects").resolve()
        self.git_dir = (scratch / "agent.git").resolve()
        self.path = (scratch / "agent-worktree").resolve()

    def checkout(self, sha: str) -> Path:
        """A fresh detached worktree at commit ``sha``; returns its directory."""
        self._ensure_repo()
        self.remove()
        self._git("worktree", "add", "--detach", "--quiet", str(self.path), sha)
        return self.path

    def remove(self) -> None:
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)
        if self.git_dir.exists():
            self._git("worktree", "prune")

    def changed_files(self) -> list[str]:
        """Paths the agent created, changed or deleted in the worktree, relative to it."""
        out = self._git("status", "--porcelain=v1", "-z", "--untracked-files=all", cwd=self.path)
        return sorted({entry[3:] for entry in out.split("\0") if len(entry) > 3})

    def read_program(self, name: str) -> str | None:
        """The program file as the agent left it: a regular UTF-8 file of sane size, else None."""
        path = self.path / name
        try:
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_PROGRAM_BYTES:
                return None
            return path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def _ensure_repo(self) -> None:
        """Create the scratch repository once; point it at the archive's objects every time (the run
        directory may have moved since)."""
        if not (self.git_dir / "HEAD").exists():
            self._git("init", "--bare", "--quiet", str(self.git_dir), repo=False)
        alternates = self.git_dir / "objects" / "info" / "alternates"
        alternates.parent.mkdir(parents=True, exist_ok=True)
        alternates.write_text(f"{self.objects}\n", encoding="utf-8")

    def _git(self, *args: str, cwd: Path | None = None, repo: bool = True) -> str:
        """Run git on the scratch repository (with ``cwd``: in the worktree there; ``repo=False``: neither)."""
        cmd = ["git", *([f"--git-dir={self.git_dir}"] if repo and cwd is None else []), *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}  # no caller's GIT_DIR
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, check=False)
        if proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
            raise WorktreeError(f"git {args[0]} failed: {lines[-1]}")
        return proc.stdout
