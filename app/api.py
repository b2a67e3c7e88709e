"""JSON API over jobs: GET /api/jobs, GET /api/jobs/{id}, GET /api/jobs/{id}/trajectory.

For signed-in people (session or personal API token): each sees the jobs of the repositories
GitHub lets them read; admins see all.
"""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import ReadableJob, SignedIn
from app.deps import SessionDep, SettingsDep
from core.db.models import Job

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
