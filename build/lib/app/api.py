"""JSON API over jobs: GET /api/jobs, GET /api/jobs/{id}, GET /api/jobs/{id}/trajectory; and GET
/api/budgets, each installation's GitHub request budget (admins).

For signed-in people (session or personal API token): each sees the jobs of the repositories
GitHub lets them read; admins see all.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import ReadableJob, SignedIn
from app.deps import SessionDep, SettingsDep
from core.db.models import GitHubBudget, Job

router = APIRouter(prefix="/api")


def list_jobs(session: Session, repo: str | None = None, state: str | None = None, limit: int = 50,
              visible: list[str] | None = None) -> list[Job]:
    """Newest first; ``visible``: only these repositories (lower-cased), None: every job."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if visible is not None:
        if not visible:
            return []
        query = query.where(func.lower(Job.repo).in_(visible))
    if repo:
        query = query.where(Job.repo == repo)
    if state:
        query = query.where(Job.state == state)
    return list(session.scalars(query))


def list_budgets(session: Session) -> list[GitHubBudget]:
    return list(session.scalars(select(GitHubBudget).order_by(GitHubBudget.installation_id)))


@router.get("/budgets")
def budgets_index(session: SessionDep, viewer: SignedIn) -> dict:
    """As GitHub last reported each installation's hour (x-ratelimit-*), and a pause it asked for.
    The operator's view: admins only (anyone else gets the same 404 as for a missing page)."""
    if not viewer.admin:
        raise HTTPException(404, "Not Found")
    return {"budgets": [
        {"installation_id": b.installation_id, "limit": b.limit, "remaining": b.remaining, "used": b.used,
         "reset_at": b.reset_at.isoformat() if b.reset_at else None,
         "paused_until": b.paused_until.isoformat() if b.paused_until else None, "pause_reason": b.pause_reason,
         "updated_at": b.updated_at.isoformat() if b.updated_at else None}
        for b in list_budgets(session)
    ]}


@router.get("/jobs")
def jobs_index(
    session: SessionDep, settings: SettingsDep, viewer: SignedIn, repo: str | None = None,
    state: str | None = None, limit: int = Query(50, ge=1, le=500)
) -> dict:
    rows = list_jobs(session, repo, state, limit, viewer.visible_repos(session, settings))
    return {"jobs": [job.as_dict() for job in rows]}


@router.get("/jobs/{job_id}")
def job_detail(job: ReadableJob) -> dict:
    return job.as_dict(full=True)


@router.get("/jobs/{job_id}/trajectory")
def job_trajectory(job: ReadableJob) -> dict:
    return {"job": job.id, "trajectory": job.trajectory, "usage": job.usage}
