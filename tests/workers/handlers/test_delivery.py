"""Delivery under GitHub's limits and failures, end to end (webhook → Redis → Celery worker → Docker
sandbox → scripted model → fake GitHub): a rate limit is waited out in place, a transient failure
is retried without asking the model again, a failing progress post costs nothing."""

from __future__ import annotations

import pytest

from tests.repos import REPO
from tests.support.fake_openai import call, finish
from tests.workers.handlers.test_red_build import fail_run, setup_pr

pytestmark = pytest.mark.docker

AGENT_FIX = [
    call("edit_file", path="calc.py", old="return a - b", new="return a + b"),
    call("run", command="python3 -m pytest -q"),
    finish("add() subtracted instead of adding; it now returns a + b."),
]
ONE_CANDIDATE = {"repair": {"candidates": 1}}  # suggestions: the default on a pull request
REVIEWS = f"/repos/{REPO}/pulls/7/reviews"
SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."


def test_a_secondary_rate_limit_mid_delivery_is_waited_out_and_delivers_once(stack):
    """On main a 403 secondary rate limit without Retry-After was taken for a refusal and the job
    failed with an internal error; a failed progress post restarted the whole job."""
    gh = stack.github
    head = setup_pr(gh, ONE_CANDIDATE)
    stack.model.script(AGENT_FIX)
    gh.fail_next("POST", f"/repos/{REPO}/check-runs", 500, times=3)  # the first progress post fails
    gh.fail_next("POST", REVIEWS, 403, message=SECONDARY)  # documented message, no headers: ≥ the minimum
    gh.fail_next("POST", REVIEWS, 429, {"retry-after": "1"})
    job = stack.wait(fail_run(stack, head))
    assert job.state == "succeeded", job.outcome
    assert (job.attempts, job.retries) == (1, 0)  # waited in place: never back to the queue
    posts = gh.calls("POST", REVIEWS)
    assert [p.status for p in posts] == [403, 429, 200]
    assert posts[1].received_at - posts[0].received_at >= 0.5  # QWENFIX_GITHUB_SECONDARY_BACKOFF_S
    assert posts[2].received_at - posts[1].received_at >= 1.0  # Retry-After
    assert len(gh.reviews(REPO, 7)) == 1 and len(gh.bot_comments(REPO, 7)) == 1
    [check] = gh.check_runs(REPO, head)
    assert check["conclusion"] == "success"
    assert len(stack.model.chat_requests()) == len(AGENT_FIX)  # one candidate, asked once


def test_a_transient_failure_at_delivery_delivers_the_stored_patch_without_the_model(stack):
    """On main the retry restarted the whole job: the model was asked for a second patch."""
    gh = stack.github
    head = setup_pr(gh, ONE_CANDIDATE)
    stack.model.script(AGENT_FIX)
    gh.fail_next("POST", REVIEWS, 502, times=3)  # outlasts the client's quick retries
    job = stack.wait(fail_run(stack, head))
    assert job.state == "succeeded", job.outcome
    assert (job.attempts, job.retries) == (2, 1)
    assert [p.status for p in gh.calls("POST", REVIEWS)] == [502, 502, 502, 200]
    assert len(stack.model.chat_requests()) == len(AGENT_FIX)
    assert job.result["verified"]["patch"] and job.result["delivery"]["how"] == "a suggestion review"
    assert len(gh.reviews(REPO, 7)) == 1 and len(gh.bot_comments(REPO, 7)) == 1
    assert len(gh.check_runs(REPO, head)) == 1
