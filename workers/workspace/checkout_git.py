"""The checkout as a git repository inside its sandbox, as actions/checkout leaves it on a runner:
the commit (shallow: no history), its files tracked, HEAD detached at it. pre-commit, setuptools-scm
and tests that call `git ls-files` need one.

The worktree's own metadata lives in the mirror, out of the sandbox's reach, so the sandbox gets a
small repository of its own: the commit's objects in one pack, an index, HEAD. It is kept next to
the worktree's metadata, rebuilt when the worktree moves to another commit, and mounted read-only
(no stage can change what the next one sees); the worktree's `.git` pointer names its place in
the sandbox, which only the sandbox reads (every host-side git command names the git dir)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from workers.workspace.git import run_git, stdout_text
from workers.workspace.worktrees import SANDBOX_GIT_DIR, resolve

__all__ = ["SANDBOX_GIT_DIR", "checkout_git_dir"]
_VIEW = "sandbox-git"  # under the worktree's git dir in the mirror


def checkout_git_dir(workspace: Path, uid: int | None = None, gid: int | None = None) -> Path | None:
    """The host directory to mount read-only at SANDBOX_GIT_DIR for a sandbox on `workspace`, or
    None when it is not a worktree slot (a plain directory has its own `.git`, or none)."""
    git_dir, work = resolve(workspace)
    if git_dir is None:
        return None
    sha = stdout_text(run_git(["rev-parse", "HEAD"], git_dir=git_dir, work_tree=work))
    view = git_dir / _VIEW
    if (view / "shallow").is_file() and (view / "shallow").read_text().strip() == sha:
        return view
    building = git_dir / f"{_VIEW}.new"
    shutil.rmtree(building, ignore_errors=True)
    run_git(["init", "--quiet", "--bare", str(building)], cwd=git_dir)
    run_git(["config", "core.bare", "false"], git_dir=building)
    objects = run_git(["rev-list", "--objects", "--no-walk", "--no-object-names", sha], git_dir=git_dir).stdout
    run_git(["pack-objects", "--quiet", str(building / "objects" / "pack" / "pack")], git_dir=git_dir,
            input=objects)
    (building / "HEAD").write_text(sha + "\n")
    (building / "shallow").write_text(sha + "\n")  # as `fetch-depth: 1` leaves it: no parents
    run_git(["read-tree", sha], git_dir=building)
    if uid is not None and gid is not None:  # git refuses a repository another user owns
        for path in [building, *building.rglob("*")]:
            os.chown(path, uid, gid, follow_symlinks=False)
    shutil.rmtree(view, ignore_errors=True)
    building.rename(view)
    return view
