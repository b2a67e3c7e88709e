"""What events say about delivered fixes (pure, from payloads shaped as GitHub sends them)."""

from __future__ import annotations

from app.intents import Ignored, observe, route
from tests.webhook_payloads import base, pull_request, workflow_run

OWN = "qwenfix[bot]"


def test_ci_results_are_observed_even_on_the_apps_own_commits():
    seen = observe("workflow_run", workflow_run(conclusion="success", sha="f" * 40, sender=OWN, sender_type="Bot"),
                   "1", OWN)
    assert (seen.kind, seen.sha, seen.conclusion, seen.detail) == ("ci", "f" * 40, "success", "CI run 101")
    suite = {"id": 5, "head_sha": "e" * 40, "conclusion": "failure", "app": {"id": 9, "slug": "jenkins"}}
    assert observe("check_suite", {**base(), "action": "completed", "check_suite": suite}).kind == "ci"
    actions = {**suite, "app": {"id": 15368, "slug": "github-actions"}}  # seen through its workflow_run
    assert observe("check_suite", {**base(), "action": "completed", "check_suite": actions}) is None
    own = {**suite, "app": {"id": 1, "slug": "qwenfix"}}
    assert observe("check_suite", {**base(), "action": "completed", "check_suite": own}, "1", OWN) is None


def test_a_closed_pull_request_says_whether_it_merged():
    payload = pull_request(action="closed", number=4, sha="c" * 40, sender="maintainer")
    payload["pull_request"]["merged"] = True
    seen = observe("pull_request", payload, "1", OWN)
    assert (seen.kind, seen.pr_number, seen.sha, seen.merged, seen.branch) == ("closed", 4, "c" * 40, True, "feature")


def test_pushes_by_people_are_observed_and_the_apps_own_are_not():
    push = {**base(), "ref": "refs/heads/feature", "before": "a" * 40, "after": "b" * 40}
    assert observe("push", push, "1", OWN).branch == "feature"
    assert observe("push", {**push, "deleted": True}, "1", OWN) is None
    assert observe("push", {**push, "ref": "refs/tags/v1"}, "1", OWN) is None
    assert observe("push", {**push, **base(sender=OWN, sender_type="Bot")}, "1", OWN) is None
    assert observe("pull_request", pull_request(action="synchronize", sender=OWN, sender_type="Bot"), "1", OWN) is None


def test_a_resolved_thread_lists_its_comments():
    comment = {"id": 11, "pull_request_review_id": 22, "path": "calc.py", "line": 2, "body": "```suggestion"}
    payload = {**base(), "action": "resolved", "pull_request": {"number": 7},
               "thread": {"node_id": "PRRT_x", "comments": [comment]}}
    seen = observe("pull_request_review_thread", payload)
    assert (seen.kind, seen.pr_number, seen.resolved) == ("thread", 7, True)
    assert seen.comments == ({"id": 11, "review_id": 22, "path": "calc.py", "line": 2},)


def test_the_apps_own_pull_requests_start_no_review():
    routed = route("pull_request", pull_request(action="opened", sender=OWN, sender_type="Bot"), "d", "1", OWN)
    assert isinstance(routed, Ignored) and "qwenfix[bot] itself" in routed.reason
    assert route("pull_request", pull_request(action="opened"), "d", "1", OWN).kind == "review"
