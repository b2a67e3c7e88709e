"""The Job lifecycle on real PostgreSQL and SQLite: tokens, holders, leases, takeovers, locks."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import update

from core import jobs
from core.db.models import Job, utcnow
from core.db.session import session_scope


def queued_job(url: str, key: str = "k") -> tuple[int, str]:
    token = jobs.new_token()
    with session_scope(url) as session:
        job = Job(kind="repair", repo="octo/calc", pr_number=7, trigger="t", idempotency_key=key,
                  state="queued", enqueue_token=token, enqueued_at=utcnow())
        session.add(job)
        session.flush()
        return job.id, token


def row(url: str, job_id: int) -> Job:
    with session_scope(url) as session:
        return session.get(Job, job_id)


def test_only_the_message_with_the_current_token_claims_the_job(database_url):
    job_id, token = queued_job(database_url)
    with session_scope(database_url) as session:
        assert jobs.claim(session, job_id, "a-stale-copy", "w1") is None
        claimed = jobs.claim(session, job_id, token, "w1")
        assert claimed is not None and claimed.holder == "w1" and claimed.attempts == 1
        assert jobs.claim(session, job_id, token, "w2") is None  # the same message delivered twice


def test_a_lease_is_renewed_only_by_its_holder_and_finish_needs_it(database_url):
    job_id, token = queued_job(database_url)
    with session_scope(database_url) as session:
        jobs.claim(session, job_id, token, "w1")
        assert jobs.heartbeat(session, job_id, holder="w1")
        assert not jobs.heartbeat(session, job_id, holder="w2")
        assert not jobs.finish(session, job_id, "succeeded", "done", holder="w2")
        assert jobs.finish(session, job_id, "succeeded", "done", holder="w1")
    assert row(database_url, job_id).state == "succeeded"


def test_a_job_given_back_gets_a_new_token_a_backoff_and_a_counted_retry(database_url):
    job_id, token = queued_job(database_url)
    with session_scope(database_url) as session:
        jobs.claim(session, job_id, token, "w1")
        assert jobs.release_to_queue(session, job_id, "retrying: GitHub 502", 30, holder="w2") is None
        again = jobs.release_to_queue(session, job_id, "retrying: GitHub 502", 30, holder="w1")
    job = row(database_url, job_id)
    assert again and again != token and job.enqueue_token == again
    assert job.state == "queued" and job.retries == 1 and job.holder is None
    assert jobs.as_aware(job.run_after) > utcnow() + timedelta(seconds=25)
    with session_scope(database_url) as session:
        assert jobs.due(session, timedelta(0)) == []  # not before its backoff is over
        assert jobs.claim(session, job_id, token, "w3") is None  # the first message is stale now


def test_a_lapsed_lease_is_taken_over_exactly_once_by_concurrent_sweeps(database_url):
    job_id, token = queued_job(database_url)
    with session_scope(database_url) as session:
        jobs.claim(session, job_id, token, "lost-worker")
        session.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(minutes=10)))
        session.commit()
    handed: list[jobs.Handoff] = []

    def sweep():
        with session_scope(database_url) as session:
            handed.extend(jobs.take_over_lapsed(session, timedelta(minutes=5)))

    sweepers = [threading.Thread(target=sweep) for _ in range(4)]
    for t in sweepers:
        t.start()
    for t in sweepers:
        t.join()
    assert len(handed) == 1 and handed[0].job_id == job_id
    job = row(database_url, job_id)
    assert job.state == "queued" and job.takeovers == 1 and job.enqueue_token == handed[0].token
    with session_scope(database_url) as session:
        assert not jobs.heartbeat(session, job_id, holder="lost-worker")  # the lost worker stops if it wakes
        assert jobs.take_over_lapsed(session, timedelta(minutes=5)) == []
        assert jobs.claim(session, job_id, handed[0].token, "w2") is not None


def test_a_live_lease_is_not_taken_over(database_url):
    job_id, token = queued_job(database_url)
    with session_scope(database_url) as session:
        jobs.claim(session, job_id, token, "w1")
        assert jobs.take_over_lapsed(session, timedelta(minutes=5)) == []


def test_a_resend_replaces_the_token_once(database_url):
    job_id, token = queued_job(database_url)
    with session_scope(database_url) as session:
        first = jobs.resend(session, job_id, token)
        assert first and jobs.resend(session, job_id, token) is None  # someone already resent it
        [waiting] = jobs.due(session, timedelta(0))
        assert waiting.job_id == job_id and waiting.token == first


def test_the_pr_lock_belongs_to_its_owner_who_renews_it(database_url):
    with session_scope(database_url) as session:
        assert jobs.acquire_lock(session, "pr:octo/calc#7", "job:1", timedelta(seconds=30))
        assert not jobs.acquire_lock(session, "pr:octo/calc#7", "job:2", timedelta(seconds=30))
        assert jobs.acquire_lock(session, "pr:octo/calc#7", "job:1", timedelta(seconds=30))  # a takeover of job 1
        assert jobs.renew_lock(session, "pr:octo/calc#7", "job:1", timedelta(seconds=30))
        assert not jobs.renew_lock(session, "pr:octo/calc#7", "job:2", timedelta(seconds=30))
        assert jobs.acquire_lock(session, "pr:octo/calc#8", "job:2", timedelta(seconds=-1))  # already expired
        assert jobs.acquire_lock(session, "pr:octo/calc#8", "job:3", timedelta(seconds=30))
