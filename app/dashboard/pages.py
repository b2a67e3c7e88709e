"""HTML dashboard: the overview, the job list, one job, installations. Signed-in people see the
jobs of repositories GitHub lets them read; admins see all."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from app.access import MaybeViewer, Public, ReadableJob, SignedIn
from app.api import list_jobs
from app.dashboard.render import render
from app.deps import SessionDep, SettingsDep
from core import installations, jobs

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(settings: SettingsDep, viewer: MaybeViewer, _: Public):
    if not settings.app_configured:
        return RedirectResponse("/setup", status_code=303)  # a fresh install: register the App first
    if viewer is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse("/jobs", status_code=303)


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, session: SessionDep, settings: SettingsDep, viewer: SignedIn,
              repo: str | None = None, state: str | None = None):
    rows = list_jobs(session, repo, state, 200, viewer.visible_repos(session, settings))
    return render(request, "jobs.html", viewer=viewer, jobs=rows, repo=repo, state=state)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, session: SessionDep, settings: SettingsDep, job: ReadableJob,
             viewer: MaybeViewer):
    can_write = viewer.access(session, settings).can_write(job.repo)  # buttons; the POST asks again
    return render(request, "job.html", viewer=viewer, job=job, can_write=can_write,
                  retryable=job.kind in jobs.RETRYABLE and job.state not in job.ACTIVE,
                  stoppable=job.state in job.ACTIVE)


@router.get("/installations", response_class=HTMLResponse)
def installations_page(request: Request, session: SessionDep, settings: SettingsDep, viewer: SignedIn):
    visible = viewer.visible_repos(session, settings)
    rows = []
    for row in installations.listed(session):
        repos = [r for r in row.repositories or [] if visible is None or r.lower() in visible]
        if visible is None or repos:
            rows.append({"row": row, "repositories": repos})
    return render(request, "installations.html", viewer=viewer, installations=rows)
