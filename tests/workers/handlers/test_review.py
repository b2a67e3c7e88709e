"""Pull request review end to end: webhook → worker → the scripted model → one review on GitHub."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.repos import BASE_FILES, REPO
from tests.support.fake_openai import text
from workers.review.findings import parse_review

pytestmark = pytest.mark.docker  # the stack fixture starts the whole service

FEATURE = "def add(a, b):\n    return a + b\n\n\ndef ratio(a, b):\n    return a / b\n"
RATIO_LINE = FEATURE.splitlines().index("    return a / b") + 1
ON = {"review": {"enabled": True}}


def opened(stack, config=ON, draft=False, action="opened", delivery=None):
    gh = stack.github
    if REPO not in gh.repos:
        files = dict(BASE_FILES)
        if config is not None:
            files[".github/qwen.yml"] = yaml.safe_dump(config)
        gh.add_repo(REPO, files)
        head = gh.push(REPO, "feature", {"calc.py": FEATURE}, parent_branch="main")
        gh.add_pull(REPO, 7, head_ref="feature", base_ref="main", title="Add ratio()", draft=draft)
    head = gh.ref(REPO, "refs/heads/feature")
    payload = {
        "action": action, "number": 7, "installation": {"id": 1},
        "repository": {"full_name": REPO, "name": "calc", "owner": {"login": "octo"}},
        "sender": {"login": "contributor", "type": "User"},
        "pull_request": {"number": 7, "draft": draft, "head": {"sha": head, "ref": "feature",
                                                                "repo": {"full_name": REPO}},
                         "base": {"ref": "main"}},
    }
    return head, stack.deliver("pull_request", payload, delivery).json()["job"]


def answer(findings, summary="Adds ratio()."):
    return text("```json\n" + json.dumps({"summary": summary, "findings": findings}) + "\n```")


def test_findings_land_on_their_diff_lines_and_the_rest_in_the_review_body(stack):
    gh = stack.github
    stack.model.script([answer([
        {"path": "calc.py", "line": RATIO_LINE, "severity": "bug", "message": "Dividing by zero raises."},
        {"path": "setup.py", "line": 3, "severity": "nit", "message": "Not part of this change."},
        {"path": "calc.py", "line": 0, "severity": "bug", "message": "no such line"},
    ])])
    head, job_id = opened(stack, delivery="review-delivery-1")
    job = stack.wait(job_id)
    assert job.state == "succeeded", job.outcome
    assert job.outcome == "reviewed: 1 inline comment(s), 1 in the summary"

    [review] = gh.reviews(REPO, 7)
    assert review["event"] == "COMMENT" and review["commit_id"] == head
    [comment] = review["comments"]
    assert (comment["path"], comment["line"], comment["side"]) == ("calc.py", RATIO_LINE, "RIGHT")
    assert "Bug" in comment["body"] and "Dividing by zero raises." in comment["body"]
    assert "Adds ratio()." in review["body"] and "`setup.py` line 3" in review["body"]
    assert f"/jobs/{job_id}" in review["body"]

    # the model saw the numbered diff as untrusted data, and the PR's title
    [request] = stack.model.chat_requests()
    prompt = request.messages[-1]["content"]
    assert f"{RATIO_LINE:>5} +    return a / b" in prompt and "<untrusted-data" in prompt and "Add ratio()" in prompt
    # a review, nothing else: no check run, no progress comment
    assert gh.check_runs(REPO, head) == [] and gh.bot_comments(REPO, 7) == []

    # the same delivery again: the same job, still one review
    _, again = opened(stack, delivery="review-delivery-1")
    assert again == job_id and len(gh.reviews(REPO, 7)) == 1 and len(stack.model.chat_requests()) == 1


def test_reviews_are_off_unless_the_repository_turns_them_on(stack):
    _, job_id = opened(stack, config=None)
    job = stack.wait(job_id)
    assert job.state == "skipped" and "review.enabled" in job.outcome
    assert stack.github.reviews(REPO, 7) == [] and stack.model.requests == []


def test_a_draft_waits_until_it_is_ready(stack):
    stack.model.script([answer([])])
    _, draft_job = opened(stack, draft=True)
    assert stack.wait(draft_job).state == "skipped" and "draft" in stack.job(draft_job).outcome
    _, ready_job = opened(stack, action="ready_for_review")
    job = stack.wait(ready_job)
    assert job.state == "succeeded", job.outcome
    [review] = stack.github.reviews(REPO, 7)
    assert review["comments"] == [] and "No inline comments." in review["body"]


def test_an_unreadable_answer_fails_the_job_and_says_why_on_the_pull_request(stack):
    stack.model.script([text("Looks good to me!"), text("Still no JSON, sorry.")])
    _, job_id = opened(stack)
    job = stack.wait(job_id)
    assert job.state == "failed" and "not the JSON asked for" in job.outcome
    [note] = stack.github.bot_comments(REPO, 7)
    assert "review failed" in note["body"] and "not the JSON asked for" in note["body"]
    assert stack.github.reviews(REPO, 7) == []
    assert len(stack.model.chat_requests()) == 2  # one correction, then it gave up


def test_the_answer_is_read_defensively():
    review = parse_review('Here you go: {"summary": "ok", "findings": [{"path": "b/x.py", "line": 2, '
                          '"severity": "critical", "message": "m"}, {"path": "y.py", "line": "3", "message": "m"}, '
                          '"junk"]}')
    assert review.summary == "ok"
    assert [(f.path, f.line, f.severity) for f in review.findings] == [("x.py", 2, "risk")]
    assert parse_review("no json here") is None and parse_review('{"findings": 3}') is None


def test_a_draft_reviewed_on_request_is_not_reviewed_again_when_ready(stack):
    stack.model.script([answer([])])
    _, draft_job = opened(stack, config={"review": {"enabled": True, "drafts": True}}, draft=True)
    assert stack.wait(draft_job).state == "succeeded", stack.job(draft_job).outcome
    _, ready_job = opened(stack, action="ready_for_review")
    job = stack.wait(ready_job)
    assert job.state == "skipped" and "already reviewed" in job.outcome
    assert len(stack.github.reviews(REPO, 7)) == 1 and len(stack.model.chat_requests()) == 1
