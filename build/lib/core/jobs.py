"""The Job lifecycle shared by the web side and the workers: claim, lease, finish, requeue, take over,
cancel, locks.

The row is the truth and the broker only a doorbell. Each broker message carries the job's current
``enqueue_token``; only the message with that token claims the job, so any other copy (a
redelivered message, one the sweep replaced after the broker lost it) is a no-op. A claimed job is
held by one worker (``holder``) under a lease it renews while it runs; a lapsed lease means the
worker was lost, and the sweep gives the job back to the queue with a new token (a takeover).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.models import Job, Lock, utcnow

LEASE = timedelta(minutes=5)  # the default; settings.job_lease_s in practice
FINAL = ("succeeded", "failed", "skipped", "cancelled")


def new_token() -> str:
    return uuid.uuid4().hex


def claim(session: Session, job_id: int, token: str | None = None, holder: str = "") -> Job | None:
    """Atomically take a queued job for ``holder``. ``token``: the broker message's; a message whose
    token is not the job's current one is a stale copy and claims nothing. None: not ours to run."""
    now = utcnow()
    where = [Job.id == job_id, Job.state == "queued"]
    if token is not None:
        where.append(Job.enqueue_token == token)
    result = session.execute(
        update(Job)
        .where(*where)
        .values(state="running", holder=holder or None, started_at=func.coalesce(Job.started_at, now),
                heartbeat_at=now, run_after=None, attempts=Job.attempts + 1)
    )
    session.commit()
    return session.get(Job, job_id) if result.rowcount == 1 else None


def heartbeat(session: Session, job_id: int, progress: str | None = None, holder: str | None = None) -> bool:
    """Renew the lease; False when the job is no longer this holder's to run (cancelled meanwhile, or
    taken over after the lease lapsed): the runner then stops."""
    values: dict = {"heartbeat_at": utcnow()}
    if progress is not None:
        values["progress"] = progress
    where = [Job.id == job_id, Job.state == "running"]
    if holder is not None:
        where.append(Job.holder == holder)
    result = session.execute(update(Job).where(*where).values(**values))
    session.commit()
    return result.rowcount == 1


def finish(session: Session, job_id: int, state: str, outcome: str, holder: str | None = None, **fields) -> bool:
    """Record the end; False (nothing written) when the job is not running under ``holder`` any more."""
    assert state in FINAL
    where = [Job.id == job_id, Job.state == "running"]
    if holder is not None:
        where.append(Job.holder == holder)
    result = session.execute(
        update(Job)
        .where(*where)
        .values(state=state, outcome=outcome, progress=state, finished_at=utcnow(), **fields)
    )
    session.commit()
    return result.rowcount == 1


def release_to_queue(session: Session, job_id: int, reason: str, delay_s: float = 0.0,
                     holder: str | None = None, count: bool = True) -> str | None:
    """Give a running job back (lock busy, transient error): it stays durable and runs again after
    ``delay_s``. Returns the token of the message that may run it next, None if it was not ours."""
    now = utcnow()
    token = new_token()
    where = [Job.id == job_id, Job.state == "running"]
    if holder is not None:
        where.append(Job.holder == holder)
    values: dict = dict(state="queued", progress=reason, holder=None, enqueue_token=token, enqueued_at=now,
                        run_after=now + timedelta(seconds=max(0.0, delay_s)))
    if count:
        values["retries"] = Job.retries + 1
    result = session.execute(update(Job).where(*where).values(**values))
    session.commit()
    return token if result.rowcount == 1 else None


@dataclass(frozen=True)
class Handoff:
    """A job the sweep hands to the broker: send ``(job_id, token)``."""

    job_id: int
    token: str


def take_over_lapsed(session: Session, lease: timedelta) -> list[Handoff]:
    """Running jobs whose lease lapsed (their worker is gone) go back to the queue with a new token,
    one takeover counted each. Safe with several sweepers: each row changes hands once."""
    cutoff = utcnow() - lease
    rows = session.execute(
        select(Job.id, Job.holder, Job.heartbeat_at).where(
            Job.state == "running", or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < cutoff))
    ).all()
    handed: list[Handoff] = []
    for job_id, holder, seen in rows:
        token = new_token()
        same_beat = Job.heartbeat_at.is_(None) if seen is None else Job.heartbeat_at == seen
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == "running", same_beat,
                   Job.holder.is_(None) if holder is None else Job.holder == holder)
            .values(state="queued", holder=None, enqueue_token=token, enqueued_at=utcnow(), run_after=None,
                    takeovers=Job.takeovers + 1, progress="its worker was lost; taken over")
        )
        session.commit()
        if result.rowcount == 1:
            handed.append(Handoff(job_id, token))
    return handed


@dataclass(frozen=True)
class Waiting:
    """A queued job that may run now, as the sweep sees it."""

    job_id: int
    token: str | None
    waiting_since: datetime  # when it was last handed to the broker or became due, whichever is later


def due(session: Session, grace: timedelta) -> list[Waiting]:
    """Queued jobs due for at least ``grace`` (their backoff is over, their last hand-off not fresh)."""
    now = utcnow()
    cutoff = now - grace
    rows = session.execute(
        select(Job.id, Job.enqueue_token, Job.enqueued_at, Job.run_after, Job.created_at).where(
            Job.state == "queued",
            or_(Job.run_after.is_(None), Job.run_after <= cutoff),
            or_(Job.enqueued_at.is_(None), Job.enqueued_at <= cutoff),
        ).order_by(Job.id)
    ).all()
    out = []
    for job_id, token, enqueued_at, run_after, created_at in rows:
        since = max(as_aware(t) for t in (enqueued_at, run_after, created_at) if t is not None)
        out.append(Waiting(job_id, token, since))
    return out


def resend(session: Session, job_id: int, token: str | None) -> str | None:
    """Replace a queued job's token (its message was lost): the new token, or None when the job
    changed meanwhile (claimed, cancelled, or handed over by someone else)."""
    fresh = new_token()
    same = Job.enqueue_token.is_(None) if token is None else Job.enqueue_token == token
    result = session.execute(
        update(Job).where(Job.id == job_id, Job.state == "queued", same)
        .values(enqueue_token=fresh, enqueued_at=utcnow())
    )
    session.commit()
    return fresh if result.rowcount == 1 else None


def cancel(session: Session, job_id: int, outcome: str) -> bool:
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state.in_(Job.ACTIVE))
        .values(state="cancelled", outcome=outcome, progress="cancelled", finished_at=utcnow())
    )
    session.commit()
    return result.rowcount == 1


RETRYABLE = ("repair", "fix", "explain", "review")  # kinds `/qwen retry` and the dashboard run again


def rerun(session: Session, last: Job, trigger: str, delivery_id: str | None = None, **params) -> Job:
    """A new queued job doing what ``last`` did, frozen as it was (`/qwen retry`, the dashboard)."""
    again = Job(
        kind=last.kind, installation_id=last.installation_id, repo=last.repo, pr_number=last.pr_number,
        head_sha=last.head_sha, trigger=trigger, delivery_id=delivery_id or last.delivery_id,
        params={**last.params, "retry_of": last.id, **params},
        idempotency_key=f"{last.idempotency_key}|{trigger}", state="queued", progress="queued",
        enqueue_token=new_token(), enqueued_at=utcnow(),  # only the message with this token runs it
    )
    session.add(again)
    session.flush()
    return again


def mark_enqueued(session: Session, job_id: int, enqueued: bool = True) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(enqueued_at=utcnow() if enqueued else None))
    session.commit()


def acquire_lock(session: Session, name: str, owner: str, ttl: timedelta) -> bool:
    """Take the lock ``name`` for ``ttl`` (an expired one is free); an owner that holds it renews it."""
    now = utcnow()
    session.execute(
        Lock.__table__.delete().where(Lock.name == name, Lock.expires_at < now)
    )
    try:
        session.add(Lock(name=name, owner=owner, expires_at=now + ttl))
        session.commit()
        return True
    except IntegrityError:
        session.rollback()
    return renew_lock(session, name, owner, ttl)


def renew_lock(session: Session, name: str, owner: str, ttl: timedelta) -> bool:
    """Extend ``owner``'s lock; False when it is not (or no longer) theirs."""
    result = session.execute(
        update(Lock).where(Lock.name == name, Lock.owner == owner).values(expires_at=utcnow() + ttl)
    )
    session.commit()
    return result.rowcount == 1


def release_lock(session: Session, name: str, owner: str) -> None:
    session.execute(Lock.__table__.delete().where(Lock.name == name, Lock.owner == owner))
    session.commit()


def as_aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; treat them as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value
