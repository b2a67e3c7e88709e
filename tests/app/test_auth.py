"""Signing in with GitHub, end to end against the fake GitHub: the state is checked, the cookie is
HttpOnly, SameSite=Lax and Secure over https, signing out ends the session on the server, what
GitHub says a person may read is reused for minutes (not forever), and an expired GitHub token is
renewed with its refresh token."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from app import sessions
from app.main import create_app
from core.db.models import Job, Person, WebSession
from core.db.session import session_scope
from tests.support.people import BASE, csrf_of, sign_in

DEAD_BROKER = "redis://127.0.0.1:1/0"


@pytest.fixture
def app_for(fake_github, make_settings, database_url):
    fake_github.add_installation(1, "octo")
    fake_github.add_repo("octo/app", installation_id=1, private=True)
    fake_github.set_permission("octo/app", "reader", "read")
    with session_scope(database_url) as session:
        session.add(Job(kind="repair", installation_id=1, repo="octo/app", trigger="t", idempotency_key="k",
                        state="failed"))

    def make(**overrides):
        values = dict(database_url=database_url, broker_url=DEAD_BROKER, public_url=BASE,
                      app_id=str(fake_github.app_id), private_key=fake_github.private_key_pem,
                      github_api_url=fake_github.url, github_url=fake_github.server_url,
                      client_id=fake_github.client_id, client_secret=fake_github.client_secret)
        values.update(overrides)
        settings = make_settings(**values)
        return settings, create_app(settings, sweep=False)

    return make


def test_sign_in_sets_a_signed_httponly_lax_cookie_and_returns_where_the_person_was_going(app_for, fake_github):
    _, app = app_for()
    with TestClient(app) as client:
        first = client.get("/jobs/1", follow_redirects=False)
        assert first.headers["location"] == "/login?next=%2Fjobs%2F1"
        login_page = client.get(first.headers["location"]).text
        assert 'href="/auth/github?next=%2Fjobs%2F1"' in login_page
        done = sign_in(client, fake_github, "reader", next_path="/jobs/1")
        assert done.status_code == 303 and done.headers["location"] == "/jobs/1"
        cookie = [v for k, v in done.headers.multi_items() if k == "set-cookie" and v.startswith("qwenfix_session=")][0]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
        page = client.get("/jobs/1")
        assert page.status_code == 200 and 'id="who">reader<' in page.text
    with session_scope(app.state.settings.database_url) as session:
        person = session.get(Person, "reader")
        assert person.github_id > 0 and "ghu_" not in person.credentials  # kept encrypted


def test_cookies_are_secure_when_people_reach_the_app_over_https(app_for, fake_github):
    _, app = app_for(public_url="https://testserver")
    with TestClient(app, base_url="https://testserver") as client:
        done = sign_in(client, fake_github, "reader")
        cookie = [v for k, v in done.headers.multi_items() if k == "set-cookie" and v.startswith("qwenfix_session=")][0]
        assert "Secure" in cookie and "HttpOnly" in cookie
        assert client.get("/jobs/1").status_code == 200


def test_a_callback_with_another_state_is_refused(app_for, fake_github):
    settings, app = app_for()
    with TestClient(app) as client, TestClient(app) as other_browser:
        start = client.get("/auth/github", follow_redirects=False).headers["location"]
        state = start.split("state=")[1]
        forged = other_browser.get("/auth/callback", params={"code": "x", "state": state})  # no state cookie
        assert forged.status_code == 400 and "expired or was opened in another browser" in forged.text
        wrong = client.get("/auth/callback", params={"code": "x", "state": "not-" + state})
        assert wrong.status_code == 400
    assert not fake_github.calls("POST", "/login/oauth/access_token")
    with session_scope(settings.database_url) as session:
        assert session.query(WebSession).count() == 0


def test_only_paths_on_this_site_are_followed_after_sign_in(app_for, fake_github):
    _, app = app_for()
    with TestClient(app) as client:
        assert sign_in(client, fake_github, "reader", next_path="//evil.example/x").headers["location"] == "/"


def test_signing_out_ends_the_session_on_the_server(app_for, fake_github):
    _, app = app_for()
    with TestClient(app) as client:
        sign_in(client, fake_github, "reader")
        stolen = client.cookies.get("qwenfix_session")
        page = client.get("/jobs").text
        out = client.post("/logout", data={"csrf": csrf_of(page)}, follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert client.get("/jobs", follow_redirects=False).status_code == 303
    with TestClient(app, cookies={"qwenfix_session": stolen}) as replay:
        assert replay.get("/api/jobs").status_code == 401
        assert replay.get("/jobs/1", follow_redirects=False).headers["location"].startswith("/login")


def test_what_github_says_is_reused_for_minutes_not_forever(app_for, fake_github):
    _, app = app_for(access_cache_s=1.0)
    with TestClient(app) as client:
        sign_in(client, fake_github, "reader")
        assert client.get("/api/jobs/1").status_code == 200
        fake_github.set_permission("octo/app", "reader", "none")  # removed from the repository
        assert client.get("/api/jobs/1").status_code == 200  # still within the cache
        time.sleep(1.2)
        assert client.get("/api/jobs/1").status_code == 404


def test_an_expired_github_token_is_renewed_with_its_refresh_token(app_for, fake_github):
    fake_github.user_token_ttl = 61  # githubkit renews a minute early: this one is stale in a second
    settings, app = app_for(access_cache_s=0.0)
    with TestClient(app) as client:
        sign_in(client, fake_github, "reader")
        time.sleep(1.2)
        assert client.get("/api/jobs/1").status_code == 200
    refreshes = [c for c in fake_github.calls("POST", "/login/oauth/access_token")
                 if (c.json or {}).get("grant_type") == "refresh_token"]
    assert len(refreshes) == 1
    with session_scope(settings.database_url) as session:
        kept = sessions.credentials_of(session, settings, "reader")
    assert kept.refresh_token != refreshes[0].json["refresh_token"]  # the renewed pair was kept
    assert kept.token in fake_github.user_tokens and not fake_github.user_tokens[kept.token].expired
