"""HTML dashboard: the job list, and one job with its outcome, diff, logs and trajectory."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from app.api import get_job, list_jobs
from app.dashboard.render import templates
from app.deps import SessionDep, SettingsDep
from core import installations

router = APIRouter()


@router.get("/", include_in_schema=False)
def home(settings: SettingsDep) -> RedirectResponse:
    if not settings.app_configured:
        return RedirectResponse("/setup")  # a fresh install: register the App first
    return RedirectResponse("/jobs")


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, session: SessionDep, repo: str | None = None, state: str | None = None):
    rows = list_jobs(session, repo, state, 200)
    return templates.TemplateResponse(request, "jobs.html", {"jobs": rows, "repo": repo, "state": state})


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, session: SessionDep, job_id: int):
    job = get_job(session, job_id)
    return templates.TemplateResponse(request, "job.html", {"job": job})


@router.get("/installations", response_class=HTMLResponse)
def installations_page(request: Request, session: SessionDep):
    rows = installations.listed(session)
    return templates.TemplateResponse(request, "installations.html", {"installations": rows})
