"""JSON API over jobs: GET /api/jobs, GET /api/jobs/{id}, GET /api/jobs/{id}/trajectory; and GET
/api/budgets, each installation's GitHub request budget."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.deps import SessionDep
from core.db.models import GitHubBudget, Job

router = APIRouter(prefix="/api")


def list_jobs(session: Session, repo: str | None = None, state: str | None = None, limit: int = 50) -> list[Job]:
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if repo:
        query = query.where(Job.repo == repo)
    if state:
        query = query.where(Job.state == state)
    return list(session.scalars(query))


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(404, f"job {job_id} not found")
    return job


def list_budgets(session: Session) -> list[GitHubBudget]:
    return list(session.scalars(select(GitHubBudget).order_by(GitHubBudget.installation_id)))


@router.get("/budgets")
def budgets_index(session: SessionDep) -> dict:
    """As GitHub last reported each installation's hour (x-ratelimit-*), and a pause it asked for."""
    return {"budgets": [
        {"installation_id": b.installation_id, "limit": b.limit, "remaining": b.remaining, "used": b.used,
         "reset_at": b.reset_at.isoformat() if b.reset_at else None,
         "paused_until": b.paused_until.isoformat() if b.paused_until else None, "pause_reason": b.pause_reason,
         "updated_at": b.updated_at.isoformat() if b.updated_at else None}
        for b in list_budgets(session)
    ]}


@router.get("/jobs")
def jobs_index(
    session: SessionDep, repo: str | None = None, state: str | None = None, limit: int = Query(50, ge=1, le=500)
) -> dict:
    rows = list_jobs(session, repo, state, limit)
    return {"jobs": [job.as_dict() for job in rows]}


@router.get("/jobs/{job_id}")
def job_detail(session: SessionDep, job_id: int) -> dict:
    return get_job(session, job_id).as_dict(full=True)


@router.get("/jobs/{job_id}/trajectory")
def job_trajectory(session: SessionDep, job_id: int) -> dict:
    job = get_job(session, job_id)
    return {"job": job.id, "trajectory": job.trajectory, "usage": job.usage}
