"""One job from start to finish: claim it, take the pull request's lock, run its kind's handler, record.

Handlers live one per behaviour (workers/red_build.py, workers/pr_commands.py, …) and register here by
job kind. A kind without a handler finishes as `skipped` with that reason.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable

import structlog

from app import jobs
from app.config import Settings, get_settings
from app.db.models import Job
from app.db.session import session_scope
from app.logs import get_logger

log = get_logger("qwenfix.runner")
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
LOCK_TTL = timedelta(minutes=45)
LOCK_RETRY_S = 5.0


class Transient(Exception):
    """A failure worth retrying later (GitHub 5xx, secondary rate limit, network)."""

    def __init__(self, message: str, retry_after: float = 10.0):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Outcome:
    state: str  # succeeded | failed | skipped | cancelled
    message: str
    fields: dict = field(default_factory=dict)  # result, trajectory, usage, timings, head_sha


@dataclass
class JobContext:
    """What a handler gets: the job as frozen at trigger time, settings and a way to report progress."""

    job: Job
    settings: Settings

    def progress(self, text: str) -> bool:
        """Record progress; False once the job was cancelled (`/qwen stop`, newer push)."""
        with session_scope(self.settings.database_url) as session:
            return jobs.heartbeat(session, self.job.id, text)

    def cancelled(self) -> bool:
        with session_scope(self.settings.database_url) as session:
            job = session.get(Job, self.job.id)
            return job is None or job.state == "cancelled"

    def update(self, **fields) -> None:
        with session_scope(self.settings.database_url) as session:
            job = session.get(Job, self.job.id)
            for key, value in fields.items():
                setattr(job, key, value)


Handler = Callable[[JobContext], Outcome]
HANDLERS: dict[str, Handler] = {}


def handles(*kinds: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for kind in kinds:
            HANDLERS[kind] = fn
        return fn

    return register


def _load_handlers() -> None:
    # importing the behaviour modules registers their handlers
    import workers.installations  # noqa: F401


def run_job(job_id: int, settings: Settings | None = None) -> float | None:
    """Run one job. Returns seconds to wait before trying again, or None when the job is done with."""
    settings = settings or get_settings()
    _load_handlers()
    structlog.contextvars.bind_contextvars(job=job_id)
    try:
        with session_scope(settings.database_url) as session:
            job = jobs.claim(session, job_id)
        if job is None:
            log.info("job not claimable (done, cancelled or running elsewhere)")
            return None
        lock = f"pr:{job.repo}#{job.pr_number}" if job.pr_number else None
        if lock:
            with session_scope(settings.database_url) as session:
                if not jobs.acquire_lock(session, lock, WORKER_ID, LOCK_TTL):
                    jobs.release_to_queue(session, job_id, "waiting for another job on this pull request")
                    return LOCK_RETRY_S
        try:
            return _run_claimed(job, settings)
        finally:
            if lock:
                with session_scope(settings.database_url) as session:
                    jobs.release_lock(session, lock, WORKER_ID)
    finally:
        structlog.contextvars.unbind_contextvars("job")


def _run_claimed(job: Job, settings: Settings) -> float | None:
    handler = HANDLERS.get(job.kind)
    started = time.monotonic()
    if handler is None:
        outcome = Outcome("skipped", f"no runner for job kind '{job.kind}' yet")
    else:
        log.info("job started", kind=job.kind, repo=job.repo, pr=job.pr_number)
        try:
            outcome = handler(JobContext(job=job, settings=settings))
        except Transient as exc:
            log.warning("transient failure; will retry", error=str(exc))
            with session_scope(settings.database_url) as session:
                jobs.release_to_queue(session, job.id, f"retrying: {exc}")
            return exc.retry_after
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


def sweep() -> None:
    """Worker-side housekeeping: remove sandboxes whose job is no longer running."""
    settings = get_settings()
    try:
        from workers.sandbox.docker import sweep_orphans
    except ImportError:
        return
    with session_scope(settings.database_url) as session:
        from sqlalchemy import select

        alive = {str(i) for i in session.scalars(select(Job.id).where(Job.state == "running"))}
    try:
        sweep_orphans(alive_job_ids=alive)
    except Exception as exc:  # noqa: BLE001 — no Docker on this worker: nothing to sweep
        log.debug("sandbox sweep skipped", error=str(exc))
