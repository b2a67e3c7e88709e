"""GitHub's rate limits as GitHub documents them, read by core.ratelimits and obeyed by the real
githubkit client talking to the fake GitHub."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from core.config import Settings
from core.db.models import GitHubBudget
from core.db.session import session_scope
from core.github import GitHubApp
from core.ratelimits import RateLimits, limit_of
from tests.support.people import api_token

REPO = "octo/app"
SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."


def test_which_responses_are_rate_limits_and_how_long_to_wait():
    now = 1_000_000.0
    # secondary: 403 with the documented message, or 429 — Retry-After first
    assert limit_of(403, {"retry-after": "30"}, SECONDARY, now, 60).wait_s == 30
    assert limit_of(429, {"retry-after": "5"}, "", now, 60).kind == "secondary"
    # ... else until the reset when nothing is left
    assert limit_of(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(now) + 90)}, SECONDARY,
                    now, 60).wait_s == 90
    # ... else at least the minimum, doubling with each repeat
    assert limit_of(403, {}, SECONDARY, now, 60).wait_s == 60
    assert limit_of(429, {}, "", now, 60, repeats=2).wait_s == 240
    assert limit_of(403, {}, "You have triggered an abuse detection mechanism.", now, 60).kind == "secondary"
    # primary: nothing left in the hour
    primary = limit_of(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(now) + 600)},
                       "API rate limit exceeded for installation ID 7.", now, 60)
    assert primary.kind == "primary" and primary.wait_s == 600
    # a plain 403 is a refusal, not a limit; other statuses are neither
    assert limit_of(403, {"x-ratelimit-remaining": "4000"}, "Resource not accessible by integration", now, 60) is None
    assert limit_of(502, {"retry-after": "5"}, "", now, 60) is None


@pytest.fixture
def gh(fake_github):
    fake_github.add_installation(7, "octo")
    fake_github.add_repo(REPO, {"README.md": "hello\n"}, installation_id=7)
    fake_github.add_issue(REPO, 1)
    return fake_github


class VirtualTime:
    """Waits are recorded and skipped: the clock jumps instead."""

    def __init__(self) -> None:
        self.offset, self.waits = 0.0, []

    def now(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.offset += seconds


def app_for(fake, tmp_path, **overrides) -> tuple[GitHubApp, list[float]]:
    values = dict(app_id=str(fake.app_id), private_key=fake.private_key_pem, github_api_url=fake.url,
                  data_dir=tmp_path / "data", github_secondary_backoff_s=0.2, github_write_interval_s=0.0)
    values.update(overrides)
    app = GitHubApp(Settings(_env_file=None, **values))
    virtual = VirtualTime()
    app.limits = RateLimits(app.settings, clock=virtual.now, sleep=virtual.sleep)
    return app, virtual.waits


def test_secondary_limits_are_waited_out_then_retried(gh, tmp_path):
    app, waits = app_for(gh, tmp_path)
    client = app.installation_client(7, REPO)
    gh.fail_next("GET", f"/repos/{REPO}", 403, message=SECONDARY, times=2)  # no Retry-After at all
    gh.fail_next("GET", f"/repos/{REPO}", 429, {"retry-after": "3"})
    assert client.rest.repos.get("octo", "app").status_code == 200
    assert [r.status for r in gh.calls("GET", f"/repos/{REPO}")] == [403, 403, 429, 200]
    assert waits == [pytest.approx(0.2, abs=0.05), pytest.approx(0.4, abs=0.05), pytest.approx(3, abs=0.1)]
    assert client.rest.repos.get("octo", "app").status_code == 200 and len(waits) == 3  # the pause is over


def test_no_request_is_sent_once_the_hour_is_spent_until_it_resets(gh, tmp_path):
    app, waits = app_for(gh, tmp_path)
    client = app.installation_client(7, REPO)
    gh.set_rate_limit(7, remaining=1, reset_in=120)
    assert client.rest.repos.get("octo", "app").status_code == 200  # the last one: remaining 0 now
    assert waits == []
    gh.set_rate_limit(7, remaining=5000, reset_in=3600)  # (the fake resets; the client still waits)
    assert client.rest.repos.get("octo", "app").status_code == 200
    assert waits == [pytest.approx(120, abs=2)]
    assert [r.status for r in gh.calls("GET", f"/repos/{REPO}")] == [200, 200]  # never a 403


def test_content_creating_requests_go_one_at_a_time_per_installation(gh, tmp_path):
    settings = dict(github_write_interval_s=0.3)
    apps = [app_for(gh, tmp_path, **settings)[0] for _ in range(2)]  # two processes' worth
    for app in apps:
        app.limits = RateLimits(app.settings)  # real time

    def post(app, n):
        client = app.installation_client(7, REPO)
        client.rest.issues.create_comment("octo", "app", 1, body=f"comment {n}")

    threads = [threading.Thread(target=post, args=(apps[n % 2], n)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    posts = gh.calls("POST", f"/repos/{REPO}/issues/1/comments")
    assert len(posts) == 4
    gaps = [b.received_at - a.received_at for a, b in zip(posts, posts[1:], strict=False)]
    assert min(gaps) >= 0.29  # serial and spaced, across both apps (a file lock in the data dir)


def test_the_budget_is_recorded_and_shown_on_the_dashboard(gh, tmp_path, make_settings, database_url):
    app, _ = app_for(gh, tmp_path, database_url=database_url)
    app.limits = RateLimits(app.settings, record=True)
    client = app.installation_client(7, REPO)
    gh.set_rate_limit(7, remaining=3, reset_in=600)
    client.rest.repos.get("octo", "app")
    with session_scope(database_url) as session:
        budget = session.get(GitHubBudget, 7)
        assert (budget.limit, budget.remaining, budget.used) == (5000, 2, 4998)
    settings = make_settings(database_url=database_url, admins="operator")
    admin = api_token(settings, "operator")  # the budgets are the operator's view
    with TestClient(create_app(settings, sweep=False)) as web:
        assert web.get("/api/budgets").status_code == 401  # nobody signed in
        assert web.get("/api/budgets", headers=admin).json()["budgets"][0]["remaining"] == 2
        page = web.get("/jobs", headers=admin).text
        assert "GitHub request budget" in page and "4998" in page
