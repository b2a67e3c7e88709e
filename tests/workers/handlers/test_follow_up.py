"""Delivered fixes followed through GitHub's own events, end to end (webhook → worker → fake GitHub):
a suggestion applied by a later push, a fix commit that goes red in CI and is then merged, a fix pull
request merged; the `qwenfix report` table for those jobs; and the ways a fix is rejected."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.repos import BASE_FILES, BROKEN_CALC, FIXED_CALC, failing_job
from tests.support.db import ROOT
from tests.workers.handlers.test_red_build import AGENT_FIX
from workers.github.messages import marker

pytestmark = pytest.mark.docker
BOT = "qwenfix[bot]"


def open_pr(gh, repo: str, number: int, branch: str, config: dict) -> str:
    if repo not in gh.repos:
        gh.add_repo(repo, {**BASE_FILES, ".github/qwen.yml": yaml.safe_dump(config)})
    head = gh.push(repo, branch, {"calc.py": BROKEN_CALC}, "Refactor add", parent_branch="main")
    gh.add_pull(repo, number, head_ref=branch, base_ref="main")
    return head


def ci(stack, repo: str, run_id: int, sha: str, prs: tuple, branch: str, red: bool = True, actor: str = "contributor"):
    """A finished CI run on ``sha``, as GitHub reports it; returns the job the delivery made, if any."""
    jobs = [failing_job(run_id * 10)] if red else []
    stack.github.add_workflow_run(repo, run_id, sha, jobs=jobs, pull_numbers=prs, head_branch=branch,
                                  conclusion="failure" if red else "success", actor=actor)
    sender_type = "Bot" if actor.endswith("[bot]") else "User"
    return stack.deliver("workflow_run", stack.github.workflow_run_event(run_id, actor, sender_type)).json()["job"]


def follow_ups(stack) -> list:
    return [j for j in stack.jobs() if j.kind == "follow_up"]


def settle(stack, count: int) -> list:
    """Wait for the follow-up jobs so far (there should be ``count``)."""
    jobs = follow_ups(stack)
    assert len(jobs) == count, [(j.trigger, j.head_sha) for j in jobs]
    return [stack.wait(j.id) for j in jobs]


def outcome_of(stack, job_id: int) -> dict:
    from core.db.models import FixOutcome
    from core.db.session import session_scope

    with session_scope(stack.settings.database_url) as session:
        return session.query(FixOutcome).filter_by(job_id=job_id).one().as_dict()


def test_three_fixes_are_followed_to_their_outcomes_and_reported(stack):
    gh = stack.github
    stack.model.script(AGENT_FIX)

    # 1. suggestions, applied by the author's next push ("Commit suggestion"), then green CI
    head = open_pr(gh, "octo/calc", 7, "feature", {"repair": {"candidates": 1}})
    suggested = stack.wait(ci(stack, "octo/calc", 900, head, (7,), "feature"))
    assert suggested.state == "succeeded" and suggested.result["delivery"]["how"] == "a suggestion review"
    [review] = gh.reviews("octo/calc", 7)
    assert "Now passing (1): `tests/test_calc.py::test_add`" in review["body"]  # the evidence travels too
    applied = gh.push("octo/calc", "feature", {"calc.py": FIXED_CALC}, "Apply suggestions from code review")
    gh.add_workflow_run("octo/calc", 901, applied, jobs=[], pull_numbers=(7,), head_branch="feature",
                        conclusion="success")  # CI finished before the follow-up ran: read through the API
    stack.deliver("pull_request", gh.pull_request_event("octo/calc", 7, "synchronize", before=head))
    stack.deliver("push", gh.push_event("octo/calc", "feature", head, applied))  # the same head: no second job
    [job] = settle(stack, 1)
    assert job.state == "succeeded" and f"job {suggested.id}'s fix: accepted" in job.outcome
    # GitHub resolves the thread of an applied suggestion: the fix is settled, nothing more to follow
    [comment] = review["comments"]
    stack.deliver("pull_request_review_thread", gh.review_thread_event("octo/calc", 7, [comment["id"]], "resolved"))
    settle(stack, 1)
    first = outcome_of(stack, suggested.id)
    assert (first["how"], first["verdict"], first["ci"], first["ci_sha"]) == ("suggest", "accepted", "green", applied)
    assert first["blocks"][0]["state"] == "applied" and first["verdict_reason"] == "1 of 1 suggested change applied"

    # 2. a fix commit that goes red in CI: recorded as its outcome, and repaired again only within the cap
    head = open_pr(gh, "octo/calc-commit", 7, "feature",
                   {"repair": {"mode": "commit", "candidates": 1, "max_attempts_per_day": 1}})
    committed = stack.wait(ci(stack, "octo/calc-commit", 910, head, (7,), "feature"))
    fix_sha = committed.result["delivery"]["commit_sha"]
    requests = len(stack.model.chat_requests())
    again = stack.wait(ci(stack, "octo/calc-commit", 911, fix_sha, (7,), "feature", actor=BOT))
    assert again.state == "skipped" and "attempt cap" in again.outcome
    assert len(stack.model.chat_requests()) == requests
    second = outcome_of(stack, committed.id)
    assert (second["ci"], second["ci_sha"], second["ci_detail"]) == ("red", fix_sha, "CI run 911")
    # ... the app's own push told back through GitHub's events starts nothing
    assert stack.deliver("push", gh.push_event("octo/calc-commit", "feature", head, fix_sha, BOT, "Bot")).json()["job"] is None
    assert stack.deliver("pull_request", gh.pull_request_event("octo/calc-commit", 7, "synchronize", BOT, head, "Bot")
                         ).json()["job"] is None
    # ... and when the pull request merges with the fix commit in it, the fix was accepted
    gh.merge_pull("octo/calc-commit", 7)
    stack.deliver("pull_request", gh.pull_request_event("octo/calc-commit", 7, "closed", sender="maintainer"))
    settle(stack, 2)
    second = outcome_of(stack, committed.id)
    assert (second["verdict"], second["verdict_reason"]) == ("accepted", "merged with the fix commit in the branch")

    # 3. a fix pull request for the default branch, green in CI, merged
    gh.add_repo("octo/calc-main", {**BASE_FILES, ".github/qwen.yml": yaml.safe_dump({"repair": {"candidates": 1}})})
    broken = gh.push("octo/calc-main", "main", {"calc.py": BROKEN_CALC}, "Break add")
    opened = stack.wait(ci(stack, "octo/calc-main", 920, broken, (), "main"))
    [pull] = gh.pulls("octo/calc-main")
    assert pull["user"]["login"] == BOT and marker(opened.id) in pull["body"] and "**Evidence**" in pull["body"]
    assert ci(stack, "octo/calc-main", 921, pull["head"]["sha"], (pull["number"],), pull["head"]["ref"],
              red=False, actor=BOT) is None
    gh.merge_pull("octo/calc-main", pull["number"])
    stack.deliver("pull_request", gh.pull_request_event("octo/calc-main", pull["number"], "closed", "maintainer"))
    settle(stack, 3)
    third = outcome_of(stack, opened.id)
    assert (third["how"], third["verdict"], third["ci"]) == ("pull_request", "accepted", "green")
    assert third["verdict_reason"] == f"fix pull request #{pull['number']} merged"

    # the report's table for those jobs
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "QWENFIX_DATABASE_URL": stack.settings.database_url}
    out = subprocess.run([sys.executable, "-m", "app.cli", "report", "--since", "30d"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [line.split(" | ")[:7] for line in out.stdout.splitlines()[2:]]
    assert rows == [["| octo/calc", "qwen3-coder-test", "1", "1", "0", "1", "0"],
                    ["| octo/calc-commit", "qwen3-coder-test", "1", "1", "0", "0", "1"],
                    ["| octo/calc-main", "qwen3-coder-test", "1", "1", "0", "1", "0"]]
    as_json = subprocess.run([sys.executable, "-m", "app.cli", "report", "--format", "json", "--repo", "octo/calc"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    [row] = json.loads(as_json.stdout)
    assert row["tokens_per_accepted_fix"] == suggested.usage["tokens"] and row["median_red_to_fix_s"] > 0


def test_a_dismissed_suggestion_and_an_overwritten_fix_commit_are_rejected(stack):
    gh = stack.github
    stack.model.script(AGENT_FIX)
    head = open_pr(gh, "octo/calc", 7, "feature", {"repair": {"candidates": 1}})
    suggested = stack.wait(ci(stack, "octo/calc", 930, head, (7,), "feature"))
    [comment] = gh.reviews("octo/calc", 7)[0]["comments"]
    stack.deliver("pull_request_review_thread", gh.review_thread_event("octo/calc", 7, [comment["id"]], "resolved"))
    settle(stack, 1)
    dismissed = outcome_of(stack, suggested.id)
    assert dismissed["verdict"] == "rejected" and "dismissed without applying" in dismissed["verdict_reason"]

    head = open_pr(gh, "octo/calc-commit", 7, "feature", {"repair": {"mode": "commit", "candidates": 1}})
    committed = stack.wait(ci(stack, "octo/calc-commit", 940, head, (7,), "feature"))
    fix_sha = committed.result["delivery"]["commit_sha"]
    # the author force-pushes their own version over the fix commit
    theirs = gh.push("octo/calc-commit", "feature", {"calc.py": "def add(a, b):\n    return sum((a, b))\n"},
                     "Rewrite add", parent_branch="main")
    stack.deliver("push", gh.push_event("octo/calc-commit", "feature", fix_sha, theirs, forced=True))
    settle(stack, 2)
    overwritten = outcome_of(stack, committed.id)
    assert (overwritten["verdict"], overwritten["verdict_reason"]) == (
        "rejected", f"overwritten by a later push ({theirs[:7]})")
