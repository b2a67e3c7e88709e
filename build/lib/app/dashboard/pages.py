"""HTML dashboard: the overview, the job list (with each installation's GitHub request budget, for
admins), one job, installations. Signed-in people see the jobs of repositories GitHub lets them
read; admins see all."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup
from sqlalchemy import func, select

from app.access import MaybeViewer, Public, ReadableJob, SignedIn
from app.api import list_budgets, list_jobs
from app.dashboard import overview, views
from app.dashboard.render import render
from app.deps import SessionDep, SettingsDep
from core import installations, jobs
from core.db.models import Job, utcnow

CHART_DAYS = 14

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request, session: SessionDep, settings: SettingsDep, viewer: MaybeViewer, _: Public):
    if not settings.app_configured:
        return RedirectResponse("/setup", status_code=303)  # a fresh install: register the App first
    if viewer is None:
        return RedirectResponse("/login", status_code=303)
    visible = viewer.visible_repos(session, settings)
    counts = select(Job.repo, Job.state, func.count()).group_by(Job.repo, Job.state)
    recent = select(Job.repo, Job.state, Job.created_at, Job.usage).where(
        Job.created_at >= utcnow() - timedelta(days=CHART_DAYS + 1))
    if visible is not None:
        counts = counts.where(func.lower(Job.repo).in_(visible or [""]))
        recent = recent.where(func.lower(Job.repo).in_(visible or [""]))
    counted = [tuple(row) for row in session.execute(counts)]
    days = overview.per_day([overview.JobFacts(r, s, c, overview.tokens_of(u))
                             for r, s, c, u in session.execute(recent)], utcnow().date(), CHART_DAYS)
    return render(request, "overview.html", viewer=viewer, repositories=overview.by_repository(counted),
                  states=overview.STATES, days=days, totals=overview.totals(days),
                  active=sum(n for _, state, n in counted if state in Job.ACTIVE),
                  chart=Markup(overview.chart_svg(days)))  # numbers and dates only, built here


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, session: SessionDep, settings: SettingsDep, viewer: SignedIn,
              repo: str | None = None, state: str | None = None):
    rows = list_jobs(session, repo, state, 200, viewer.visible_repos(session, settings))
    budgets = list_budgets(session) if viewer.admin else []  # the operator's view
    return render(request, "jobs.html", viewer=viewer, jobs=rows, repo=repo, state=state, budgets=budgets)


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, session: SessionDep, settings: SettingsDep, job: ReadableJob,
             viewer: MaybeViewer):
    can_write = viewer.access(session, settings).can_write(job.repo)  # buttons; the POST asks again
    patch = (job.result or {}).get("patch")
    return render(request, "job.html", viewer=viewer, job=job, can_write=can_write,
                  diff=views.diff_lines(patch), diffstat=views.diff_stat(patch),
                  timeline=views.timeline(job.created_at, job.started_at, job.timings or {}),
                  steps=views.trajectory_steps(job.trajectory), result=job.result or {},
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
