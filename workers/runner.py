"""One job from start to finish: claim it, take the pull request's lock, run its kind's handler, record.

Handlers live one per behaviour in workers/handlers/; each exports a table of the job kinds it runs,
merged here. A kind without a handler finishes as `skipped` with that reason.
"""

from __future__ import annotations

import time

import structlog
from sqlalchemy import select

from core import audit, jobs, outcomes
from core.config import Settings, get_settings
from core.db.models import Job
from core.db.session import session_scope
from core.logs import get_logger
from workers.context import (
    WORKER_ID,
    Handler,
    JobContext,
    JobFailed,
    Outcome,
    Transient,
    pr_lock_name,
)
from workers.handlers import commands, follow_up, installations, red_build, review
from workers.sandbox import bwrap, docker

log = get_logger("qwenfix.runner")
LOCK_RETRY_S = 5.0
WAIT_FOR_PR_LOCK = ("repair",)  # these queue behind a running job; `/qwen fix` answers "already working"


# each behaviour exports its table of job kinds; the runner only merges them
HANDLERS: dict[str, Handler] = {
    **installations.HANDLERS,
    **commands.HANDLERS,
    **red_build.HANDLERS,
    **review.HANDLERS,
    **follow_up.HANDLERS,
}


def run_job(job_id: int, settings: Settings | None = None) -> float | None:
    """Run one job. Returns seconds to wait before trying again, or None when the job is done with."""
    settings = settings or get_settings()
    structlog.contextvars.bind_contextvars(job=job_id)
    try:
        with session_scope(settings.database_url) as session:
            job = jobs.claim(session, job_id)
        if job is None:
            log.info("job not claimable (done, cancelled or running elsewhere)")
            return None
        ctx = JobContext(job=job, settings=settings)
        if job.kind in WAIT_FOR_PR_LOCK and not ctx.try_lock():
            with session_scope(settings.database_url) as session:
                jobs.release_to_queue(session, job_id, "waiting for another job on this pull request")
            return LOCK_RETRY_S
        try:
            return _run_claimed(ctx)
        finally:
            if ctx.holds_lock:
                with session_scope(settings.database_url) as session:
                    jobs.release_lock(session, pr_lock_name(job), WORKER_ID)
    finally:
        structlog.contextvars.unbind_contextvars("job")



def _run_claimed(ctx: JobContext) -> float | None:
    job, settings = ctx.job, ctx.settings
    handler = HANDLERS.get(job.kind)
    started = time.monotonic()
    if handler is None:
        outcome = Outcome("skipped", f"no runner for job kind '{job.kind}' yet")
    else:
        log.info("job started", kind=job.kind, repo=job.repo, pr=job.pr_number)
        _record_trigger(ctx)
        try:
            with ctx.resources:
                outcome = handler(ctx)
        except Transient as exc:
            log.warning("transient failure; will retry", error=str(exc))
            with session_scope(settings.database_url) as session:
                jobs.release_to_queue(session, job.id, f"retrying: {exc}")
            return exc.retry_after
        except JobFailed as exc:
            outcome = Outcome("failed", str(exc))
        except Exception as exc:  # noqa: BLE001 — a job failure is recorded, never lost
            log.exception("job crashed")
            outcome = Outcome("failed", f"internal error: {type(exc).__name__}: {exc}")
    fields = dict(outcome.fields)
    timings = dict(fields.pop("timings", {}) or {})
    timings["total"] = round(time.monotonic() - started, 3)
    with session_scope(settings.database_url) as session:
        jobs.finish(session, job.id, outcome.state, outcome.message, timings=timings, **fields)
    log.info("job finished", state=outcome.state, outcome=outcome.message)
    return None


def _record_trigger(ctx: JobContext) -> None:
    """Who or what made this job: the person (or bot) behind it, the event and its delivery."""
    job, params = ctx.job, ctx.job.params or {}
    ctx.trail.record("trigger", job_kind=job.kind, actor=params.get("actor"), event=job.trigger,
                     source=params.get("source") or params.get("event"), delivery=job.delivery_id,
                     pull_request=job.pr_number, head_sha=job.head_sha, attempt=job.attempts,
                     retry_of=params.get("retry_of"), retried_by=params.get("retried_by"))


def sweep() -> None:
    """Worker-side housekeeping: remove sandboxes whose job is no longer running, audit records past
    their retention, and report fix pull requests left open too long."""
    settings = get_settings()
    keep_records(settings)
    with session_scope(settings.database_url) as session:
        alive = {str(i) for i in session.scalars(select(Job.id).where(Job.state == "running"))}
    for name, sweep_engine in (("docker", lambda: docker.sweep_orphans(alive_job_ids=alive)), ("bwrap", bwrap.sweep_orphans)):
        try:
            removed = sweep_engine()
            if removed:
                log.info("removed orphaned sandboxes", engine=name, count=len(removed))
        except Exception as exc:  # noqa: BLE001 — that engine is absent on this worker
            log.debug("sandbox sweep skipped", engine=name, error=str(exc))


def keep_records(settings: Settings) -> None:
    try:
        with session_scope(settings.database_url) as session:
            removed = audit.purge(session, settings.audit_retention_days, settings.audit_dir)
            expired = outcomes.expire_open(session, settings.outcome_open_days)
    except Exception as exc:  # noqa: BLE001 — database down: next sweep
        log.warning("record keeping skipped", error=type(exc).__name__)
        return
    if removed or expired:
        log.info("records kept", audit_records_removed=removed, fix_pull_requests_open_too_long=expired)
