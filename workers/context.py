"""What a handler works with: the job as frozen at trigger time, settings, progress, the PR lock;
and what it answers with (Outcome) or raises (Transient, JobFailed)."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Protocol

from core import jobs
from core.audit import Trail
from core.config import Settings
from core.db.models import Job
from core.db.session import session_scope


class JobVoice(Protocol):
    """What the runner needs of the job's GitHub side (workers.github.job.GitHubJob) once opened:
    its last word when the job ends without the handler's (a failure, the time limit)."""

    def finish(self, headline: str, body: str, conclusion: str, title: str, text: str | None = None) -> None: ...


def new_holder() -> str:
    """Who runs a claim: host and process (a Celery pool child), and a nonce for this claim."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Transient(Exception):
    """A failure worth retrying later (GitHub 5xx, secondary rate limit, network)."""

    def __init__(self, message: str, retry_after: float = 10.0):
        super().__init__(message)
        self.retry_after = retry_after


class JobFailed(Exception):
    """A failure with a reason a person can act on (configuration, permissions): shown as is."""


class JobTimedOut(JobFailed):
    """The job reached its time limit (QWENFIX_JOB_TIME_LIMIT_S); its sandboxes were stopped."""


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
    holder: str | None = None  # this run's claim on the job (None: run outside a worker, e.g. tests)
    holds_lock: bool = False
    resources: ExitStack = field(default_factory=ExitStack)  # closed when the handler returns
    started: float = field(default_factory=time.monotonic)
    lease_lost: threading.Event = field(default_factory=threading.Event)  # set by workers/lease.py
    github: JobVoice | None = None  # the job's GitHubJob once opened: the runner reports a failure or the time limit through it

    @property
    def deadline(self) -> float:
        """time.monotonic() at which the job's time limit is reached."""
        return self.started + self.settings.job_time_limit_s

    @property
    def lock_owner(self) -> str:
        """The PR lock belongs to the job, not the worker: a takeover of this job holds it again."""
        return f"job:{self.job.id}"

    @cached_property
    def trail(self) -> Trail:
        """The job's audit trail: what it ran, asked the model and wrote to GitHub."""
        job = self.job
        return Trail(self.settings.database_url, job.id, job.installation_id, job.repo, self.settings.secrets())

    def progress(self, text: str) -> bool:
        """Record progress; False once the job was cancelled (`/qwen stop`, newer push) or taken over."""
        with session_scope(self.settings.database_url) as session:
            return jobs.heartbeat(session, self.job.id, text, holder=self.holder)

    def cancelled(self) -> bool:
        """True once this run should stop: the job was cancelled, or is no longer this run's."""
        if self.lease_lost.is_set():
            return True
        with session_scope(self.settings.database_url) as session:
            job = session.get(Job, self.job.id)
            if job is None or job.state == "cancelled":
                return True
            if self.holder is not None and (job.state != "running" or job.holder != self.holder):
                self.lease_lost.set()  # taken over after a stall: another worker runs it now
                return True
            return False

    def try_lock(self) -> bool:
        """Take this pull request's lock (renewed with the lease, released when the job ends).
        False: another job holds it."""
        if not self.job.pr_number:
            return True
        ttl = timedelta(seconds=self.settings.job_lease_s)
        with session_scope(self.settings.database_url) as session:
            taken = jobs.acquire_lock(session, pr_lock_name(self.job), self.lock_owner, ttl)
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
