"""Thin Celery tasks: unpack arguments, call the runner (which re-sends a job it gives back itself)."""

from __future__ import annotations

from celery.signals import worker_ready

from core.queue import RUN_JOB, SWEEP, celery_app
from workers import runner


@celery_app.task(name=RUN_JOB)
def run_job(job_id: int, token: str | None = None) -> None:
    runner.run_job(job_id, token=token)


@celery_app.task(name=SWEEP)
def sweep() -> None:
    runner.sweep()


@worker_ready.connect
def _sweep_at_start(**_kwargs) -> None:
    """A worker that crashed left sandboxes behind: clear them before taking new work."""
    runner.sweep()
