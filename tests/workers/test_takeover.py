"""A worker lost mid-job: its job is taken over by exactly one other worker and ends, its sandboxes are
removed; a job lost too often, or retried too often, fails and says why on the pull request."""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from core import jobs
from core.db.models import Job
from core.db.session import session_scope
from tests.repos import BROKEN_CALC, FIXED_CALC, REPO
from tests.support.db import wait_for
from tests.support.fake_openai import call, finish
from tests.workers.handlers.test_red_build import fail_run, setup_pr
from tests.workers.test_lease import SLOW_TEST
from workers import runner
from workers.sandbox.docker import LABEL_JOB, LABEL_PID, list_sandboxes

pytestmark = pytest.mark.docker

AGENT_FIX = [
    call("edit_file", path="calc.py", old="return a - b", new="return a + b"),
    call("run", command="python3 -m pytest -q"),
    finish("add() now adds."),
]


def sandboxes_of(job_id: int, under: Path) -> list:
    """This test's sandboxes of a job (other test runs share the Docker engine, and job ids)."""
    return [c for c in list_sandboxes() if (c.labels or {}).get(LABEL_JOB) == str(job_id)
            and any(str(m.get("Source", "")).startswith(str(under)) for m in c.attrs.get("Mounts") or [])]


def test_a_job_whose_worker_is_killed_mid_job_is_taken_over_once_and_ends(make_stack, start_worker):
    """On main the killed worker's job stayed `running` forever: the redelivered message's claim was
    refused while the heartbeat looked fresh, then dropped, and the sweep re-sent only queued jobs."""
    stack = make_stack(sweep=True, sweep_interval_s=0.3, job_lease_s=3, workers=0)
    doomed, survivor = start_worker(stack.settings), start_worker(stack.settings)
    data = stack.settings.data_dir.resolve()
    gh = stack.github
    head = setup_pr(gh, {"repair": {"mode": "commit", "candidates": 1}},
                    files={"calc.py": BROKEN_CALC, "tests/test_calc.py": SLOW_TEST})
    stack.model.script(AGENT_FIX)
    job_id = fail_run(stack, head)

    boxes = wait_for(lambda: stack.job(job_id).state == "running" and sandboxes_of(job_id, data),
                     timeout=120, message="the job to be running in a sandbox")
    runs_it = int(boxes[0].labels[LABEL_PID])  # the pool process that started the sandbox
    victim = next(p for p in (doomed, survivor) if os.getpgid(runs_it) == p.pid)
    left_behind = {c.id for c in sandboxes_of(job_id, data)}
    os.killpg(victim.pid, signal.SIGKILL)  # the worker and its pool, mid-job

    job = stack.wait(job_id)
    assert job.state == "succeeded", job.outcome
    assert (job.takeovers, job.attempts) == (1, 2)
    assert gh.file_at(REPO, gh.ref(REPO, "refs/heads/feature"), "calc.py") == FIXED_CALC
    assert gh.ref(REPO, "refs/heads/feature~1") == head  # one fix commit
    assert len(gh.bot_comments(REPO, 7)) == 1 and len(gh.check_runs(REPO, head)) == 1
    assert not {c.id for c in sandboxes_of(job_id, data)} & left_behind  # the lost worker's sandboxes are gone
    assert sandboxes_of(job_id, data) == []


def queued_repair(stack, run_id: int) -> int:
    head = stack.github.ref(REPO, "refs/heads/feature")
    return fail_run(stack, head, run_id=run_id, workflow_id=run_id)  # one job per workflow


def test_a_job_lost_or_retried_too_often_fails_and_says_why(make_stack):
    stack = make_stack(workers=0, job_max_takeovers=3, job_max_retries=4)
    gh = stack.github
    setup_pr(gh, {"repair": {"mode": "commit"}})
    lost = queued_repair(stack, 910)
    with session_scope(stack.settings.database_url) as session:
        session.execute(update(Job).where(Job.id == lost).values(takeovers=4))
        session.commit()
    assert runner.run_job(lost, stack.settings) is None
    job = stack.job(lost)
    assert job.state == "failed" and "lost 4 times" in job.outcome
    [comment] = gh.bot_comments(REPO, 7)
    assert "the job failed" in comment["body"] and "lost 4 times" in comment["body"]
    assert [c["conclusion"] for c in gh.check_runs(REPO)] == ["failure"]
    assert stack.model.requests == []

    waiting = queued_repair(stack, 911)
    with session_scope(stack.settings.database_url) as session:
        session.execute(update(Job).where(Job.id == waiting).values(retries=4))
        session.commit()
        assert jobs.acquire_lock(session, f"pr:{REPO}#7", "job:999", timedelta(minutes=5))  # busy
    assert runner.run_job(waiting, stack.settings) is None
    job = stack.job(waiting)
    assert job.state == "failed"
    assert job.outcome == "Gave up after 4 retries; the last one was for: waiting for another job on this pull request."
    assert any("Gave up after 4 retries" in c["body"] for c in gh.bot_comments(REPO, 7))
