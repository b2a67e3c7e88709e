"""Budgets end to end: the organization lowers the operator's budgets in its `.github` repository; a job
over a tiny daily token budget stops before its next model request, the next ones do not start, make no
model request, and the pull request hears of it once a day, naming the budget, its limit and its reset."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from core import audit
from core.db.models import ModelCall, utcnow
from core.db.session import session_scope
from tests.repos import BROKEN_CALC, REPO, comment_event
from tests.support.fake_openai import rendered
from tests.workers.handlers.test_red_build import AGENT_FIX, fail_run, setup_pr
from workers.agent.tools import TOOL_SCHEMAS

pytestmark = pytest.mark.docker
ORG_FILE = {"budgets": {"repository": {"tokens_per_day": 1},  # lowers: the operator set no limit
                        "organization": {"concurrent_jobs": 50}}}


def budget_notices(gh, number: int) -> list[dict]:
    return [c for c in gh.bot_comments(REPO, number) if "over budget" in c["body"]]


def test_a_tiny_daily_budget_set_by_the_organization_stops_one_job_and_refuses_the_next(stack):
    gh = stack.github
    gh.add_repo("octo/.github", {"qwen.yml": yaml.safe_dump(ORG_FILE), "profile/README.md": "# octo\n"})
    head7 = setup_pr(gh, {"repair": {"mode": "commit", "candidates": 1}})
    head8 = gh.push(REPO, "other", {"calc.py": BROKEN_CALC}, "Break add elsewhere", parent_branch="main")
    gh.add_pull(REPO, 8, head_ref="other", base_ref="main")
    stack.model.script(AGENT_FIX)
    # another client's request left the tool definitions in the endpoint's prefix cache: the one
    # request of this test then has cached prompt tokens, priced at their own price
    stack.model.seen_prompts.append(rendered({"tools": TOOL_SCHEMAS}))

    # the first job makes one request (nothing is spent yet), then the budget is used up
    first = stack.wait(fail_run(stack, head8, run_id=910, pr_numbers=(8,), head_branch="other"))
    assert first.state == "failed" and first.outcome.startswith("over budget")
    assert len(stack.model.chat_requests()) == 1
    assert gh.ref(REPO, "refs/heads/other") == head8  # nothing delivered
    [stopped] = budget_notices(gh, 8)  # its own comment ends with the reason
    assert "stopped before its next model request" in stopped["body"]
    [check] = gh.check_runs(REPO, head8)
    assert check["conclusion"] == "neutral" and check["output"]["title"] == "Over budget"

    # the next job on another pull request does not start: one comment, no model request
    second = stack.wait(fail_run(stack, head7, run_id=911))
    assert second.state == "skipped" and "daily token budget of repository octo/calc" in second.outcome
    [notice] = budget_notices(gh, 7)
    body = notice["body"]
    assert "daily token budget of repository octo/calc (1 token;" in body
    assert "did not start; no model request was made" in body and "It resets at " in body and "00:00 UTC" in body
    assert gh.check_runs(REPO, head7) == []

    # a third job on that pull request the same day: refused, and nothing more is posted
    gh.set_permission(REPO, "maintainer", "write")
    cid = gh.add_comment(REPO, 7, "/qwen fix")
    third = stack.wait(stack.deliver("issue_comment", comment_event(REPO, 7, cid, "/qwen fix")).json()["job"])
    assert third.state == "skipped" and third.outcome.startswith("over budget")
    assert budget_notices(gh, 7) == [notice] and len(gh.bot_comments(REPO, 7)) == 1
    assert len(stack.model.chat_requests()) == 1

    # the one request's cost: the usage the endpoint reported, at the operator's prices
    with session_scope(stack.settings.database_url) as session:
        [used] = session.query(ModelCall).all()
    assert used.prompt_tokens > 1 and used.cached_tokens > 0
    expected = ((used.prompt_tokens - used.cached_tokens) * 2.0 + used.cached_tokens * 0.5
                + used.completion_tokens * 8.0) / 1_000_000
    assert used.cost == pytest.approx(expected) and stack.job(first.id).usage["cost"] == pytest.approx(expected)


@pytest.fixture
def stack_settings() -> dict:
    return {"llm_prices": {"qwen3-coder-test": {"input": 2.0, "cached_input": 0.5, "output": 8.0}}}


class TestTheOperatorsBudget:
    @pytest.fixture
    def stack_settings(self) -> dict:
        return {"budget_repo_tokens_per_day": 1}

    def test_an_organization_cannot_raise_it(self, stack):
        gh = stack.github
        gh.add_repo("octo/.github", {"qwen.yml": yaml.safe_dump({"budgets": {"repository": {"tokens_per_day": 10**9}}})})
        head = setup_pr(gh, {"repair": {"mode": "commit", "candidates": 1}})
        stack.model.script(AGENT_FIX)
        job = stack.wait(fail_run(stack, head))
        assert job.state == "failed" and "(1 token;" in job.outcome
        assert len(stack.model.chat_requests()) == 1
        with session_scope(stack.settings.database_url) as session:
            [org] = [r for r in audit.export(session, utcnow() - timedelta(hours=1), job_id=job.id)
                     if r["kind"] == "config" and r["data"]["path"] == "octo/.github:qwen.yml"]
        assert org["data"]["found"] and org["data"]["ignored"] == [
            "budgets.repository.tokens_per_day: 1000000000 is above the operator's 1"]
