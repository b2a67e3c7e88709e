"""One job from start to finish: claim it, take the pull request's lock, run its kind's handler, record.

Handlers live one per behaviour (workers/red_build.py, workers/pr_commands.py, …) and register here by
job kind. A kind without a handler finishes as `skipped` with that reason.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta

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
WAIT_FOR_PR_LOCK = ("repair",)  # these queue behind a running job; `/qwen fix` answers "already working"


class Transient(Exception):
    """A failure worth retrying later (GitHub 5xx, secondary rate limit, network)."""

    def __init__(self, message: str, retry_after: float = 10.0):
        super().__init__(message)
        self.retry_after = retry_after


class JobFailed(Exception):
    """A failure with a reason a person can act on (configuration, permissions): shown as is."""


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
    holds_lock: bool = False
    resources: ExitStack = field(default_factory=ExitStack)  # closed when the handler returns

    def progress(self, text: str) -> bool:
        """Record progress; False once the job was cancelled (`/qwen stop`, newer push)."""
        with session_scope(self.settings.database_url) as session:
            return jobs.heartbeat(session, self.job.id, text)

    def cancelled(self) -> bool:
        with session_scope(self.settings.database_url) as session:
            job = session.get(Job, self.job.id)
            return job is None or job.state == "cancelled"

    def try_lock(self) -> bool:
        """Take this pull request's lock (released when the job ends). False: another job holds it."""
        if not self.job.pr_number:
            return True
        with session_scope(self.settings.database_url) as session:
            taken = jobs.acquire_lock(session, pr_lock_name(self.job), WORKER_ID, LOCK_TTL)
        self.holds_lock = self.holds_lock or taken
        return taken

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
    import workers.pr_commands  # noqa: F401
    import workers.red_build  # noqa: F401
    import workers.review.handler  # noqa: F401


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


def pr_lock_name(job: Job) -> str:
    return f"pr:{job.repo}#{job.pr_number}"


def _run_claimed(ctx: JobContext) -> float | None:
    job, settings = ctx.job, ctx.settings
    handler = HANDLERS.get(job.kind)
    started = time.monotonic()
    if handler is None:
        outcome = Outcome("skipped", f"no runner for job kind '{job.kind}' yet")
    else:
        log.info("job started", kind=job.kind, repo=job.repo, pr=job.pr_number)
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


def sweep() -> None:
    """Worker-side housekeeping: remove sandboxes whose job is no longer running."""
    from sqlalchemy import select

    from workers.sandbox import bwrap, docker

    settings = get_settings()
    with session_scope(settings.database_url) as session:
        alive = {str(i) for i in session.scalars(select(Job.id).where(Job.state == "running"))}
    for name, sweep_engine in (("docker", lambda: docker.sweep_orphans(alive_job_ids=alive)), ("bwrap", bwrap.sweep_orphans)):
        try:
            removed = sweep_engine()
            if removed:
                log.info("removed orphaned sandboxes", engine=name, count=len(removed))
        except Exception as exc:  # noqa: BLE001 — that engine is absent on this worker
            log.debug("sandbox sweep skipped", engine=name, error=str(exc))
