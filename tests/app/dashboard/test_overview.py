"""The overview's numbers and chart, from job rows; and the page a signed-in person gets."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from fastapi.testclient import TestClient

from app.dashboard.overview import JobFacts, by_repository, chart_svg, per_day, tokens_of, totals
from app.main import create_app
from core.db.models import Job, utcnow
from core.db.session import session_scope
from tests.support.people import api_token

TODAY = date(2026, 3, 14)


def at(days_ago: int) -> datetime:
    return datetime(2026, 3, 14, 12, tzinfo=timezone.utc) - timedelta(days=days_ago)


def test_per_day_counts_successes_failures_and_tokens_in_the_window():
    jobs = [JobFacts("o/a", "succeeded", at(0), 1200), JobFacts("o/a", "failed", at(0), 300),
            JobFacts("o/b", "succeeded", at(2), 50), JobFacts("o/b", "skipped", at(2), 0),
            JobFacts("o/b", "succeeded", at(20), 999)]  # outside the 14 days
    days = per_day(jobs, TODAY, 14)
    assert len(days) == 14 and days[-1].day == TODAY and days[0].day == TODAY - timedelta(days=13)
    assert (days[-1].succeeded, days[-1].failed, days[-1].tokens, days[-1].rate) == (1, 1, 1500, 0.5)
    assert days[-3].rate == 1.0 and days[-2].rate is None
    assert totals(days) == {"succeeded": 2, "failed": 1, "rate": 2 / 3, "tokens": 1550}
    assert tokens_of({"prompt_tokens": 10, "completion_tokens": 5, "model_calls": 2}) == 15


def test_jobs_per_repository_busiest_first():
    rows = by_repository([("o/a", "failed", 1), ("o/b", "succeeded", 3), ("o/a", "running", 1), (None, "succeeded", 1)])
    assert [r[0] for r in rows] == ["o/b", "o/a", "(installation events)"]
    assert rows[1][1]["failed"] == 1 and rows[1][1]["running"] == 1 and rows[1][2] == 2


def test_chart_draws_a_bar_per_day_and_the_rate_line():
    days = per_day([JobFacts("o/a", "succeeded", at(i), 100 * (i + 1)) for i in range(3)]
                   + [JobFacts("o/a", "failed", at(1), 0)], TODAY, 7)
    svg = chart_svg(days)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<rect") == 7 and svg.count("<circle") == 3 and "<polyline" in svg
    assert "2026-03-13: 1 of 2 succeeded" in svg and "2026-03-14: 100 tokens" in svg
    assert "<script" not in svg


def test_overview_page_shows_repositories_states_and_the_chart(make_settings, database_url, github_app_key):
    settings = make_settings(database_url=database_url, broker_url="redis://127.0.0.1:1/0", admins="root",
                             app_id="1", private_key=github_app_key.private_key_pem)
    with session_scope(database_url) as session:
        for i, (repo, state) in enumerate([("octo/a", "succeeded"), ("octo/a", "failed"), ("octo/b", "running")]):
            session.add(Job(kind="repair", repo=repo, state=state, trigger="t", idempotency_key=f"k{i}",
                            created_at=utcnow(), usage={"prompt_tokens": 1000, "completion_tokens": 200}))
    with TestClient(create_app(settings, sweep=False)) as client:
        page = client.get("/", headers=api_token(settings, "root"))
    assert page.status_code == 200
    assert re.search(r'id="rate">50%<', page.text)
    assert "3,600" in page.text  # model tokens
    assert 'href="/jobs?repo=octo/a&amp;state=failed">1<' in page.text
    assert "<svg" in page.text and "<polyline" not in page.text  # one day with a rate: a dot, no line
