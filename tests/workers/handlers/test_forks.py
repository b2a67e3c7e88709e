"""Pull requests from forks, end to end (webhook → worker → sandbox → fake GitHub): a fork's code
never reaches any ref of the base repository.

GitHub reports a fork's red build with `workflow_run.pull_requests: []` (and
`check_suite.pull_requests: []`) and the fork as `head_repository`. Before the fix the app took the
fork's branch for a branch of the base repository and force-pushed `qwenfix/fix-…` — the fork's
commits plus the fix — into the base repository with the App token (whose pushes start workflows
with the base repository's secrets), then opened a pull request from it.
"""

from __future__ import annotations

import pytest
import yaml

from tests.repos import (
    BASE_FILES,
    BROKEN_CALC,
    REPO,
    comment_event,
    failing_job,
    workflow_run_event,
)
from tests.support.fake_openai import call, finish

pytestmark = pytest.mark.docker

FORK = "contributor/calc"
AGENT_FIX = [
    call("read_file", path="calc.py"),
    call("edit_file", path="calc.py", old="return a - b", new="return a + b"),
    finish("add() subtracted instead of adding; it now returns a + b."),
]
SUGGESTION = "```suggestion\n    return a + b\n```"


def fork_pr(gh, config: dict | None = None, state: str = "open", head_repo_deleted: bool = False,
            branch: str = "feature") -> str:
    """octo/calc with pull request #7 from ``branch`` of the fork contributor/calc."""
    base = dict(BASE_FILES)
    if config is not None:
        base[".github/qwen.yml"] = yaml.safe_dump(config)
    gh.add_repo(REPO, base)
    gh.add_fork(REPO, FORK)
    head = gh.push(FORK, branch, {"calc.py": BROKEN_CALC}, "Refactor add", parent_branch="main")
    gh.add_pull(REPO, 7, head_ref=branch, base_ref="main", head_repo=FORK, user="contributor",
                maintainer_can_modify=False, state=state, head_repo_deleted=head_repo_deleted)
    gh.set_permission(REPO, "maintainer", "write")
    return head


def fork_red_build(stack, head: str, run_id: int = 950, branch: str = "feature") -> int:
    """The fork's CI run goes red; the webhook as GitHub sends it for forks."""
    stack.github.add_workflow_run(REPO, run_id, head, jobs=[failing_job(run_id * 10)], pull_numbers=(),
                                  head_branch=branch, head_repository=FORK)
    payload = workflow_run_event(REPO, {"id": run_id, "head_sha": head}, (), head_branch=branch, head_repo=FORK)
    assert payload["workflow_run"]["pull_requests"] == []
    return stack.deliver("workflow_run", payload).json()["job"]


def assert_base_untouched(gh, refs_before: dict[str, str]) -> None:
    assert gh.pushes(REPO) == [], "something was pushed to the base repository"
    assert gh.refs(REPO) == refs_before
    assert [p["number"] for p in gh.pulls(REPO)] == [7], "a pull request was opened from a base branch"


def test_a_forks_red_build_is_not_repaired_by_default_and_nothing_reaches_the_base_repository(stack):
    """The attack as reported, from the fork's own `main` (as many contributors do), default
    configuration. Fails on main: the job took the fork's `main` for octo/calc's default branch,
    pushed `qwenfix/fix-…` with the fork's commits into octo/calc and opened a pull request into
    `main` from it."""
    gh = stack.github
    head = fork_pr(gh, branch="main")
    refs = gh.refs(REPO)
    stack.model.script(AGENT_FIX)
    job = stack.wait(fork_red_build(stack, head, branch="main"))
    assert job.state == "skipped", job.outcome
    assert "contributor/calc" in job.outcome and "repair.forks" in job.outcome
    assert job.pr_number == 7  # the pull request GitHub did not name was found
    assert_base_untouched(gh, refs)
    assert stack.model.requests == [] and gh.reviews(REPO, 7) == []


def test_with_repair_forks_on_a_fork_gets_suggestions_whatever_the_mode(stack):
    """`repair.forks: true` with `repair.mode: pull_request`: still only a suggestion review.
    Fails on main (a branch with the fork's commits was pushed into octo/calc)."""
    gh = stack.github
    head = fork_pr(gh, {"repair": {"forks": True, "mode": "pull_request"}})
    refs = gh.refs(REPO)
    stack.model.script(AGENT_FIX)
    job = stack.wait(fork_red_build(stack, head))
    assert job.state == "succeeded", job.outcome
    [review] = gh.reviews(REPO, 7)
    [suggestion] = review["comments"]
    assert suggestion["path"] == "calc.py" and SUGGESTION in suggestion["body"]
    assert_base_untouched(gh, refs)
    assert gh.pushes() == []  # nor to the fork: it does not allow maintainer edits
    [check] = gh.check_runs(REPO, head)
    assert check["conclusion"] == "success" and "suggestion review" in check["output"]["title"]


def test_a_red_build_whose_head_is_no_pull_request_or_base_branch_says_why_and_delivers_nothing(stack):
    """The fork's pull request is closed: its red build cannot be tied to an open pull request or
    to a branch of octo/calc. Fails on main (pushed and opened a pull request)."""
    gh = stack.github
    head = fork_pr(gh, {"repair": {"forks": True}}, state="closed")
    refs = gh.refs(REPO)
    stack.model.script(AGENT_FIX)
    job = stack.wait(fork_red_build(stack, head, run_id=951))
    assert job.state == "skipped", job.outcome
    [check] = gh.check_runs(REPO, head)
    assert check["status"] == "completed" and check["conclusion"] == "neutral"
    summary = check["output"]["summary"]
    assert "contributor/calc" in summary and "no patch" in summary.lower()
    assert gh.pushes() == [] and gh.refs(REPO) == refs and [p["number"] for p in gh.pulls(REPO)] == [7]
    assert stack.model.requests == []


def test_a_third_party_check_suite_on_a_fork_is_tied_to_its_pull_request(stack):
    """A check suite names no head repository and, for a fork, no pull request: the app finds the
    pull request by its head commit and applies the fork policy (`repair.mode: commit` cannot push
    to a fork without maintainer edits, nor to the base). Fails on main (pushed into octo/calc)."""
    gh = stack.github
    head = fork_pr(gh, {"repair": {"forks": True, "mode": "commit", "command": "python3 -m pytest -q"}})
    refs = gh.refs(REPO)
    run_id = gh.add_check_run(REPO, head, "jenkins / unit", app_slug="jenkins", title="1 test failed",
                              summary="FAILED tests/test_calc.py::test_add - assert -1 == 5")
    suite = gh.check_run_records[run_id]["check_suite_id"]
    stack.model.script(AGENT_FIX)
    payload = {
        "action": "completed", "installation": {"id": 1}, "repository": {"full_name": REPO},
        "sender": {"login": "jenkins[bot]", "type": "Bot"},
        "check_suite": {"id": suite, "head_sha": head, "head_branch": "feature", "conclusion": "failure",
                        "app": {"id": 999, "slug": "jenkins"}, "pull_requests": []},
    }
    job = stack.wait(stack.deliver("check_suite", payload).json()["job"])
    assert job.state == "succeeded", job.outcome
    assert job.pr_number == 7
    [review] = gh.reviews(REPO, 7)
    assert SUGGESTION in review["comments"][0]["body"]
    assert_base_untouched(gh, refs)


def maintainer_asks(stack, body: str = "/qwen fix") -> int:
    cid = stack.github.add_comment(REPO, 7, body, user="maintainer")
    return stack.deliver("issue_comment", comment_event(REPO, 7, cid, body, "maintainer")).json()["job"]


def test_qwen_fix_on_a_fork_without_maintainer_edits_gets_suggestions_and_no_push(stack):
    """A maintainer's `/qwen fix` on a fork that does not allow maintainer edits, with
    `repair.mode: pull_request` in the configuration: suggestions, nothing pushed anywhere.
    (This one already held on main; kept as the policy's regression test.)"""
    gh = stack.github
    head = fork_pr(gh, {"repair": {"mode": "pull_request"}})
    gh.add_workflow_run(REPO, 952, head, jobs=[failing_job(9520)], head_branch="feature", head_repository=FORK)
    refs = gh.refs(REPO)
    stack.model.script(AGENT_FIX)
    job = stack.wait(maintainer_asks(stack))
    assert job.state == "succeeded", job.outcome
    [review] = gh.reviews(REPO, 7)
    assert SUGGESTION in review["comments"][0]["body"]
    assert gh.pushes() == []
    assert_base_untouched(gh, refs)


def test_qwen_fix_on_a_pull_request_whose_fork_was_deleted_pushes_nothing(stack):
    """GitHub sends `head.repo: null` once the fork is deleted. Fails on main: with no head
    repository the pull request looked like a same-repository one and the fix was pushed to a
    branch `feature` of octo/calc."""
    gh = stack.github
    head = fork_pr(gh, head_repo_deleted=True)
    gh.add_workflow_run(REPO, 953, head, jobs=[failing_job(9530)], head_branch="feature", head_repository=FORK)
    refs = gh.refs(REPO)
    stack.model.script(AGENT_FIX)
    job = stack.wait(maintainer_asks(stack))
    assert job.state == "succeeded", job.outcome
    assert gh.pushes() == []
    assert_base_untouched(gh, refs)
    [review] = gh.reviews(REPO, 7)
    assert SUGGESTION in review["comments"][0]["body"]
