"""HTML dashboard: the job list with each installation's GitHub request budget, and one job with its
outcome, diff, logs and trajectory."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from app.api import get_job, list_budgets, list_jobs
from app.deps import SessionDep

router = APIRouter()
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/jobs")


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, session: SessionDep, repo: str | None = None, state: str | None = None):
    rows = list_jobs(session, repo, state, 200)
    return templates.TemplateResponse(request, "jobs.html", {"jobs": rows, "repo": repo, "state": state,
                                                             "budgets": list_budgets(session)})


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, session: SessionDep, job_id: int):
    job = get_job(session, job_id)
    return templates.TemplateResponse(request, "job.html", {"job": job})
