"""The Job lifecycle shared by the web side and the workers: create, claim, heartbeat, finish, cancel."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import Delivery, Job, Lock, utcnow
from app.intents import Ignored, Intent

LEASE = timedelta(minutes=5)  # a running job whose worker stopped heartbeating may be claimed again
FINAL = ("succeeded", "failed", "skipped", "cancelled")


def record_delivery(
    session: Session, delivery_id: str, event: str, action: str | None, routed: Intent | Ignored
) -> tuple[Delivery, Job | None, bool]:
    """Store the delivery and, for an intent, its job. Returns (delivery, job, job_is_new).

    The same delivery twice, or two deliveries with one idempotency key, yield one job. New
    deliveries take one round trip (insert, commit); duplicates fall back to looking up what exists.
    """
    try:
        job = _new_job(routed, delivery_id) if isinstance(routed, Intent) else None
        if job is not None:
            session.add(job)
            session.flush()
        delivery = _delivery(delivery_id, event, action, routed, job, created=True)
        session.add(delivery)
        if job is not None and routed.supersedes_older_heads and routed.pr_number and routed.head_sha:
            cancel_older_heads(session, routed.repo, routed.pr_number, routed.head_sha)
        session.commit()
        return delivery, job, job is not None
    except IntegrityError:  # seen before: this delivery, or a job with the same idempotency key
        session.rollback()
    existing = session.get(Delivery, delivery_id)
    if existing is not None:
        return existing, session.get(Job, existing.job_id) if existing.job_id else None, False
    job = session.scalar(select(Job).where(Job.idempotency_key == routed.idempotency_key))
    delivery = _delivery(delivery_id, event, action, routed, job, created=False)
    session.add(delivery)
    try:
        session.commit()
    except IntegrityError:  # a concurrent copy of this delivery won the race
        session.rollback()
        delivery = session.get(Delivery, delivery_id)
    return delivery, job, False


def _new_job(intent: Intent, delivery_id: str) -> Job:
    return Job(
        kind=intent.kind,
        installation_id=intent.installation_id,
        repo=intent.repo,
        pr_number=intent.pr_number,
        head_sha=intent.head_sha,
        trigger=intent.trigger,
        delivery_id=delivery_id,
        idempotency_key=intent.idempotency_key,
        params=intent.params,
        state="queued",
        progress="queued",
        enqueued_at=utcnow(),  # optimistic: cleared if the broker refuses, so the sweep picks it up
    )


def _delivery(delivery_id, event, action, routed, job, created: bool) -> Delivery:
    if isinstance(routed, Ignored):
        reason = routed.reason
    else:
        reason = None if created else "duplicate of an existing job"
    return Delivery(
        id=delivery_id,
        event=event,
        action=action,
        repo=routed.repo if isinstance(routed, Intent) else None,
        status="accepted" if job else "ignored",
        reason=reason,
        job_id=job.id if job else None,
    )


def cancel_older_heads(session: Session, repo: str, pr_number: int, head_sha: str) -> int:
    result = session.execute(
        update(Job)
        .where(
            Job.repo == repo,
            Job.pr_number == pr_number,
            Job.head_sha.is_not(None),
            Job.head_sha != head_sha,
            Job.state.in_(Job.ACTIVE),
        )
        .values(state="cancelled", outcome=f"superseded by a newer push ({head_sha[:7]})", finished_at=utcnow())
    )
    return result.rowcount or 0


def claim(session: Session, job_id: int) -> Job | None:
    """Atomically take a queued job (or a running one whose worker died). None: someone else has it."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            or_(Job.state == "queued", (Job.state == "running") & (Job.heartbeat_at < now - LEASE)),
        )
        .values(state="running", started_at=now, heartbeat_at=now, attempts=Job.attempts + 1)
    )
    session.commit()
    return session.get(Job, job_id) if result.rowcount == 1 else None


def heartbeat(session: Session, job_id: int, progress: str | None = None) -> bool:
    """Extend the lease; False when the job was cancelled meanwhile (the runner then stops)."""
    values: dict = {"heartbeat_at": utcnow()}
    if progress is not None:
        values["progress"] = progress
    result = session.execute(
        update(Job).where(Job.id == job_id, Job.state == "running").values(**values)
    )
    session.commit()
    return result.rowcount == 1


def finish(session: Session, job_id: int, state: str, outcome: str, **fields) -> None:
    assert state in FINAL
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == "running")
        .values(state=state, outcome=outcome, progress=state, finished_at=utcnow(), **fields)
    )
    session.commit()


def release_to_queue(session: Session, job_id: int, reason: str) -> None:
    """Give a running job back (lock busy, transient error): it stays durable and runs later."""
    session.execute(
        update(Job).where(Job.id == job_id, Job.state == "running").values(state="queued", progress=reason)
    )
    session.commit()


def cancel(session: Session, job_id: int, outcome: str) -> bool:
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state.in_(Job.ACTIVE))
        .values(state="cancelled", outcome=outcome, progress="cancelled", finished_at=utcnow())
    )
    session.commit()
    return result.rowcount == 1


def mark_enqueued(session: Session, job_id: int, enqueued: bool = True) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(enqueued_at=utcnow() if enqueued else None))
    session.commit()


def due_for_enqueue(session: Session, older_than: timedelta) -> list[int]:
    """Queued jobs never handed to the broker, or handed over long ago and not started (broker lost them)."""
    cutoff = utcnow() - older_than
    rows = session.scalars(
        select(Job.id).where(
            Job.state == "queued", or_(Job.enqueued_at.is_(None), Job.enqueued_at < cutoff)
        )
    )
    return list(rows)


def acquire_lock(session: Session, name: str, owner: str, ttl: timedelta) -> bool:
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
        return False


def release_lock(session: Session, name: str, owner: str) -> None:
    session.execute(Lock.__table__.delete().where(Lock.name == name, Lock.owner == owner))
    session.commit()


def as_aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; treat them as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value
