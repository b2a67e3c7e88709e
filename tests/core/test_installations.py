"""A suspended or deleted installation: its queued and running jobs are cancelled, and intake
refuses new ones; an unknown or active one is welcome."""

from __future__ import annotations

from core import installations
from core.db.models import Job
from core.db.session import session_scope


def job(session, installation_id, state="queued", kind="repair", key=None) -> int:
    row = Job(kind=kind, installation_id=installation_id, repo="octo/app", trigger="t", state=state,
              idempotency_key=key or f"{installation_id}-{state}-{kind}")
    session.add(row)
    session.flush()
    return row.id


def test_suspending_cancels_queued_and_running_jobs_only_of_that_installation(database_url):
    with session_scope(database_url) as session:
        installations.record(session, 1, account="octo", repositories=["octo/app"])
        queued, running = job(session, 1), job(session, 1, "running")
        done, other = job(session, 1, "succeeded"), job(session, 2)
    with session_scope(database_url) as session:
        installations.record(session, 1, status=installations.SUSPENDED)
    with session_scope(database_url) as session:
        states = {i: (session.get(Job, i).state, session.get(Job, i).outcome) for i in (queued, running, done, other)}
        refusal = installations.refusal(session, 1)
        row = session.get(installations.Installation, 1)
        assert (row.status, row.active, row.repositories) == ("suspended", False, ["octo/app"])
    assert states[queued] == states[running] == ("cancelled", "the App's installation was suspended")
    assert states[done][0] == "succeeded" and states[other][0] == "queued"
    assert refusal == "installation 1 is suspended"


def test_unknown_and_active_installations_take_jobs(database_url):
    with session_scope(database_url) as session:
        installations.record(session, 3, status=installations.ACTIVE)
        assert installations.refusal(session, 3) is None
        assert installations.refusal(session, 99) is None
        assert installations.refusal(session, None) is None


def test_repositories_added_and_removed_keep_their_order(database_url):
    with session_scope(database_url) as session:
        installations.record(session, 4, repositories=["octo/b", "octo/a"])
        row = installations.change_repositories(session, 4, added=["octo/c", "octo/a"], removed=["octo/b"])
        assert row.repositories == ["octo/a", "octo/c"]
