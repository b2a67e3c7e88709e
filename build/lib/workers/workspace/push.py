"""Commit a verified patch with the configured identity and push it to a validated branch; recognise
a branch whose tip is already the commit a job pushed (so a job run twice pushes once)."""

from __future__ import annotations

from pathlib import Path

from core.logs import redact
from workers.workspace.git import (
    DEFAULT_TIMEOUT_S,
    AuthenticationError,
    NothingToCommit,
    PushRejected,
    WorkspaceError,
    check_remote_url,
    check_sha,
    command_error,
    run_git,
    stdout_text,
    validate_branch_name,
)
from workers.workspace.worktrees import Worktree, resolve


class ForeignCommit(WorkspaceError):
    """The commit a push would build on is on no branch of the repository it goes to (a fork's)."""


def on_remote_branch(git_dir: Path | None, work: Path, url: str, token: str | None, sha: str,
                     timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """Whether ``sha`` is in the history of a branch of ``url`` as the remote has them now.
    Branch tips the local repository lacks are fetched (objects only, no ref written)."""
    sha = check_sha(sha)
    listing = stdout_text(run_git(["ls-remote", "--heads", "--", url], git_dir=git_dir, cwd=work, token=token,
                                  timeout=timeout_s, what=f"git ls-remote {redact(url)}"))
    tips = {line.split("\t", 1)[0] for line in listing.splitlines() if "\trefs/heads/" in line}
    tips = {tip for tip in tips if _is_sha(tip)}
    if sha in tips:
        return True
    if not tips:
        return False
    missing = _missing(git_dir, work, tips)
    if missing:
        run_git(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-recurse-submodules", "--",
                 url, *sorted(missing)], git_dir=git_dir, cwd=work, token=token, timeout=timeout_s,
                check=False, what=f"git fetch {redact(url)}")
        tips -= _missing(git_dir, work, tips)
    if not tips:
        return False
    # everything reachable from the tips but not from sha's parents: sha is in it iff a tip has it
    walk = run_git(["rev-list", "--stdin"], git_dir=git_dir, cwd=work,
                   input=("\n".join([*sorted(tips), f"^{sha}^@"]) + "\n").encode())
    return sha in stdout_text(walk).split()


def _is_sha(text: str) -> bool:
    try:
        check_sha(text)
    except ValueError:
        return False
    return True


def _missing(git_dir: Path | None, work: Path, shas: set[str]) -> set[str]:
    out = run_git(["cat-file", "--batch-check"], git_dir=git_dir, cwd=work,
                  input=("\n".join(sorted(shas)) + "\n").encode())
    return {line.split()[0] for line in stdout_text(out).splitlines() if line.endswith(" missing")}


def _identity(value: str, what: str) -> str:
    if not value or any(ch in value for ch in "<>\n\r\0"):
        raise ValueError(f"invalid {what} {value!r}")
    return value


def _undo_commit(git_dir: Path | None, work: Path, parent: str) -> None:
    run_git(
        ["reset", "--quiet", "--soft", parent],
        git_dir=git_dir,
        work_tree=work,
        cwd=work,
        check=False,
    )


def commit_and_push(
    worktree: Worktree | Path,
    message: str,
    branch: str,
    remote_url: str,
    token: str | None,
    author_name: str,
    author_email: str,
    force: bool = False,
    *,
    require_on_branch: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> str:
    """Commit every change in the worktree (author = committer = the given identity), push HEAD
    to ``refs/heads/<branch>`` on ``remote_url`` and return the new commit's sha.

    ``require_on_branch``: the commit the change builds on must already be in the history of a
    branch of ``remote_url`` — so a fork's commits never reach the base repository through us,
    whatever the caller believed. Only a push to a fork's own branch (maintainer edits) skips it.

    Raises :class:`ForeignCommit` when that check fails (nothing is committed or pushed),
    :class:`NothingToCommit` when nothing changed, :class:`PushRejected` when the remote
    refuses (e.g. non-fast-forward without ``force``), :class:`AuthenticationError` on 401/403;
    after a failed push the commit is undone (``reset --soft``) so the call can be retried."""
    branch = validate_branch_name(branch)
    url = check_remote_url(remote_url)
    name = _identity(author_name, "author name")
    email = _identity(author_email, "author email")
    git_dir, work = resolve(worktree)
    if require_on_branch:
        head = stdout_text(run_git(["rev-parse", "HEAD"], git_dir=git_dir, work_tree=work, cwd=work))
        if not on_remote_branch(git_dir, work, url, token, head, timeout_s):
            raise ForeignCommit(f"refusing to push to {redact(url)}: the commit {head[:12]} this change builds on "
                                "is on none of its branches (a fork's commit?)")
    ident = {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }
    run_git(["add", "-A", "--", "."], git_dir=git_dir, work_tree=work, cwd=work)
    staged = run_git(
        ["diff", "--cached", "--quiet", "HEAD", "--"],
        git_dir=git_dir,
        work_tree=work,
        cwd=work,
        check=False,
    )
    if staged.returncode == 0:
        raise NothingToCommit(f"nothing to commit in {work}")
    parent = stdout_text(run_git(["rev-parse", "HEAD"], git_dir=git_dir, work_tree=work, cwd=work))
    run_git(
        ["commit", "--quiet", "--no-verify", "--no-gpg-sign", "--file=-"],
        git_dir=git_dir,
        work_tree=work,
        cwd=work,
        env=ident,
        input=message.encode("utf-8"),
    )
    sha = stdout_text(run_git(["rev-parse", "HEAD"], git_dir=git_dir, work_tree=work, cwd=work))
    refspec = f"{'+' if force else ''}{sha}:refs/heads/{branch}"
    try:
        result = run_git(
            ["push", "--porcelain", "--no-verify", "--", url, refspec],
            git_dir=git_dir,
            work_tree=work,
            cwd=work,
            token=token,
            timeout=timeout_s,
            check=False,
            what=f"git push {redact(url)} {branch}",
        )
    except BaseException:
        _undo_commit(git_dir, work, parent)
        raise
    if result.returncode != 0:
        # a failed push leaves the worktree as it was (changes uncommitted), so a retry works
        _undo_commit(git_dir, work, parent)
        err = command_error(
            f"git push {redact(url)} {branch}",
            "git push",
            result.returncode,
            result.stderr + result.stdout,
            token,
        )
        if isinstance(err, AuthenticationError):
            raise err
        text = redact((result.stdout + result.stderr).decode("utf-8", errors="replace"), [token])
        reason = "rejected"
        for line in text.splitlines():
            if line.startswith("!") and "\t" in line:
                reason = line.rsplit("\t", 1)[-1].strip() or reason
        raise PushRejected(f"push to {branch} refused: {reason}", err.argv, result.returncode, text)
    return sha


def remote_tip_carrying(
    worktree: Worktree | Path,
    remote_url: str,
    branch: str,
    token: str | None,
    trailer: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> str | None:
    """The sha of ``branch``'s tip on ``remote_url`` when its commit message carries ``trailer``
    (e.g. ``Qwenfix-Job: 42``): a push that was refused because this very commit is already
    there (an earlier run pushed it, then was lost before recording it). None otherwise."""
    branch = validate_branch_name(branch)
    url = check_remote_url(remote_url)
    git_dir, work = resolve(worktree)
    local = f"refs/qwenfix/tips/{branch}"
    fetched = run_git(
        ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", url, f"+refs/heads/{branch}:{local}"],
        git_dir=git_dir, work_tree=work, cwd=work, token=token, timeout=timeout_s, check=False,
        what=f"git fetch {redact(url)} {branch}",
    )
    if fetched.returncode != 0:
        return None
    shown = run_git(["log", "-1", "--format=%H%n%B", local], git_dir=git_dir, work_tree=work, cwd=work)
    sha, _, message = stdout_text(shown).partition("\n")
    trailers = {line.strip() for line in message.splitlines()}
    return sha if trailer in trailers else None
