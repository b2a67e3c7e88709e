"""Thin Celery tasks: unpack arguments, call the runner (which re-sends a job it gives back itself)."""

from __future__ import annotations

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import worker_ready

from core.queue import RUN_JOB, SWEEP, celery_app
from workers import runner


class JobTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        """Runs in the worker's main process when the hard time limit killed the job's process."""
        if isinstance(exc, TimeLimitExceeded) and args:
            runner.end_at_time_limit(args[0])


@celery_app.task(name=RUN_JOB, base=JobTask)
def run_job(job_id: int, token: str | None = None) -> None:
    try:
        runner.run_job(job_id, token=token)  # a job it gives back to the queue it re-sends itself
    except SoftTimeLimitExceeded:  # the limit came between two steps of the runner itself
        runner.end_at_time_limit(job_id)


@celery_app.task(name=SWEEP)
def sweep() -> None:
    runner.sweep()


@worker_ready.connect
def _sweep_at_start(**_kwargs) -> None:
    """A worker that crashed left sandboxes behind: clear them before taking new work."""
    runner.sweep()
