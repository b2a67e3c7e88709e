"""Retry and stop a job from its page: POST with the page's CSRF token, for people with write
permission on the job's repository (asked of GitHub afresh) — the same people, and the same
effect, as `/qwen retry` and `/qwen stop` on the pull request."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException
from fastapi.responses import RedirectResponse

from app.access import WritableJob
from app.deps import SessionDep, SettingsDep
from core import installations, jobs
from core.logs import get_logger
from core.queue import enqueue

router = APIRouter(include_in_schema=False)
log = get_logger("qwenfix.actions")


@router.post("/jobs/{job_id}/retry")
def retry_job(settings: SettingsDep, session: SessionDep, allowed: WritableJob) -> RedirectResponse:
    viewer, job = allowed
    if job.kind not in jobs.RETRYABLE:
        raise HTTPException(409, f"a {job.kind} job cannot be run again")
    if job.state in job.ACTIVE:
        raise HTTPException(409, f"job {job.id} is still {job.state}: stop it first")
    refused = installations.refusal(session, job.installation_id)
    if refused:
        raise HTTPException(409, f"cannot run it again: {refused}")
    again = jobs.rerun(session, job, f"retry:dashboard:{uuid.uuid4().hex[:12]}", retried_by=viewer.login)
    session.commit()  # durable before the broker hears of it
    if not enqueue(settings, again.id, again.enqueue_token):
        jobs.mark_enqueued(session, again.id, enqueued=False)  # the sweep hands it over later
    log.info("job retried from the dashboard", job=job.id, again=again.id, actor=viewer.login)
    return RedirectResponse(f"/jobs/{again.id}", status_code=303)


@router.post("/jobs/{job_id}/stop")
def stop_job(session: SessionDep, allowed: WritableJob) -> RedirectResponse:
    viewer, job = allowed
    if not jobs.cancel(session, job.id, f"stopped by @{viewer.login} from the dashboard"):
        raise HTTPException(409, f"job {job.id} is already {job.state}")
    log.info("job stopped from the dashboard", job=job.id, actor=viewer.login)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)
