"""What a handler works with: the job as frozen at trigger time, settings, progress, the PR lock;
and what it answers with (Outcome) or raises (Transient, JobFailed)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from core import jobs
from core.audit import Trail
from core.config import Settings
from core.db.models import Job
from core.db.session import session_scope

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
LOCK_TTL = timedelta(minutes=45)


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

    @cached_property
    def trail(self) -> Trail:
        """The job's audit trail: what it ran, asked the model and wrote to GitHub."""
        job = self.job
        return Trail(self.settings.database_url, job.id, job.installation_id, job.repo, self.settings.secrets())

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


def pr_lock_name(job: Job) -> str:
    return f"pr:{job.repo}#{job.pr_number}"


Handler = Callable[[JobContext], Outcome]
