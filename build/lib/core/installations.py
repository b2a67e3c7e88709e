"""Installations of the App and their repositories, as the database keeps them.

Kept in step by `installation` / `installation_repositories` events (workers/handlers/installations)
and by a reconcile against GitHub at start and in the sweep (app/reconcile). A suspended or deleted
installation's queued and running jobs are cancelled, and no new job starts for it.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.db.models import Installation, Job, utcnow

ACTIVE, SUSPENDED, DELETED = "active", "suspended", "deleted"
SYNC_KIND = "installation_sync"  # the job that records an installation event always runs


def record(session: Session, installation_id: int, *, account: str | None = None,
           account_type: str | None = None, repositories: list[str] | None = None,
           status: str | None = None) -> Installation:
    """Create or update an installation; ``None`` leaves a field as it is."""
    row = session.get(Installation, installation_id)
    if row is None:
        row = Installation(id=installation_id, repositories=[], status=ACTIVE, active=True)
        session.add(row)
    if account:
        row.account = account
    if account_type:
        row.account_type = account_type
    if repositories is not None:
        row.repositories = _unique(repositories)
    if status is not None:
        row.status, row.active = status, status == ACTIVE
    if not row.active:
        stop_jobs(session, installation_id, row.status)
    return row


def change_repositories(session: Session, installation_id: int, added: list[str],
                        removed: list[str]) -> Installation:
    row = record(session, installation_id)
    kept = [r for r in row.repositories or [] if r not in removed]
    row.repositories = _unique(kept + added)
    return row


def stop_jobs(session: Session, installation_id: int, status: str) -> int:
    """Cancel the installation's queued and running jobs (a running one stops at its next
    heartbeat, its sandboxes with it)."""
    result = session.execute(
        update(Job)
        .where(Job.installation_id == installation_id, Job.state.in_(Job.ACTIVE), Job.kind != SYNC_KIND)
        .values(state="cancelled", outcome=f"the App's installation was {status}",
                progress="cancelled", finished_at=utcnow())
    )
    return result.rowcount or 0


def refusal(session: Session, installation_id: int | None) -> str | None:
    """Why no job may start for this installation, or None (unknown installations may: the
    event that tells about them can arrive after their first webhook)."""
    if installation_id is None:
        return None
    row = session.get(Installation, installation_id)
    if row is None or row.active:
        return None
    return f"installation {installation_id} is {row.status}"


def listed(session: Session) -> list[Installation]:
    return list(session.scalars(select(Installation).order_by(Installation.account, Installation.id)))


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(n for n in names if n))
