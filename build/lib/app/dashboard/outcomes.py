"""Pages beside the job pages: what became of delivered fixes (per repository and model, and each fix),
and one job's audit trail. JSON twins under /api. Signed-in people see the fixes of repositories GitHub
lets them read (admins: all); a job's audit trail is readable by whoever may read the job."""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from app.access import MaybeViewer, ReadableJob, SignedIn
from app.dashboard.render import render, templates
from app.deps import SessionDep, SettingsDep
from app.report import duration, fix_table, parse_since
from core import audit
from core.db.models import FixOutcome

router = APIRouter()
templates.env.filters["duration"] = duration
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _since(text: str) -> datetime:
    try:
        return parse_since(text)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/outcomes", response_class=HTMLResponse, include_in_schema=False)
def outcomes_page(request: Request, session: SessionDep, settings: SettingsDep, viewer: SignedIn,
                  since: str = "30d", repo: str | None = None):
    start = _since(since)
    visible = viewer.visible_repos(session, settings)
    fixes = select(FixOutcome).where(FixOutcome.delivered_at >= start).order_by(FixOutcome.id.desc()).limit(200)
    if repo:
        fixes = fixes.where(FixOutcome.repo == repo)
    if visible is not None:
        fixes = fixes.where(func.lower(FixOutcome.repo).in_(visible or [""]))
    return render(request, "outcomes.html", viewer=viewer, rows=fix_table(session, start, repo, visible),
                  fixes=list(session.scalars(fixes)), since=since, repo=repo)


@router.get("/api/outcomes")
def outcomes_api(session: SessionDep, settings: SettingsDep, viewer: SignedIn,
                 since: str = "30d", repo: str | None = None) -> dict:
    rows = fix_table(session, _since(since), repo, viewer.visible_repos(session, settings))
    return {"since": since, "repo": repo, "rows": [row.__dict__ for row in rows]}


@router.get("/jobs/{job_id}/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_page(request: Request, session: SessionDep, job: ReadableJob, viewer: MaybeViewer):
    records = list(audit.export(session, EPOCH, job_id=job.id))
    outcome = session.scalar(select(FixOutcome).where(FixOutcome.job_id == job.id))
    return render(request, "audit.html", viewer=viewer, job=job, records=records, outcome=outcome)


@router.get("/api/jobs/{job_id}/audit")
def audit_api(session: SessionDep, job: ReadableJob) -> dict:
    return {"job": job.id, "records": list(audit.export(session, EPOCH, job_id=job.id))}
