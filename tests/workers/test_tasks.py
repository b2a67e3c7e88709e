"""Every job has a hard time limit: a job that runs past it ends `failed`, says why on its pull
request, is never retried, and leaves no sandbox behind."""

from __future__ import annotations

import time

import docker
import pytest
import yaml

from core.queue import time_limits
from tests.repos import BASE_FILES, BROKEN_CALC, REPO, failing_job, workflow_run_event
from tests.support.db import wait_for
from tests.support.fake_openai import stall

pytestmark = pytest.mark.docker
LIMIT_S = 20


@pytest.fixture
def stack_settings() -> dict:
    # the sandbox's own command timeout is far away: only the job's time limit can end `sleep 600`
    return {"job_time_limit_s": LIMIT_S, "sandbox_command_timeout_s": 900}


def test_celery_limits_follow_the_operators_job_time_limit(make_settings):
    assert time_limits(make_settings(job_time_limit_s=3600)) == (3615, 3675)
    assert time_limits(make_settings(job_time_limit_s=600)) == (615, 675)
    assert time_limits(make_settings(job_time_limit_s=LIMIT_S)) == (25, 35)  # margins in proportion


def red_build(stack, config: dict) -> tuple[int, str]:
    """A pull request whose test fails, and the webhook of its red workflow run: (job id, head)."""
    gh = stack.github
    gh.add_repo(REPO, dict(BASE_FILES, **{".github/qwen.yml": yaml.safe_dump(config)}))
    head = gh.push(REPO, "feature", {"calc.py": BROKEN_CALC}, "Refactor add", parent_branch="main")
    gh.add_pull(REPO, 7, head_ref="feature", base_ref="main")
    gh.add_workflow_run(REPO, 910, head, jobs=[failing_job(9100)], pull_numbers=(7,), head_branch="feature")
    return stack.deliver("workflow_run", workflow_run_event(REPO, {"id": 910, "head_sha": head}, (7,))).json()["job"], head


def assert_stopped_at_the_time_limit(stack, job_id: int, head: str) -> None:
    gh = stack.github
    job = stack.wait(job_id, timeout=time_limits(stack.settings)[1] + 60)
    assert job.state == "failed"
    assert job.outcome == f"time limit: stopped after {LIMIT_S} s (QWENFIX_JOB_TIME_LIMIT_S)"
    # a killed job's row is ended first, then its PR is told
    [comment] = wait_for(lambda: [c for c in gh.bot_comments(REPO, 7) if "stopped at the time limit" in c["body"]],
                         message="the time limit on the PR")
    assert "QWENFIX_JOB_TIME_LIMIT_S" in comment["body"] and len(gh.bot_comments(REPO, 7)) == 1
    [check] = wait_for(lambda: [c for c in gh.check_runs(REPO, head) if c["status"] == "completed"],
                       message="the check run to conclude")
    assert check["conclusion"] == "timed_out" and len(gh.check_runs(REPO, head)) == 1
    assert gh.ref(REPO, "refs/heads/feature") == head
    # its sandbox is gone, and the job is over: not delivered to a worker again
    client = docker.from_env()
    workspace_root = str(stack.settings.data_dir)
    left = [c for c in client.containers.list(all=True, filters={"label": "qwenfix=1"}, ignore_removed=True)
            if c.labels.get("qwenfix.workspace", "").startswith(workspace_root)]
    assert left == []
    time.sleep(3)
    again = stack.job(job_id)
    assert (again.state, again.attempts) == ("failed", 1)


def test_a_job_past_its_time_limit_ends_failed_and_says_why_on_the_pr(stack):
    """Fails on main: nothing limits a job's wall time there, so the job below runs `sleep 600` in
    its sandbox for ten minutes and holds a worker all that time."""
    job_id, head = red_build(stack, {"repair": {"command": "sleep 600"}})
    assert_stopped_at_the_time_limit(stack, job_id, head)
    assert stack.model.requests == []


def test_a_job_the_soft_limit_cannot_end_is_killed_and_still_says_why(stack):
    """The model does not answer: the job waits in an HTTP read that neither its deadline nor
    Celery's soft limit can interrupt, so Celery kills its process at the hard limit and the
    worker's main process ends the job. Fails on main: there the job holds its worker for as long
    as the model keeps it waiting (here two 120-second reads per candidate), then fails without
    saying it was stopped."""
    stack.model.script([stall(300)])
    job_id, head = red_build(stack, {"repair": {"mode": "commit"}})
    assert_stopped_at_the_time_limit(stack, job_id, head)
    assert len(stack.model.chat_requests()) >= 1
