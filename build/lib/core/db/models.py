"""State: webhook deliveries, jobs, installations, per-pull-request locks, GitHub request budgets,
the webhook redeliveries asked of GitHub, and the people who sign in to the dashboard (their
sessions and personal API tokens); what delivered fixes became (FixOutcome), what each model request
used (ModelCall), and the append-only audit trail (AuditRecord)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Delete,
    Float,
    Index,
    Integer,
    String,
    Text,
    Update,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict: JSON, list: JSON}


class Delivery(Base):
    """One webhook delivery; the primary key is GitHub's X-GitHub-Delivery id."""

    __tablename__ = "deliveries"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    event: Mapped[str] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    repo: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # accepted | ignored
    reason: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # repair | fix | explain | help | stop | retry | review | installation_sync
    state: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    # queued | running | succeeded | failed | skipped | cancelled
    outcome: Mapped[str | None] = mapped_column(Text)  # one line a person can read
    installation_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    repo: Mapped[str | None] = mapped_column(String(200), index=True)
    pr_number: Mapped[int | None] = mapped_column(Integer)
    head_sha: Mapped[str | None] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(200))
    delivery_id: Mapped[str | None] = mapped_column(String(80))
    idempotency_key: Mapped[str] = mapped_column(String(500), unique=True)
    params: Mapped[dict] = mapped_column(default=dict)  # what the intent needs, frozen at trigger time
    progress: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict] = mapped_column(default=dict)  # patch, urls, fixer, candidates
    trajectory: Mapped[list] = mapped_column(default=list)
    usage: Mapped[dict] = mapped_column(default=dict)
    timings: Mapped[dict] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims by a worker
    retries: Mapped[int] = mapped_column(Integer, default=0)  # given back to the queue (transient, lock busy)
    takeovers: Mapped[int] = mapped_column(Integer, default=0)  # lease lapsed: its worker was lost
    # the broker message that may run the job (job id + this token); any other copy is a no-op
    enqueue_token: Mapped[str | None] = mapped_column(String(40))
    holder: Mapped[str | None] = mapped_column(String(120))  # the worker (and claim) running it
    run_after: Mapped[datetime | None] = mapped_column()  # not before (a retry's backoff)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()

    ACTIVE = ("queued", "running")

    def as_dict(self, full: bool = False) -> dict:
        data = {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "outcome": self.outcome,
            "progress": self.progress,
            "installation_id": self.installation_id,
            "repo": self.repo,
            "pr_number": self.pr_number,
            "head_sha": self.head_sha,
            "trigger": self.trigger,
            "delivery_id": self.delivery_id,
            "attempts": self.attempts,
            "retries": self.retries,
            "takeovers": self.takeovers,
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "usage": self.usage,
            "timings": self.timings,
        }
        if full:
            data.update(params=self.params, result=self.result, trajectory=self.trajectory)
        return data


class Installation(Base):
    __tablename__ = "installations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account: Mapped[str | None] = mapped_column(String(200))
    account_type: Mapped[str | None] = mapped_column(String(32))  # Organization | User
    repositories: Mapped[list] = mapped_column(default=list)  # full names
    active: Mapped[bool] = mapped_column(default=True)  # status == "active"
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | suspended | deleted
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Lock(Base):
    """A lease on a name (one pull request): rows expire so a crashed worker never holds one forever."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(300), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column()


class Person(Base):
    """Someone who signed in with GitHub. Their user-to-server token is kept encrypted: it is
    what says which repositories they may see (app/permissions.py)."""

    __tablename__ = "people"

    login: Mapped[str] = mapped_column(String(100), primary_key=True)
    github_id: Mapped[int] = mapped_column(BigInteger)
    credentials: Mapped[str] = mapped_column(Text)  # encrypted JSON: token, refresh token, expiries
    signed_in_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebSession(Base):
    """A signed-in browser; the cookie carries the key, the row its hash. Signing out deletes it."""

    __tablename__ = "web_sessions"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    login: Mapped[str] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class ApiToken(Base):
    """A personal bearer token for the JSON API, made on the dashboard; only its hash is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    login: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # shown, so people can tell tokens apart
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class GitHubBudget(Base):
    """One installation's REST budget as GitHub last reported it (``x-ratelimit-*``), what qwenfix
    spent of it, and a pause GitHub asked for (a rate limit): shown on the dashboard."""

    __tablename__ = "github_budgets"

    installation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    limit: Mapped[int | None] = mapped_column(Integer)
    remaining: Mapped[int | None] = mapped_column(Integer)
    reset_at: Mapped[datetime | None] = mapped_column()
    used: Mapped[int | None] = mapped_column(Integer)  # requests spent in the current window (x-ratelimit-used)
    paused_until: Mapped[datetime | None] = mapped_column()
    pause_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Redelivery(Base):
    """A failed webhook delivery that qwenfix asked GitHub to send again (once per GUID)."""

    __tablename__ = "redeliveries"

    guid: Mapped[str] = mapped_column(String(80), primary_key=True)  # X-GitHub-Delivery
    delivery_id: Mapped[int] = mapped_column(BigInteger)  # GitHub's id of the failed attempt
    event: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(Text)  # how the failed attempt ended, as GitHub says
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)


class FixOutcome(Base):
    """What became of one delivered fix, followed through GitHub's own events: applied or dismissed
    suggestions, a fix commit kept or overwritten at merge, a fix pull request merged or closed, and
    whether CI was green on the commit that carries the fix."""

    __tablename__ = "fix_outcomes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(Integer, unique=True)
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    repo: Mapped[str] = mapped_column(String(200))
    pr_number: Mapped[int | None] = mapped_column(Integer)  # the pull request the fix is for
    branch: Mapped[str | None] = mapped_column(String(300))  # where the fix lives or is applied
    model: Mapped[str] = mapped_column(String(200))  # the model that made it, or "fixer:<name>"
    how: Mapped[str] = mapped_column(String(16))  # suggest | commit | pull_request | comment
    base_sha: Mapped[str | None] = mapped_column(String(64))  # the commit the fix was made for
    delivered_sha: Mapped[str | None] = mapped_column(String(64))  # the fix commit (commit, pull_request)
    fix_pr_number: Mapped[int | None] = mapped_column(Integer)
    review_id: Mapped[int | None] = mapped_column(BigInteger)
    blocks: Mapped[list] = mapped_column(default=list)  # [{path, lines, state, sha}] what the fix changes
    verdict: Mapped[str] = mapped_column(String(16), default="pending")
    # pending | accepted | rejected | closed (PR closed unmerged) | open (fix PR open after N days)
    verdict_reason: Mapped[str | None] = mapped_column(Text)
    ci_sha: Mapped[str | None] = mapped_column(String(64))  # the commit whose CI tells (fix or applied)
    ci: Mapped[str | None] = mapped_column(String(8))  # None | green | red
    ci_detail: Mapped[str | None] = mapped_column(Text)
    red_at: Mapped[datetime] = mapped_column(default=utcnow)  # when the red build (or command) came in
    delivered_at: Mapped[datetime] = mapped_column(default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column()
    ci_at: Mapped[datetime | None] = mapped_column()
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float | None] = mapped_column(Float)
    model_calls: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_fix_outcomes_repo_ci_sha", "repo", "ci_sha"),
                      Index("ix_fix_outcomes_repo_pr", "repo", "pr_number"))

    def as_dict(self) -> dict:
        return {
            "job_id": self.job_id, "repo": self.repo, "pr_number": self.pr_number, "branch": self.branch,
            "model": self.model, "how": self.how, "delivered_sha": self.delivered_sha,
            "fix_pr_number": self.fix_pr_number, "review_id": self.review_id, "blocks": self.blocks,
            "verdict": self.verdict, "verdict_reason": self.verdict_reason, "ci_sha": self.ci_sha,
            "ci": self.ci, "ci_detail": self.ci_detail, "red_at": _iso(self.red_at),
            "delivered_at": _iso(self.delivered_at), "settled_at": _iso(self.settled_at),
            "tokens": self.tokens, "cost": self.cost, "model_calls": self.model_calls,
        }


class ModelCall(Base):
    """One model request's usage as the endpoint reported it: what budgets and reports add up."""

    __tablename__ = "model_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    job_id: Mapped[int | None] = mapped_column(Integer, index=True)
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    repo: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)  # cached ones included
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float | None] = mapped_column(Float)  # None: the model has no price

    __table_args__ = (Index("ix_model_calls_installation_at", "installation_id", "at"),
                      Index("ix_model_calls_repo_at", "repo", "at"))


class AuditRecord(Base):
    """One action, append-only: who triggered a job, the configuration that applied, a sandbox
    command, a model request, a write to GitHub. Never updated or deleted by the app: only retention
    deletes whole records past QWENFIX_AUDIT_RETENTION_DAYS (core/audit.py)."""

    __tablename__ = "audit_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    job_id: Mapped[int | None] = mapped_column(Integer, index=True)
    installation_id: Mapped[int | None] = mapped_column(BigInteger)
    repo: Mapped[str | None] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # trigger | config | sandbox | model | github
    data: Mapped[dict] = mapped_column(default=dict)

    def as_dict(self) -> dict:
        return {"id": self.id, "at": _iso(self.at), "job_id": self.job_id,
                "installation_id": self.installation_id, "repo": self.repo, "kind": self.kind,
                "data": self.data}


class AppendOnly(RuntimeError):
    """An attempt to change or remove an audit record."""


PURGE_OPTION = "qwenfix_audit_purge"  # execution option of the one statement retention runs


@event.listens_for(AuditRecord, "before_update")
def _refuse_update(_mapper, _connection, target) -> None:
    raise AppendOnly(f"audit record {target.id} is append-only: it cannot be changed")


@event.listens_for(AuditRecord, "before_delete")
def _refuse_delete(_mapper, _connection, target) -> None:
    raise AppendOnly(f"audit record {target.id} is append-only: only retention deletes records")


@event.listens_for(Engine, "before_execute")
def _refuse_bulk_changes(_conn, statement, _multiparams, _params, options) -> None:
    """UPDATE or DELETE statements on the table (bulk, through a session or a connection) skip the
    mapper events above; the database's own triggers (migration 0005) stop raw SQL."""
    table = getattr(statement, "table", None)  # ORM statements carry an annotated copy of the table
    if not isinstance(statement, (Update, Delete)) or getattr(table, "name", None) != AuditRecord.__tablename__:
        return
    purge = options.get(PURGE_OPTION) or statement.get_execution_options().get(PURGE_OPTION)
    if isinstance(statement, Update) or not purge:
        raise AppendOnly("audit records are append-only: they cannot be updated or deleted")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
