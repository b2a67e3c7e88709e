"""A worktree's starting point with extra changes on top (a user's uncommitted edits, a benchmark
task's test patch), committed with a fixed identity and date: every worktree made the same way gets
the same commit, which every candidate's patch is then measured against and excludes."""

from __future__ import annotations

from pathlib import Path

from workers.workspace.git import WorkspaceError, run_git, stdout_text
from workers.workspace.patches import apply_patch
from workers.workspace.worktrees import Worktree, resolve

_IDENTITY = {"GIT_AUTHOR_NAME": "qwenfix", "GIT_AUTHOR_EMAIL": "qwenfix@localhost",
             "GIT_COMMITTER_NAME": "qwenfix", "GIT_COMMITTER_EMAIL": "qwenfix@localhost",
             "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z"}


def commit_baseline(worktree: Worktree | Path, patch: str, message: str) -> str:
    """Apply `patch`, commit everything with a fixed identity and date, and return the commit; a
    Worktree's reset goes back to it from now on."""
    apply_patch(worktree, patch)
    git_dir, work = resolve(worktree)
    run_git(["add", "-A", "--", "."], git_dir=git_dir, work_tree=work, cwd=work)
    done = run_git(["-c", "commit.gpgsign=false", "commit", "--no-verify", "--quiet", "--allow-empty", "-m", message],
                   git_dir=git_dir, work_tree=work, cwd=work, env=_IDENTITY, check=False)
    if done.returncode != 0:
        raise WorkspaceError(f"could not record {message}: {done.stderr.decode(errors='replace').strip()[-300:]}")
    sha = stdout_text(run_git(["rev-parse", "HEAD"], git_dir=git_dir, work_tree=work, cwd=work))
    if isinstance(worktree, Worktree):
        worktree.base_sha = sha
    return sha
