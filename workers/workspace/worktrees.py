"""Worktree slots: detached checkouts kept between jobs, handed out pristine at an exact commit."""

from __future__ import annotations

import atexit
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workers.workspace.confined import names, remove_special_files, remove_tree
from workers.workspace.git import WorkspaceError, check_sha, run_git, stdout_text

SANDBOX_GIT_DIR = "/opt/qwenfix/git"  # where the sandbox finds the checkout's repository
_live_lock = threading.Lock()
_live: dict[str, Worktree] = {}


def track(worktree: Worktree) -> None:
    """Remember a handed-out worktree, so that a process that exits releases it."""
    with _live_lock:
        _live[str(worktree.path)] = worktree


def rmtree(path: Path) -> None:
    """Remove a tree whatever the sandbox left in it (links are removed, never followed)."""
    remove_tree(path)


@dataclass(eq=False)
class Worktree:
    """A checkout of ``base_sha`` (detached HEAD) at ``path``, exactly as git has it: tracked files
    at that commit and nothing else.

    ``git_dir`` is git's private metadata for this worktree inside the mirror (index, HEAD), out
    of the sandbox's reach under ``path``. Use as a context manager, or call :meth:`release`
    (idempotent) when done."""

    path: Path
    base_sha: str
    git_dir: Path | None = None
    _release: Any = field(default=None, repr=False)
    _released: bool = field(default=False, repr=False)

    def __enter__(self) -> Worktree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @property
    def released(self) -> bool:
        return self._released

    def head(self) -> str:
        return stdout_text(run_git(["rev-parse", "HEAD"], git_dir=self.git_dir, work_tree=self.path))

    def reset(self, sha: str | None = None, keep: Iterable[str] = ()) -> None:
        """Back to a pristine checkout of ``sha`` (default: ``base_sha``): every change, new file,
        ignored file and nested repository is gone — except the untracked directories ``keep``,
        left as they are for the caller to check. Raises WorkspaceError when that fails."""
        if self._released:
            raise WorkspaceError(f"worktree {self.path} was released")
        sha = check_sha(sha or self.base_sha)
        if self.git_dir is None or not reset_worktree(self.git_dir, self.path, sha, keep):
            raise WorkspaceError(f"could not reset the worktree at {self.path}")
        self.base_sha = sha

    def release(self) -> None:
        """Done with it: the slot goes back to the cache (see MirrorCache) for the next job."""
        if self._released:
            return
        self._released = True
        with _live_lock:
            _live.pop(str(self.path), None)
        release, self._release = self._release, None
        if release is not None:
            release()


def reset_worktree(git_dir: Path, path: Path, sha: str, keep: Iterable[str] = ()) -> bool:
    """Make the slot at ``path`` a pristine checkout of ``sha``; False when it is not a healthy
    worktree of ``git_dir`` (then the caller rebuilds it).

    The sandbox could have written anything there, so nothing in it is trusted: the ``.git``
    pointer is rewritten (to name the sandbox's view of the checkout), git is told where its
    metadata is (which lives outside the sandbox's reach, in the mirror), ``reset --hard`` rewrites every tracked file whose stat data changed
    (a sandbox cannot forge ctime), ``clean -ffdx`` removes everything untracked (but the
    directories ``keep``: not a link, not tracked, the caller's to check), and the fifos, sockets
    and devices git does not see go too."""
    try:
        if not path.is_dir() or path.is_symlink():
            return False
        if Path((git_dir / "gitdir").read_text().strip()) != path / ".git":
            return False
        write_pointer(path)
        where = {"git_dir": git_dir, "work_tree": path, "cwd": path}
        run_git(["-c", "checkout.workers=0", "reset", "--hard", "--quiet", sha], **where)
        kept = sorted(set(keep))
        run_git(["clean", "-ffdxq", *(f"--exclude=/{_literal(d)}/" for d in kept)], **where)
        remove_special_files(path, skip=kept)
        return True
    except (OSError, WorkspaceError):
        return False


def write_pointer(path: Path) -> None:
    """(Re)write the worktree's `.git` pointer, whatever the sandbox left there. It names the
    repository the sandbox sees (workers/workspace/checkout_git.py), which only the sandbox reads:
    every host-side git command names the worktree's git dir itself."""
    pointer = path / ".git"
    if pointer.is_dir() and not pointer.is_symlink():
        rmtree(pointer)
    elif pointer.exists() or pointer.is_symlink():
        pointer.unlink()
    fd = os.open(pointer, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(f"gitdir: {SANDBOX_GIT_DIR}\n")


def _literal(path: str) -> str:
    """A path as a gitignore pattern that matches only itself."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", "/".join(names(path)))


@atexit.register
def _remove_live_worktrees() -> None:
    with _live_lock:
        live = list(_live.values())
    for wt in live:
        try:
            wt.release()
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass


def resolve(worktree: Worktree | Path | str) -> tuple[Path | None, Path]:
    """(git_dir, work_tree) for a Worktree, a path of a live Worktree, or (None, path) for a
    plain local checkout that the caller trusts (git discovers its repository)."""
    if isinstance(worktree, Worktree):
        if worktree.released:
            raise WorkspaceError(f"worktree {worktree.path} was released")
        return worktree.git_dir, worktree.path
    path = Path(worktree)
    with _live_lock:
        live = _live.get(str(path)) or _live.get(str(path.resolve()))
    if live is not None:
        return live.git_dir, live.path
    return None, path
