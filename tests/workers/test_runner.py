"""Jobs travel from the webhook through real Redis to a real Celery worker and back into PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from app.main import create_app
from app.sweep import enqueue_stranded
from core import jobs
from core.db.models import Installation, Job
from core.db.session import session_scope
from tests.support.db import SECRET, wait_for
from tests.webhook_payloads import base, encode, headers, pull_request, workflow_run
from workers import runner


def post(client, payload, event, delivery=None):
    body = encode(payload)
    return client.post("/webhooks/github", content=body, headers=headers(SECRET, body, event, delivery))


def job_state(url, job_id):
    with session_scope(url) as session:
        job = session.get(Job, job_id)
        return job.state, job.outcome


def test_worker_runs_a_job_from_the_webhook(make_settings, postgres_url, redis_url, start_worker):
    settings = make_settings(database_url=postgres_url, broker_url=redis_url)
    start_worker(settings)
    payload = {**base(installation=42), "action": "created", "installation": {"id": 42, "account": {"login": "octo"}},
               "repositories": [{"full_name": "octo/widgets"}, {"full_name": "octo/gears"}]}
    with TestClient(create_app(settings, sweep=False)) as client:
        job_id = post(client, payload, "installation").json()["job"]
        review_id = post(client, pull_request(), "pull_request").json()["job"]
    wait_for(lambda: job_state(postgres_url, job_id)[0] == "succeeded", message="installation job")
    with session_scope(postgres_url) as session:
        row = session.get(Installation, 42)
    assert row.account == "octo" and row.repositories == ["octo/widgets", "octo/gears"] and row.active
    wait_for(lambda: job_state(postgres_url, review_id)[0] in jobs.FINAL, message="review job")
    # it ran on the worker, and failed saying why (this stack has no GitHub App key configured)
    assert job_state(postgres_url, review_id) == (
        "failed", "GitHub App: no GitHub App private key: set QWENFIX_PRIVATE_KEY or QWENFIX_PRIVATE_KEY_PATH")


def test_jobs_left_queued_while_the_broker_was_down_run_after_the_sweep(make_settings, postgres_url, redis_url, start_worker):
    down = make_settings(database_url=postgres_url, broker_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(down, sweep=False)) as client:
        job_id = post(client, pull_request(), "pull_request").json()["job"]
    assert job_state(postgres_url, job_id)[0] == "queued"

    up = make_settings(database_url=postgres_url, broker_url=redis_url)
    start_worker(up)
    assert enqueue_stranded(up, older_than=timedelta(0)) == 1
    wait_for(lambda: job_state(postgres_url, job_id)[0] in jobs.FINAL, message="swept job to run")
    assert "no GitHub App private key" in job_state(postgres_url, job_id)[1]


def test_the_web_sides_periodic_sweep_enqueues_by_itself(make_settings, postgres_url, redis_url, start_worker):
    down = make_settings(database_url=postgres_url, broker_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(down, sweep=False)) as client:
        job_id = post(client, pull_request(), "pull_request").json()["job"]
    up = make_settings(database_url=postgres_url, broker_url=redis_url, sweep_interval_s=0.2)
    start_worker(up)
    with TestClient(create_app(up, sweep=True)):  # lifespan starts the sweep loop
        wait_for(lambda: job_state(postgres_url, job_id)[0] in jobs.FINAL, message="sweep loop")
    assert job_state(postgres_url, job_id)[0] == "failed"  # ran: no App key here


def test_a_second_job_on_the_same_pull_request_waits_for_the_lock(make_settings, database_url):
    settings = make_settings(database_url=database_url, broker_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings, sweep=False)) as client:
        job_id = post(client, workflow_run(prs=(9,)), "workflow_run").json()["job"]
    with session_scope(database_url) as session:
        assert jobs.acquire_lock(session, "pr:octo/widgets#9", "someone-else", timedelta(minutes=5))
    assert runner.run_job(job_id, settings) == runner.LOCK_RETRY_S
    assert job_state(database_url, job_id)[0] == "queued"  # durable: it runs once the lock is free
    with session_scope(database_url) as session:
        jobs.release_lock(session, "pr:octo/widgets#9", "someone-else")
    assert runner.run_job(job_id, settings) is None
    assert job_state(database_url, job_id)[0] in jobs.FINAL


def test_a_job_is_claimed_once_even_when_delivered_twice(make_settings, database_url):
    settings = make_settings(database_url=database_url, broker_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings, sweep=False)) as client:
        job_id = post(client, pull_request(), "pull_request").json()["job"]
    with session_scope(database_url) as session:
        assert jobs.claim(session, job_id) is not None
        assert jobs.claim(session, job_id) is None  # a redelivered message finds it taken
    with session_scope(database_url) as session:
        job = session.get(Job, job_id)
        assert job.attempts == 1


def test_a_job_that_cannot_authenticate_says_why(make_settings, database_url):
    settings = make_settings(database_url=database_url, broker_url="redis://127.0.0.1:1/0", app_id="1")
    with TestClient(create_app(settings, sweep=False)) as client:
        job_id = post(client, workflow_run(prs=(3,)), "workflow_run").json()["job"]
    assert runner.run_job(job_id, settings) is None
    state, outcome = job_state(database_url, job_id)
    assert state == "failed"
    assert outcome.startswith("GitHub App: ") and "QWENFIX_PRIVATE_KEY" in outcome
