"""Budgets: the operator's defaults, lowered (never raised) by the organization; the first budget that
stops a job, with its limit and when it resets; what a scope spent, read from the database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from core.budgets import Limits, Spent, effective, exceeded, parse_org_budgets, resets_at, spent
from core.config import Settings
from core.db.models import Job, ModelCall
from core.db.session import session_scope

NOW = datetime(2026, 12, 31, 15, 30, tzinfo=timezone.utc)


def test_an_organization_may_lower_budgets_but_never_raise_them():
    settings = Settings(_env_file=None, budget_org_tokens_per_day=1000, budget_repo_concurrent_jobs=2)
    org, error = parse_org_budgets({"organization": {"tokens_per_day": 5000, "cost_per_month": 20},
                                    "repository": {"concurrent_jobs": 1}})
    assert error is None
    limits, ignored = effective(settings, org)
    assert limits["organization"].tokens_per_day == 1000  # the raise is ignored ...
    assert ignored == ["budgets.organization.tokens_per_day: 5000 is above the operator's 1000"]
    assert limits["organization"].cost_per_month == 20  # ... a limit where the operator set none applies
    assert limits["repository"].concurrent_jobs == 1


def test_a_bad_organization_file_names_the_field_and_lowers_nothing():
    org, error = parse_org_budgets({"repository": {"tokens_per_dya": 5}})
    assert org is None and error.startswith("budgets.repository.tokens_per_dya")
    assert parse_org_budgets({"organization": {"cost_per_day": -1}})[1].startswith("budgets.organization.cost_per_day")


def test_the_first_exceeded_budget_names_its_limit_and_when_it_resets():
    limits = Limits(tokens_per_day=1000, concurrent_jobs=2, repair_jobs_per_day=5)
    refusal = exceeded("repository", "octo/calc", limits, Spent(tokens_today=1200), NOW, starting=False, repair=True)
    assert refusal.budget == "tokens_per_day" and refusal.limit == 1000 and refusal.used == 1200
    assert refusal.resets_at == datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert refusal.describe() == "the daily token budget of repository octo/calc (1,000 tokens; 1,200 used)"
    assert exceeded("repository", "octo/calc", limits, Spent(tokens_today=999), NOW, False, True) is None
    # job budgets only count when the job starts; the repair budget only for repairs
    busy = Spent(running_jobs=2, repair_jobs_today=5)
    assert exceeded("organization", "octo", limits, busy, NOW, starting=False, repair=True) is None
    assert exceeded("organization", "octo", limits, busy, NOW, starting=True, repair=True).waits
    assert exceeded("organization", "octo", Limits(repair_jobs_per_day=5), busy, NOW, True, False) is None
    assert exceeded("organization", "octo", Limits(repair_jobs_per_day=5), busy, NOW, True, True).budget == "repair_jobs_per_day"


def test_month_budgets_reset_on_the_first_of_the_next_month():
    assert resets_at("cost_per_month", NOW) == datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert resets_at("tokens_per_month", datetime(2026, 3, 5, tzinfo=timezone.utc)) == datetime(2026, 4, 1, tzinfo=timezone.utc)
    assert resets_at("concurrent_jobs", NOW) is None


def test_spent_adds_up_model_usage_and_counts_other_jobs(database_url):
    now = datetime.now(timezone.utc)
    with session_scope(database_url) as session:
        session.add_all([
            ModelCall(installation_id=1, repo="octo/a", model="m", prompt_tokens=100, completion_tokens=10, cost=0.5, at=now),
            ModelCall(installation_id=1, repo="octo/b", model="m", prompt_tokens=200, completion_tokens=20, cost=None, at=now),
            ModelCall(installation_id=1, repo="octo/a", model="m", prompt_tokens=1000, completion_tokens=0, cost=1.0,
                      at=now - timedelta(days=40)),  # last month or before: not counted
            ModelCall(installation_id=2, repo="else/x", model="m", prompt_tokens=5, completion_tokens=5, at=now),
        ])
        for i, (repo, state, kind) in enumerate([("octo/a", "running", "repair"), ("octo/b", "running", "review"),
                                                 ("octo/a", "succeeded", "fix"), ("octo/a", "skipped", "repair")]):
            session.add(Job(kind=kind, installation_id=1, repo=repo, state=state, trigger="t",
                            idempotency_key=f"k{i}", started_at=now))
    with session_scope(database_url) as session:
        org = spent(session, "organization", 1, "octo/a", now)
        repo = spent(session, "repository", 1, "octo/a", now, job_id=1)
    if now.day > 1 or now.hour:  # the first call counts this month too, unless that is still today
        assert org.tokens_today == 330 and org.cost_today == 0.5
    assert org.running_jobs == 2 and org.repair_jobs_today == 2
    assert repo.tokens_today == 110 and repo.running_jobs == 0 and repo.repair_jobs_today == 1
