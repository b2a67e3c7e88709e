"""The sweep against real Redis and PostgreSQL: the database is the truth, the broker a doorbell."""

from __future__ import annotations

from datetime import timedelta

import redis
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.main import create_app
from app.sweep import enqueue_stranded, missing_from_broker
from core import jobs
from core.db.models import Job, utcnow
from core.db.session import session_scope
from core.queue import BrokerView, look_into, task_id
from tests.support.db import SECRET
from tests.webhook_payloads import encode, headers, pull_request


def post(client, payload, event):
    body = encode(payload)
    return client.post("/webhooks/github", content=body, headers=headers(SECRET, body, event))


def job_row(url, job_id) -> Job:
    with session_scope(url) as session:
        return session.get(Job, job_id)


def test_which_due_jobs_the_broker_is_missing():
    now = utcnow()
    waiting = [jobs.Waiting(1, "a", now - timedelta(seconds=30)),  # waiting in the queue
               jobs.Waiting(2, "b", now - timedelta(seconds=30)),  # with a worker, recently due
               jobs.Waiting(3, "c", now - timedelta(minutes=5)),  # with a worker that sat on it, due 5 min
               jobs.Waiting(4, "d", now),  # nowhere: lost
               jobs.Waiting(5, "e", now)]  # only an older copy is in the queue: lost
    view = BrokerView(ready=frozenset({task_id(1, "a"), task_id(5, "stale")}),
                      reserved=frozenset({task_id(2, "b"), task_id(3, "c")}))
    assert [w.job_id for w in missing_from_broker(waiting, view, now)] == [3, 4, 5]


def test_a_queued_job_in_no_broker_queue_is_sent_again_exactly_once(make_settings, postgres_url, redis_url):
    settings = make_settings(database_url=postgres_url, broker_url=redis_url)
    with TestClient(create_app(settings, sweep=False)) as client:
        job_id = post(client, pull_request(), "pull_request").json()["job"]
    first = job_row(postgres_url, job_id).enqueue_token
    assert look_into(settings).ready == {task_id(job_id, first)}
    assert enqueue_stranded(settings, older_than=timedelta(0)) == 0  # the broker has it: left alone

    redis.Redis.from_url(redis_url).flushdb()  # Redis restarted empty: the message is gone
    assert enqueue_stranded(settings, older_than=timedelta(0)) == 1
    assert enqueue_stranded(settings, older_than=timedelta(0)) == 0  # once
    second = job_row(postgres_url, job_id).enqueue_token
    assert second != first and look_into(settings).ready == {task_id(job_id, second)}
    with session_scope(postgres_url) as session:
        assert jobs.claim(session, job_id, first, "w") is None  # the lost message, if it ever came back
        assert jobs.claim(session, job_id, second, "w") is not None


def test_a_job_whose_worker_was_lost_is_taken_over_and_sent(make_settings, postgres_url, redis_url):
    settings = make_settings(database_url=postgres_url, broker_url=redis_url, job_lease_s=30)
    with TestClient(create_app(settings, sweep=False)) as client:
        job_id = post(client, pull_request(), "pull_request").json()["job"]
    redis.Redis.from_url(redis_url).flushdb()
    with session_scope(postgres_url) as session:
        jobs.claim(session, job_id, None, "killed-worker")
        assert enqueue_stranded(settings) == 0  # its lease is still good
        session.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(seconds=31)))
        session.commit()
    assert enqueue_stranded(settings) == 1
    job = job_row(postgres_url, job_id)
    assert (job.state, job.takeovers, job.holder) == ("queued", 1, None)
    assert look_into(settings).ready == {task_id(job_id, job.enqueue_token)}
    assert enqueue_stranded(settings, older_than=timedelta(0)) == 0


def test_nothing_is_resent_while_the_broker_cannot_be_read(make_settings, postgres_url):
    settings = make_settings(database_url=postgres_url, broker_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings, sweep=False)) as client:
        job_id = post(client, pull_request(), "pull_request").json()["job"]
    assert look_into(settings) is None
    assert enqueue_stranded(settings, older_than=timedelta(0)) == 0
    assert job_row(postgres_url, job_id).state == "queued"
