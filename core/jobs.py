"""The Job lifecycle shared by the web side and the workers: claim, heartbeat, finish, cancel, locks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db.models import Job, Lock, utcnow

LEASE = timedelta(minutes=5)  # a running job whose worker stopped heartbeating may be claimed again
FINAL = ("succeeded", "failed", "skipped", "cancelled")


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


RETRYABLE = ("repair", "fix", "explain", "review")  # kinds `/qwen retry` and the dashboard run again


def rerun(session: Session, last: Job, trigger: str, delivery_id: str | None = None, **params) -> Job:
    """A new queued job doing what ``last`` did, frozen as it was (`/qwen retry`, the dashboard)."""
    again = Job(
        kind=last.kind, installation_id=last.installation_id, repo=last.repo, pr_number=last.pr_number,
        head_sha=last.head_sha, trigger=trigger, delivery_id=delivery_id or last.delivery_id,
        params={**last.params, "retry_of": last.id, **params},
        idempotency_key=f"{last.idempotency_key}|{trigger}", state="queued", progress="queued",
    )
    session.add(again)
    session.flush()
    return again


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
