"""One job from start to finish: claim it, hold its lease, take the pull request's lock, run its kind's
handler, record — or give it back to the queue with backoff, a bounded number of times.

Handlers live one per behaviour in workers/handlers/; each exports a table of the job kinds it runs,
merged here. A kind without a handler finishes as `skipped` with that reason.
"""

from __future__ import annotations

import time

import structlog
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from core import audit, jobs, outcomes
from core.config import Settings, get_settings
from core.db.models import Job
from core.db.session import session_scope
from core.installations import SYNC_KIND, refusal
from core.logs import get_logger
from core.queue import enqueue
from workers.context import (
    Handler,
    JobContext,
    JobFailed,
    JobTimedOut,
    Outcome,
    Transient,
    new_holder,
    pr_lock_name,
)
from workers.github import messages
from workers.github.job import open_job, report_failure
from workers.handlers import commands, follow_up, installations, red_build, review
from workers.lease import Lease
from workers.sandbox import bwrap, docker

log = get_logger("qwenfix.runner")
LOCK_RETRY_S = 5.0
MAX_BACKOFF_S = 600.0
WAIT_FOR_PR_LOCK = ("repair",)  # these queue behind a running job; `/qwen fix` answers "already working"
FINISH_ATTEMPTS = 5  # recording the end survives a database blip of a few seconds


# each behaviour exports its table of job kinds; the runner only merges them
HANDLERS: dict[str, Handler] = {
    **installations.HANDLERS,
    **commands.HANDLERS,
    **red_build.HANDLERS,
    **review.HANDLERS,
    **follow_up.HANDLERS,
}


def run_job(job_id: int, settings: Settings | None = None, token: str | None = None) -> float | None:
    """Run one job (``token``: the broker message's). Returns seconds until it runs again (it went
    back to the queue, already re-sent), or None when this message is done with."""
    settings = settings or get_settings()
    structlog.contextvars.bind_contextvars(job=job_id)
    try:
        holder = new_holder()
        with session_scope(settings.database_url) as session:
            job = jobs.claim(session, job_id, token, holder)
        if job is None:
            log.info("job not claimable (done, cancelled, running elsewhere, or a stale message)")
            return None
        if job.kind != SYNC_KIND:
            with session_scope(settings.database_url) as session:
                refused = refusal(session, job.installation_id)
                if refused:  # suspended or uninstalled since the job was queued
                    jobs.finish(session, job_id, "cancelled", refused, holder=holder)
                    return None
        ctx = JobContext(job=job, settings=settings, holder=holder)
        with Lease(ctx):
            try:
                return _run_held(ctx)
            finally:
                if ctx.holds_lock:
                    with session_scope(settings.database_url) as session:
                        jobs.release_lock(session, pr_lock_name(job), ctx.lock_owner)
    finally:
        structlog.contextvars.unbind_contextvars("job")


def _run_held(ctx: JobContext) -> float | None:
    job, settings = ctx.job, ctx.settings
    if job.takeovers:
        _remove_lost_sandboxes(job.id)
        if job.takeovers > settings.job_max_takeovers:
            return _give_up(ctx, messages.gave_up_takeovers(job.takeovers))
        log.warning("taking over a job whose worker was lost", takeovers=job.takeovers)
    if job.kind in WAIT_FOR_PR_LOCK and not ctx.try_lock():
        return _requeue(ctx, LOCK_RETRY_S, "waiting for another job on this pull request")
    return _run_claimed(ctx)


def _run_claimed(ctx: JobContext) -> float | None:
    job = ctx.job
    handler = HANDLERS.get(job.kind)
    started = time.monotonic()
    if handler is None:
        outcome = Outcome("skipped", f"no runner for job kind '{job.kind}' yet")
    else:
        log.info("job started", kind=job.kind, repo=job.repo, pr=job.pr_number, attempt=job.attempts)
        _record_trigger(ctx)
        try:
            with ctx.resources:
                try:
                    outcome = handler(ctx)
                except Exception as exc:
                    if not _reached_time_limit(ctx, exc):
                        raise
                    outcome = _at_time_limit(ctx)  # said on the PR while the job's client is open
        except Transient as exc:
            log.warning("transient failure; will retry", error=str(exc))
            return _requeue(ctx, exc.retry_after, f"retrying: {exc}")
        except JobFailed as exc:
            outcome = Outcome("failed", str(exc))
            _report(ctx, str(exc), open_if_needed=False)
        except Exception as exc:  # noqa: BLE001 — a job failure is recorded, never lost
            log.exception("job crashed")
            outcome = Outcome("failed", f"internal error: {type(exc).__name__}: {exc}")
            _report(ctx, outcome.message, open_if_needed=False)
    fields = dict(outcome.fields)
    timings = dict(fields.pop("timings", {}) or {})
    timings["total"] = round(time.monotonic() - started, 3)
    _record_end(ctx, outcome.state, outcome.message, timings=timings, **fields)
    log.info("job finished", state=outcome.state, outcome=outcome.message)
    return None


def _record_trigger(ctx: JobContext) -> None:
    """Who or what made this job: the person (or bot) behind it, the event and its delivery."""
    job, params = ctx.job, ctx.job.params or {}
    ctx.trail.record("trigger", job_kind=job.kind, actor=params.get("actor"), event=job.trigger,
                     source=params.get("source") or params.get("event"), delivery=job.delivery_id,
                     pull_request=job.pr_number, head_sha=job.head_sha, attempt=job.attempts,
                     retry_of=params.get("retry_of"), retried_by=params.get("retried_by"))


def _reached_time_limit(ctx: JobContext, exc: Exception) -> bool:
    """Whether the job failed because of its time limit. Libraries may wrap Celery's interruption
    (an HTTP client retries, then raises its own error), so a failure past the deadline counts too:
    such a job is over, never retried."""
    return isinstance(exc, (JobTimedOut, SoftTimeLimitExceeded)) or time.monotonic() >= ctx.deadline


def _at_time_limit(ctx: JobContext) -> Outcome:
    """The job reached its time limit: it is over (never retried), and its PR says why."""
    limit = ctx.settings.job_time_limit_s
    log.warning("job stopped at its time limit", limit_s=limit)
    if ctx.github is not None:
        try:
            ctx.github.finish(*messages.time_limit(limit), "timed_out", "Stopped at the time limit")
        except Exception as exc:  # noqa: BLE001 — the row still records it
            log.warning("could not report the time limit on GitHub", error=f"{type(exc).__name__}: {exc}")
    return Outcome("failed", time_limit_outcome(limit))


def time_limit_outcome(limit_s: float) -> str:
    return f"time limit: stopped after {limit_s:g} s (QWENFIX_JOB_TIME_LIMIT_S)"


def end_at_time_limit(job_id: int, settings: Settings | None = None) -> None:
    """The job was stopped at its time limit outside its handler, or its worker process was killed
    at the hard limit: end its row as failed, and say so on its pull request if GitHub answers."""
    settings = settings or get_settings()
    structlog.contextvars.bind_contextvars(job=job_id)
    try:
        with session_scope(settings.database_url) as session:
            job = session.get(Job, job_id)
            if job is None or job.state != "running":
                return
            jobs.finish(session, job_id, "failed", time_limit_outcome(settings.job_time_limit_s))
        _remove_sandboxes(job_id)
        ctx = JobContext(job=job, settings=settings)
        with ctx.resources:
            gj = open_job(ctx)
            gj.finish(*messages.time_limit(settings.job_time_limit_s), "timed_out", "Stopped at the time limit")
    except Exception as exc:  # noqa: BLE001 — best effort: the row is what must be right
        log.warning("could not report a killed job", error=f"{type(exc).__name__}: {exc}")
    finally:
        structlog.contextvars.unbind_contextvars("job")


def _remove_sandboxes(job_id: int) -> None:
    """A killed process could not stop its job's Docker sandboxes (bubblewrap's die with it)."""
    try:
        docker.sweep_orphans(alive_job_ids=set(), labels={docker.LABEL_JOB: str(job_id)})
    except Exception as exc:  # noqa: BLE001 — no Docker engine on this worker
        log.debug("sandbox removal skipped", error=str(exc))


def _requeue(ctx: JobContext, wait_s: float, reason: str) -> float | None:
    """Back to the queue after a backoff that doubles with each retry, or — retries used up — failed,
    saying why on the pull request."""
    job, settings = ctx.job, ctx.settings
    if job.retries >= settings.job_max_retries:
        return _give_up(ctx, messages.gave_up_retrying(job.retries, reason))
    delay = max(wait_s, min(wait_s * 2 ** job.retries, MAX_BACKOFF_S))
    with session_scope(settings.database_url) as session:
        token = jobs.release_to_queue(session, job.id, reason, delay, holder=ctx.holder)
    if token is None:
        return None  # cancelled or taken over meanwhile: not ours to re-send
    if not enqueue(settings, job.id, token, countdown=delay):
        log.warning("broker unavailable; the sweep will send the job again")
    return delay


def _give_up(ctx: JobContext, reason: str) -> None:
    log.warning("giving up on the job", reason=reason)
    _report(ctx, reason, open_if_needed=True)
    _record_end(ctx, "failed", reason)
    return None


def _report(ctx: JobContext, reason: str, open_if_needed: bool) -> None:
    """Say on the pull request why the job failed; best effort (the job row says it anyway)."""
    if ctx.lease_lost.is_set() or (ctx.github is None and not open_if_needed):
        return
    try:
        report_failure(ctx, reason)
    except Exception as exc:  # noqa: BLE001 — GitHub unreachable: the dashboard still says why
        log.warning("could not report the failure on GitHub", error=type(exc).__name__)


def _record_end(ctx: JobContext, state: str, outcome: str, **fields) -> None:
    for attempt in range(FINISH_ATTEMPTS):
        try:
            with session_scope(ctx.settings.database_url) as session:
                if not jobs.finish(session, ctx.job.id, state, outcome, holder=ctx.holder, **fields):
                    log.warning("job no longer ours at its end (cancelled or taken over)")
            return
        except DBAPIError:
            if attempt == FINISH_ATTEMPTS - 1:
                raise  # the lease lapses and the sweep hands the job to another worker
            time.sleep(2**attempt)


def _remove_lost_sandboxes(job_id: int) -> None:
    """A takeover first clears what the lost worker left: its sandboxes for this job."""
    try:
        removed = docker.sweep_orphans(labels={docker.LABEL_JOB: str(job_id)})
        if removed:
            log.info("removed the lost worker's sandboxes", count=len(removed))
    except Exception as exc:  # noqa: BLE001 — no Docker on this worker
        log.debug("no Docker sandboxes to reclaim", error=str(exc))


def sweep() -> None:
    """Worker-side housekeeping: remove sandboxes whose job is no longer running or whose worker died,
    audit records past their retention, and report fix pull requests left open too long."""
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
