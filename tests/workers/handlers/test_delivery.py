"""How a verified patch may reach its target (workers/handlers/fixing.py `delivery_mode`): a fork's
code never goes to a branch of the base repository, whatever the configured mode."""

from __future__ import annotations

import pytest

from workers.context import JobFailed
from workers.github.target import Target
from workers.handlers.fixing import delivery_mode

REPO, FORK = "octo/calc", "contributor/calc"


def target(head_repo: str | None = REPO, pr: int | None = 7, edits: bool = False, ref: str = "feature") -> Target:
    return Target(repo=REPO, clone_url="https://github.com/octo/calc.git", default_branch="main", head_sha="a" * 40,
                  head_ref=ref, head_repo=head_repo,
                  head_clone_url=f"https://github.com/{head_repo}.git" if head_repo else None,
                  base_ref="main", pr_number=pr, maintainer_can_modify=edits)


@pytest.mark.parametrize(("mode", "expected"), [
    ("commit", "commit"), ("suggest", "suggest"), ("pull_request", "pull_request"), ("comment", "comment")])
def test_a_same_repository_pull_request_gets_what_it_asks(mode, expected):
    assert delivery_mode(mode, target()) == expected


@pytest.mark.parametrize(("mode", "edits", "expected"), [
    ("commit", True, "commit"),  # on the fork's own branch
    ("commit", False, "suggest"),
    ("pull_request", True, "suggest"),  # never a branch of the base repository
    ("pull_request", False, "suggest"),
    ("suggest", False, "suggest"),
    ("comment", False, "comment"),
])
def test_a_fork_gets_suggestions_or_a_commit_on_the_fork_only(mode, edits, expected):
    assert delivery_mode(mode, target(FORK, edits=edits)) == expected


def test_a_deleted_fork_gets_suggestions_even_with_maintainer_edits():
    assert delivery_mode("commit", target(None, edits=True)) == "suggest"
    assert delivery_mode("pull_request", target(None)) == "suggest"


def test_a_branch_of_the_base_repository_gets_a_fix_pull_request():
    assert delivery_mode("suggest", target(pr=None, ref="main")) == "pull_request"
    assert delivery_mode("commit", target(pr=None, ref="main")) == "pull_request"


def test_a_forks_head_without_its_pull_request_gets_nothing():
    with pytest.raises(JobFailed, match="without its pull request"):
        delivery_mode("pull_request", target(FORK, pr=None))
