"""Retry and stop from the job page: only people GitHub says may write to the repository (asked
afresh on every POST), only with the page's CSRF token, and with the effect of `/qwen retry` and
`/qwen stop`."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from core import installations
from core.db.models import Job
from core.db.session import session_scope
from tests.support.people import BASE, csrf_of, sign_in

DEAD_BROKER = "redis://127.0.0.1:1/0"


@pytest.fixture
def site(fake_github, make_settings, database_url):
    fake_github.add_installation(1, "octo")
    fake_github.add_repo("octo/app", installation_id=1, private=True)
    fake_github.set_permission("octo/app", "writer", "write")
    fake_github.set_permission("octo/app", "reader", "read")
    settings = make_settings(
        database_url=database_url, broker_url=DEAD_BROKER, public_url=BASE,
        app_id=str(fake_github.app_id), private_key=fake_github.private_key_pem,
        github_api_url=fake_github.url, github_url=fake_github.server_url,
        client_id=fake_github.client_id, client_secret=fake_github.client_secret)
    with session_scope(database_url) as session:
        for state, key in (("failed", "done"), ("running", "busy")):
            session.add(Job(kind="repair", installation_id=1, repo="octo/app", pr_number=7, head_sha="a" * 40,
                            trigger="workflow:ci", idempotency_key=key, state=state,
                            params={"run_id": 5, "source": "workflow_run"}))
    with TestClient(create_app(settings, sweep=False)) as client:
        yield client, settings


def job(settings, job_id) -> Job:
    with session_scope(settings.database_url) as session:
        return session.get(Job, job_id)


def test_a_writer_retries_a_finished_job_as_a_new_one(site, fake_github):
    client, settings = site
    sign_in(client, fake_github, "writer")
    page = client.get("/jobs/1").text
    assert 'id="retry"' in page and 'id="stop"' not in page
    answer = client.post("/jobs/1/retry", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/jobs/3"
    again = job(settings, 3)
    assert (again.kind, again.repo, again.pr_number, again.head_sha, again.state) == \
        ("repair", "octo/app", 7, "a" * 40, "queued")
    assert again.params == {"run_id": 5, "source": "workflow_run", "retry_of": 1, "retried_by": "writer"}
    assert again.enqueued_at is None  # the broker is down here: the sweep hands it over
    assert client.get("/jobs/3").status_code == 200


def test_a_writer_stops_a_running_job(site, fake_github):
    client, settings = site
    sign_in(client, fake_github, "writer")
    page = client.get("/jobs/2").text
    assert 'id="stop"' in page and 'id="retry"' not in page
    assert client.post("/jobs/2/stop", data={"csrf": csrf_of(page)}, follow_redirects=False).status_code == 303
    stopped = job(settings, 2)
    assert (stopped.state, stopped.outcome) == ("cancelled", "stopped by @writer from the dashboard")
    assert client.post("/jobs/2/stop", data={"csrf": csrf_of(page)}).status_code == 409
    assert client.post("/jobs/2/retry", data={"csrf": csrf_of(page)}, follow_redirects=False).status_code == 303


def test_a_reader_sees_no_buttons_and_cannot_post(site, fake_github):
    client, settings = site
    sign_in(client, fake_github, "reader")
    page = client.get("/jobs/2").text
    assert 'id="stop"' not in page and 'id="retry"' not in page
    answer = client.post("/jobs/2/stop", data={"csrf": csrf_of(page)})
    assert answer.status_code == 403 and "write permission on octo/app" in answer.text
    assert job(settings, 2).state == "running"


def test_without_the_pages_csrf_token_nothing_happens(site, fake_github):
    client, settings = site
    sign_in(client, fake_github, "writer")
    assert client.post("/jobs/2/stop").status_code == 403
    assert client.post("/jobs/2/stop", data={"csrf": "0" * 64}).status_code == 403
    assert job(settings, 2).state == "running"


def test_write_permission_is_asked_afresh(site, fake_github):
    client, settings = site
    sign_in(client, fake_github, "writer")
    page = client.get("/jobs/2").text  # the cached answer says write
    fake_github.set_permission("octo/app", "writer", "read")
    assert client.post("/jobs/2/stop", data={"csrf": csrf_of(page)}).status_code == 403
    assert job(settings, 2).state == "running"


def test_no_retry_for_a_suspended_installation_or_a_running_job(site, fake_github):
    client, settings = site
    sign_in(client, fake_github, "writer")
    csrf = csrf_of(client.get("/jobs/1").text)
    assert client.post("/jobs/2/retry", data={"csrf": csrf}).status_code == 409
    with session_scope(settings.database_url) as session:
        installations.record(session, 1, status=installations.SUSPENDED)
    answer = client.post("/jobs/1/retry", data={"csrf": csrf})
    assert answer.status_code == 409 and "suspended" in answer.text
