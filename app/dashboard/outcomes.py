"""Pages beside the job pages: what became of delivered fixes (per repository and model, and each fix),
and one job's audit trail. JSON twins under /api."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from app.api import get_job
from app.deps import SessionDep
from app.report import duration, fix_table, parse_since
from core import audit
from core.db.models import FixOutcome

router = APIRouter()
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["duration"] = duration
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _since(text: str) -> datetime:
    try:
        return parse_since(text)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/outcomes", response_class=HTMLResponse)
def outcomes_page(request: Request, session: SessionDep, since: str = "30d", repo: str | None = None):
    start = _since(since)
    fixes = select(FixOutcome).where(FixOutcome.delivered_at >= start).order_by(FixOutcome.id.desc()).limit(200)
    if repo:
        fixes = fixes.where(FixOutcome.repo == repo)
    return templates.TemplateResponse(request, "outcomes.html", {
        "rows": fix_table(session, start, repo), "fixes": list(session.scalars(fixes)), "since": since, "repo": repo})


@router.get("/api/outcomes")
def outcomes_api(session: SessionDep, since: str = "30d", repo: str | None = None) -> dict:
    return {"since": since, "repo": repo, "rows": [row.__dict__ for row in fix_table(session, _since(since), repo)]}


@router.get("/jobs/{job_id}/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: SessionDep, job_id: int):
    job = get_job(session, job_id)
    records = list(audit.export(session, EPOCH, job_id=job.id))
    outcome = session.scalar(select(FixOutcome).where(FixOutcome.job_id == job.id))
    return templates.TemplateResponse(request, "audit.html", {"job": job, "records": records, "outcome": outcome})


@router.get("/api/jobs/{job_id}/audit")
def audit_api(session: SessionDep, job_id: int) -> dict:
    job = get_job(session, job_id)
    return {"job": job.id, "records": list(audit.export(session, EPOCH, job_id=job.id))}
