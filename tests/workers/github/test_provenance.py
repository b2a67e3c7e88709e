"""Where a red build's head lives, read through the API as GitHub answers it (the fake over HTTP,
real githubkit): pull requests found when GitHub named none, base branches, and heads tied to
neither."""

from __future__ import annotations

import pytest

from core.config import Settings
from core.github import GitHubApp
from workers.github.provenance import branch_tip, find_pull_request, untied_reason
from workers.github.target import resolve_target

REPO, FORK = "octo/app", "contributor/app"


@pytest.fixture
def world(fake_github):
    fake_github.add_installation(3, "octo")
    fake_github.add_repo(REPO, {"app.py": "a = 1\n"}, installation_id=3)
    fake_github.add_fork(REPO, FORK)
    settings = Settings(_env_file=None, app_id=str(fake_github.app_id),
                        private_key=fake_github.private_key_pem, github_api_url=fake_github.url)
    return fake_github, GitHubApp(settings).installation_client(3, REPO)


def test_a_same_repository_pull_request_is_found_by_its_head(world):
    fake, gh = world
    head = fake.push(REPO, "feature", {"app.py": "a = 2\n"}, parent_branch="main")
    fake.add_pull(REPO, 4, head_ref="feature")
    assert find_pull_request(gh, REPO, head, "feature", REPO) == 4
    assert find_pull_request(gh, REPO, head, "feature", None) == 4
    newer = fake.push(REPO, "feature", {"app.py": "a = 3\n"})
    assert find_pull_request(gh, REPO, head, "feature", REPO) is None  # no longer its head
    assert find_pull_request(gh, REPO, newer, "feature", REPO) == 4


def test_a_forks_pull_request_is_found_although_commits_pulls_lists_nothing(world):
    fake, gh = world
    head = fake.push(FORK, "main", {"app.py": "a = 'fork'\n"})
    fake.add_pull(REPO, 9, head_ref="main", head_repo=FORK)
    # GitHub's /commits/{sha}/pulls lists no fork's pull request
    assert gh.request("GET", f"/repos/{REPO}/commits/{head}/pulls").json() == []
    assert find_pull_request(gh, REPO, head, "main", FORK) == 9  # head=contributor:main
    assert fake.calls("GET", f"/repos/{REPO}/pulls")[-1].query["head"] == "contributor:main"
    assert find_pull_request(gh, REPO, head, "main", None) == 9  # a check suite: by scanning open ones
    target = resolve_target(gh, REPO, None, head, "main", FORK)
    assert (target.pr_number, target.head_repo, target.fork, target.untied) == (9, FORK, True, None)
    assert not target.on_default_branch and not target.can_push_to_head


def test_a_closed_forks_pull_request_leaves_its_head_untied(world):
    fake, gh = world
    head = fake.push(FORK, "main", {"app.py": "a = 'fork'\n"})
    fake.add_pull(REPO, 9, head_ref="main", head_repo=FORK, state="closed")
    assert find_pull_request(gh, REPO, head, "main", FORK) is None
    target = resolve_target(gh, REPO, None, head, "main", FORK)
    assert target.pr_number is None and target.fork and "contributor/app, a fork" in target.untied
    # without a head repository (a check suite) the base's own `main` is not the fork's head
    target = resolve_target(gh, REPO, None, head, "main", None)
    assert target.untied is None and target.current_head_sha == fake.ref(REPO, "main") != head


def test_a_base_branch_build_is_tied_to_its_branch(world):
    fake, gh = world
    tip = fake.ref(REPO, "main")
    assert branch_tip(gh, REPO, "main") == tip
    assert branch_tip(gh, REPO, "no/such-branch") is None
    target = resolve_target(gh, REPO, None, tip, "main", REPO)
    assert (target.untied, target.fork, target.on_default_branch) == (None, False, True)
    target = resolve_target(gh, REPO, None, tip, "v1.0", REPO)  # a tag's run: no such branch
    assert target.untied and "no branch `v1.0`" in target.untied


def test_a_deleted_fork_counts_as_a_fork():
    from workers.github.target import Target

    target = Target(repo=REPO, clone_url="u", default_branch="main", head_sha="a" * 40, head_ref="feature",
                    head_repo=None, head_clone_url=None, base_ref="main", pr_number=3, maintainer_can_modify=True)
    assert target.fork and not target.can_push_to_head


def test_untied_reasons():
    sha = "b" * 40
    assert untied_reason(REPO, sha, "main", REPO, sha) is None
    assert untied_reason(REPO, sha, "main", None, "c" * 40) is None  # tied; the branch moved on
    assert "a fork" in untied_reason(REPO, sha, "main", FORK, sha)
    assert "no branch" in untied_reason(REPO, sha, None, REPO, None)
    assert "has no branch `gone`" in untied_reason(REPO, sha, "gone", None, None)
