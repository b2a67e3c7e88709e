"""The fake GitHub server answers what githubkit's models accept, and enforces GitHub's auth."""

from __future__ import annotations

import base64

import httpx
import pytest
from githubkit import AppAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import RequestFailed

REPO = "octo/app"


def _gh(fake, **kw) -> GitHub:
    auth = AppAuthStrategy(fake.app_id, fake.private_key_pem).as_installation(
        1, **kw
    )
    # a cache per client: githubkit's default token cache is process-wide, keyed by app id
    return GitHub(auth, base_url=fake.url, http_cache=False, auto_retry=False,
                  cache_strategy=MemCacheStrategy())


@pytest.fixture
def world(fake_github):
    fake_github.add_installation(1, "octo")
    fake_github.add_repo(REPO, {"app.py": "a = 1\nb = 2\nc = 3\n", "docs/x.md": "x\n"})
    head = fake_github.push(REPO, "feature", {"app.py": "a = 1\nb = 20\nc = 3\n"},
                            parent_branch="main")
    fake_github.add_pull(REPO, 5, head_ref="feature")
    return fake_github, head


def test_models_validate_through_githubkit(world):
    fake, head = world
    gh = _gh(fake)
    assert gh.rest.repos.get("octo", "app").parsed_data.default_branch == "main"
    pr = gh.rest.pulls.get("octo", "app", 5).parsed_data
    assert pr.head.sha == head and pr.base.ref == "main" and pr.maintainer_can_modify is False
    assert [p.number for p in gh.rest.pulls.list("octo", "app", head="octo:feature").parsed_data] == [5]
    files = gh.rest.pulls.list_files("octo", "app", 5).parsed_data
    assert files[0].filename == "app.py" and files[0].status == "modified"
    assert files[0].patch.startswith("@@ -1,3 +1,3 @@")
    assert "-b = 2\n+b = 20" in files[0].patch
    content = gh.rest.repos.get_content("octo", "app", "app.py", ref="main").parsed_data
    assert base64.b64decode(content.content) == b"a = 1\nb = 2\nc = 3\n"
    listing = gh.rest.repos.get_content("octo", "app", "docs").parsed_data
    assert [i.path for i in listing] == ["docs/x.md"]
    with pytest.raises(RequestFailed) as err:
        gh.rest.repos.get_content("octo", "app", "missing.txt")
    assert err.value.response.status_code == 404

    c = gh.rest.issues.create_comment("octo", "app", 5, body="hi").parsed_data
    assert c.user.login == "qwenfix[bot]" and c.user.type == "Bot"
    c2 = gh.rest.issues.update_comment("octo", "app", c.id, body="hello").parsed_data
    assert c2.body == "hello"
    assert gh.rest.issues.get_comment("octo", "app", c.id).parsed_data.body == "hello"
    assert [x.body for x in gh.rest.issues.list_comments("octo", "app", 5).parsed_data] == ["hello"]
    user_comment = fake.add_comment(REPO, 5, "/qwen fix", user="alice")
    r = gh.rest.reactions.create_for_issue_comment("octo", "app", user_comment, content="eyes")
    assert r.status_code == 201 and r.parsed_data.content == "eyes"
    assert gh.rest.reactions.create_for_issue_comment(
        "octo", "app", user_comment, content="eyes").status_code == 200
    rc = fake.add_review_comment(REPO, 5, "/qwen fix", path="app.py", line=2)
    gh.rest.reactions.create_for_pull_request_review_comment("octo", "app", rc, content="eyes")
    assert len(fake.reactions(REPO)) == 2

    review = gh.rest.pulls.create_review("octo", "app", 5, commit_id=head, event="COMMENT",
                                         body="r", comments=[{"path": "app.py", "line": 2,
                                                              "side": "RIGHT", "body": "x"}])
    assert review.parsed_data.state == "COMMENTED"
    assert len(gh.rest.pulls.list_reviews("octo", "app", 5).parsed_data) == 1

    run = gh.rest.checks.create("octo", "app", name="qwenfix", head_sha=head,
                                external_id="7", status="in_progress").parsed_data
    gh.rest.checks.update("octo", "app", run.id, conclusion="success",
                          output={"title": "t", "summary": "s", "annotations": [
                              {"path": "app.py", "start_line": 2, "end_line": 2,
                               "annotation_level": "notice", "message": "m"}]})
    runs = gh.rest.checks.list_for_ref("octo", "app", head).parsed_data
    assert runs.total_count == 1 and runs.check_runs[0].conclusion == "success"
    anns = gh.rest.checks.list_annotations("octo", "app", run.id).parsed_data
    assert anns[0].message == "m"
    suite = runs.check_runs[0].check_suite.id
    assert gh.rest.checks.list_for_suite("octo", "app", suite).parsed_data.total_count == 1

    perm = gh.rest.repos.get_collaborator_permission_level("octo", "app", "alice").parsed_data
    assert perm.permission == "read"
    fake.set_permission(REPO, "alice", "maintain")
    perm = gh.rest.repos.get_collaborator_permission_level("octo", "app", "alice").parsed_data
    assert (perm.permission, perm.role_name) == ("write", "maintain")

    with pytest.raises(RequestFailed) as err:  # one is already open for octo:feature
        gh.rest.pulls.create("octo", "app", title="fix", head="feature", base="main", body="b")
    assert err.value.response.status_code == 422
    fake.push(REPO, "qwenfix/fix-1", {"app.py": "a = 1\n"}, parent_branch="main")
    new = gh.rest.pulls.create("octo", "app", title="fix", head="qwenfix/fix-1", base="main",
                               body="b").parsed_data
    assert new.number == 6 and new.user.login == "qwenfix[bot]"
    assert [p["number"] for p in fake.pulls(REPO)] == [5, 6]


def test_actions_endpoints(world):
    fake, head = world
    fake.add_workflow_run(REPO, 900, head, pull_numbers=[5], jobs=[{
        "id": 901, "name": "test", "conclusion": "failure",
        "steps": [{"name": "Set up", "number": 1, "conclusion": "success"},
                  {"name": "pytest", "number": 2, "conclusion": "failure"}],
        "log": "2024-01-01T00:00:00Z FAILED test_x.py::test_a\n",
        "annotations": [{"path": "test_x.py", "start_line": 3, "message": "assert 1 == 2"}],
    }])
    gh = _gh(fake)
    run = gh.rest.actions.get_workflow_run("octo", "app", 900).parsed_data
    assert run.head_sha == head and run.pull_requests[0].number == 5
    jobs = gh.rest.actions.list_jobs_for_workflow_run("octo", "app", 900).parsed_data
    assert jobs.jobs[0].steps[1].conclusion == "failure"
    log = gh.rest.actions.download_job_logs_for_workflow_run("octo", "app", 901)
    assert "FAILED test_x.py::test_a" in log.text
    first, second = fake.calls("GET", "/repos/octo/app/actions/jobs/901/logs")[0], None
    assert first.status == 302 and second is None
    runs = gh.rest.checks.list_for_ref("octo", "app", head).parsed_data
    assert [(r.id, r.app.slug) for r in runs.check_runs] == [(901, "github-actions")]
    assert gh.rest.checks.list_annotations("octo", "app", 901).parsed_data[0].start_line == 3
    gh.rest.actions.re_run_workflow_failed_jobs("octo", "app", 900)
    assert fake.reruns == [(REPO, 900)]


def test_token_exchange_verifies_jwt_and_narrows(world, github_app_key):
    fake, _ = world
    fake.add_repo("octo/other", {"x": "y\n"})
    gh = _gh(fake, repositories=["app"])
    gh.rest.repos.get("octo", "app")
    exchange = fake.token_exchanges()
    assert len(exchange) == 1 and exchange[0].json == {"repositories": ["app"]}
    with pytest.raises(RequestFailed) as err:
        gh.rest.repos.get("octo", "other")
    assert err.value.response.status_code == 404

    # a JWT signed by another key is refused
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    bad = GitHub(AppAuthStrategy(fake.app_id + 1, other), base_url=fake.url, http_cache=False,
                 auto_retry=False, cache_strategy=MemCacheStrategy())
    with pytest.raises(RequestFailed) as err:
        bad.rest.apps.get_installation(1)
    assert err.value.response.status_code == 401

    # no token / unknown token
    assert httpx.get(f"{fake.url}/repos/octo/app").status_code == 401
    assert httpx.get(f"{fake.url}/repos/octo/app",
                     headers={"Authorization": "token ghs_nope"}).status_code == 401


def test_unknown_route_and_fail_next(world):
    fake, _ = world
    gh = _gh(fake)
    resp = httpx.get(f"{fake.url}/nope/here")
    assert resp.status_code == 404 and resp.json()["message"] == "Not Found"
    assert fake.calls("GET", "/nope/here")
    fake.fail_next("GET", "/repos/octo/app", 502, times=2)
    for _ in range(2):
        with pytest.raises(RequestFailed) as err:
            gh.rest.repos.get("octo", "app")
        assert err.value.response.status_code == 502
    assert gh.rest.repos.get("octo", "app").status_code == 200


def test_enterprise_prefix_and_git_clone(world, tmp_path):
    fake, head = world
    gh = GitHub(AppAuthStrategy(fake.app_id, fake.private_key_pem).as_installation(1),
                base_url=fake.enterprise_url, http_cache=False, auto_retry=False,
                cache_strategy=MemCacheStrategy())
    assert gh.rest.repos.get("octo", "app").status_code == 200
    assert fake.requests[-1].raw_path == "/api/v3/repos/octo/app"
    token = fake.token_exchanges()[-1]
    assert token.raw_path == "/api/v3/app/installations/1/access_tokens"
    issued = next(iter(fake.tokens))
    import subprocess

    url = fake.clone_url(REPO).replace("http://", f"http://x-access-token:{issued}@")
    subprocess.run(["git", "clone", "--quiet", url, str(tmp_path / "c")], check=True)
    assert (tmp_path / "c" / "app.py").read_text() == "a = 1\nb = 2\nc = 3\n"
    bad = fake.clone_url(REPO).replace("http://", "http://x-access-token:ghs_bad@")
    proc = subprocess.run(["git", "clone", "--quiet", bad, str(tmp_path / "d")],
                          capture_output=True, env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0


def test_push_over_git_moves_the_pull_request(world, tmp_path):
    import subprocess

    fake, head = world
    fake.add_repo("octo/other", {"x": "y\n"})
    gh = _gh(fake, repositories=["app"])
    gh.rest.repos.get("octo", "app")
    (token,) = fake.tokens
    env = {"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "GIT_AUTHOR_NAME": "q", "GIT_AUTHOR_EMAIL": "q@x", "GIT_COMMITTER_NAME": "q",
           "GIT_COMMITTER_EMAIL": "q@x"}
    url = fake.clone_url(REPO).replace("http://", f"http://x-access-token:{token}@")
    work = tmp_path / "w"
    subprocess.run(["git", "clone", "--quiet", "--branch", "feature", url, str(work)],
                   check=True, env=env)
    (work / "app.py").write_text("a = 1\nb = 30\nc = 3\n")
    subprocess.run(["git", "commit", "--quiet", "-am", "fix"], cwd=work, check=True, env=env)
    subprocess.run(["git", "push", "--quiet", "origin", "feature"], cwd=work, check=True, env=env)
    new = fake.ref(REPO, "refs/heads/feature")
    assert new != head
    assert gh.rest.pulls.get("octo", "app", 5).parsed_data.head.sha == new
    assert fake.ref(REPO, "refs/pull/5/head") == new
    assert fake.file_at(REPO, "feature", "app.py") == "a = 1\nb = 30\nc = 3\n"
    assert fake.pushes(REPO) == [{"repo": REPO, "ref": "refs/heads/feature", "old": head, "new": new}]
    assert fake.refs(REPO)["refs/heads/feature"] == new
    # the narrowed token cannot clone another repository of the installation
    other = fake.clone_url("octo/other").replace("http://", f"http://x-access-token:{token}@")
    proc = subprocess.run(["git", "clone", "--quiet", other, str(tmp_path / "o")],
                          capture_output=True, env=env)
    assert proc.returncode != 0


def test_forks_as_github_reports_them(world):
    """A fork's pull request: `/commits/{sha}/pulls` lists it not (only pull requests whose head
    lives in the repository), `pulls?head=owner:branch` does; a deleted fork is `head.repo: null`;
    a workflow run names the fork as its head repository; a branch reads like GitHub's."""
    fake, head = world
    fake.add_fork(REPO, "contributor/app")
    fork_head = fake.push("contributor/app", "main", {"app.py": "a = 'fork'\n"})
    fake.add_pull(REPO, 6, head_ref="main", head_repo="contributor/app")
    gh = _gh(fake)
    assert [p.number for p in gh.rest.repos.list_pull_requests_associated_with_commit(
        "octo", "app", head).parsed_data] == [5]
    assert gh.rest.repos.list_pull_requests_associated_with_commit("octo", "app", fork_head).parsed_data == []
    with pytest.raises(RequestFailed) as err:
        gh.rest.repos.list_pull_requests_associated_with_commit("octo", "app", "f" * 40)
    assert err.value.response.status_code == 422
    [pr] = gh.rest.pulls.list("octo", "app", head="contributor:main").parsed_data
    assert pr.number == 6 and pr.head.sha == fork_head and pr.head.repo.full_name == "contributor/app"
    assert pr.head.repo.fork is True
    fake.add_pull(REPO, 7, head_ref="main", head_repo="contributor/app", head_repo_deleted=True)
    assert gh.rest.pulls.get("octo", "app", 7).parsed_data.head.repo is None

    fake.add_workflow_run(REPO, 31, fork_head, head_branch="main", head_repository="contributor/app")
    run = gh.rest.actions.get_workflow_run("octo", "app", 31).parsed_data
    assert run.pull_requests == [] and run.head_repository.full_name == "contributor/app"
    assert run.repository.full_name == REPO

    branch = gh.rest.repos.get_branch("octo", "app", "feature").parsed_data
    assert branch.name == "feature" and branch.commit.sha == head and branch.protected is False
    with pytest.raises(RequestFailed) as err:
        gh.rest.repos.get_branch("octo", "app", "nope")
    assert err.value.response.status_code == 404

    rid = fake.add_review(REPO, 5, "looks fine", user="echo-bot[bot]")
    [review] = gh.rest.pulls.list_reviews("octo", "app", 5).parsed_data
    assert review.id == rid and review.user.login == "echo-bot[bot]" and review.user.type == "Bot"
