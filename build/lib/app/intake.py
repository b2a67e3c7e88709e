"""Intake: a routed delivery becomes a Delivery row and, for an intent, one durable Job row; what it says
about delivered fixes is recorded (a CI result at once, anything else by a `follow_up` job that reads
GitHub)."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.intents import Ignored, Intent, Observation
from core import installations, outcomes
from core.db.models import Delivery, Job, utcnow
from core.jobs import new_token


def record_delivery(
    session: Session, delivery_id: str, event: str, action: str | None, routed: Intent | Ignored
) -> tuple[Delivery, Job | None, bool]:
    """Store the delivery and, for an intent, its job. Returns (delivery, job, job_is_new).

    The same delivery twice, or two deliveries with one idempotency key, yield one job. New
    deliveries take one round trip (insert, commit); duplicates fall back to looking up what exists.
    """
    if isinstance(routed, Intent) and routed.kind != installations.SYNC_KIND:
        refused = installations.refusal(session, routed.installation_id)
        if refused:  # suspended or uninstalled: no new jobs
            routed = Ignored(refused)
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


def record_observation(session: Session, observed: Observation, delivery: Delivery) -> Job | None:
    """A CI result goes straight onto the fixes it is about; a push, a closed pull request or a resolved
    thread that concerns a fix still waiting for its verdict becomes a `follow_up` job (new: returned)."""
    if observed.kind == "ci":
        if outcomes.record_ci(session, observed.repo, observed.sha, observed.conclusion, observed.detail):
            session.commit()
        return None
    if installations.refusal(session, observed.installation_id):  # suspended or uninstalled: no new jobs
        return None
    waiting = outcomes.unsettled(session, observed.repo, pr_number=observed.pr_number, branch=observed.branch)
    if not waiting:
        return None
    # one job per new head of a branch, whether GitHub tells through `push` or `synchronize`
    about = f"branch:{observed.branch}" if observed.kind == "push" else (
        f"closed:{observed.pr_number}" if observed.kind == "closed" else f"thread:{delivery.id}")
    intent = Intent(kind="follow_up", installation_id=observed.installation_id, repo=observed.repo, trigger=about,
                    pr_number=observed.pr_number, head_sha=observed.sha, params=observed.as_params())
    job = _new_job(intent, delivery.id)
    session.add(job)
    try:
        session.commit()  # the delivery is committed already: only this job is at stake
    except IntegrityError:  # the same head told twice (push and synchronize), or a redelivery
        session.rollback()
        session.refresh(delivery)  # the caller still reads it
        return None
    if delivery.status == "ignored":  # the event made no other job: this one is its job
        delivery.status, delivery.reason, delivery.job_id = "accepted", None, job.id
        session.commit()
    return job


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
        enqueue_token=new_token(),  # only the message carrying it runs the job (core/jobs.py)
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
