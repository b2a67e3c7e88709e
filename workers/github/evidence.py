"""Collect a red build's evidence through the API — failed jobs, their logs, annotations, the workflow
file at the run's head — and turn it into a FailureReport."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from githubkit.exception import RequestFailed

from core.github import FAILING
from workers.failure.report import FailureReport, build_failure_report
from workers.failure.workflow import (
    Workflow,
    job_runner,
    parse_workflow,
    runner_os,
    test_command_guess,
)
from workers.github.target import Target, read_text


@dataclass(frozen=True)
class Evidence:
    report: FailureReport | None
    regression_command: str | None  # the failing job's test command, when the workflow shows one
    failed_jobs: list[str]
    reason: str | None = None  # why there is no report


def _json(response):
    return response.raw_response.json()


def _annotations(gh, target: Target, check_run_id: int) -> list[dict]:
    try:
        items = _json(gh.rest.checks.list_annotations(target.owner, target.name, check_run_id))
    except RequestFailed:
        return []
    return [a for a in items if isinstance(a, dict)] if isinstance(items, list) else []


def from_workflow_run(gh, target: Target, params: dict, override_command: str | None) -> Evidence:
    run_id = params["run_id"]
    data = _json(gh.rest.actions.list_jobs_for_workflow_run(target.owner, target.name, run_id, filter_="latest"))
    jobs = [j for j in data.get("jobs") or [] if isinstance(j, dict)]
    failed = [j for j in jobs if j.get("conclusion") in FAILING]
    if not failed:
        return Evidence(None, None, [], "the run has no failed job any more")
    workflow_path = params.get("workflow_path")
    workflow_yaml = read_text(gh, target.repo, workflow_path, target.head_sha) if workflow_path else None
    try:
        workflow = parse_workflow(workflow_yaml) if workflow_yaml else None
    except ValueError:  # the report says why
        workflow = None
    job = _linux_first(failed, workflow)
    steps = [s for s in job.get("steps") or [] if isinstance(s, dict)]
    step = next((s for s in steps if s.get("conclusion") in FAILING), None)
    log = _job_log(gh, target, job["id"])
    report = build_failure_report(
        job_name=job.get("name") or "",
        step_name=step.get("name") if step else None,
        step_number=step.get("number") if step else None,
        raw_log=log,
        workflow_yaml=workflow_yaml,
        annotations=_annotations(gh, target, job["id"]),  # an Actions job is also a check run
        override_command=override_command,
        log_url=job.get("html_url"),
        # the failing step's own action is read for its command and for its setup steps: once
        read_file=functools.cache(lambda path: read_text(gh, target.repo, path, target.head_sha)),
    )
    try:
        regression = test_command_guess(workflow, job.get("name") or "") if workflow else None
    except ValueError:
        regression = None
    return Evidence(report, regression, [j.get("name") or str(j.get("id")) for j in failed])


def _linux_first(failed: list[dict], workflow: Workflow | None) -> dict:
    """The failed job to repair: the first that ran on Linux, as sandboxes do (a matrix that fails
    on every OS is repaired through its Linux job), else the first."""
    if workflow is not None:
        for job in failed:
            if runner_os(job_runner(workflow, job.get("name") or "")) == "Linux":
                return job
    return failed[0]


def _job_log(gh, target: Target, job_id: int) -> str | None:
    try:
        response = gh.rest.actions.download_job_logs_for_workflow_run(target.owner, target.name, job_id)
    except RequestFailed as exc:
        if exc.response.status_code in (404, 410):  # logs expired or deleted
            return None
        raise
    return response.raw_response.text


def from_checks(gh, target: Target, params: dict, override_command: str | None) -> Evidence:
    """Third-party CI: no logs through the API, only check-run output and annotations."""
    suite_id = params.get("check_suite_id")
    runs: list[dict] = []
    if suite_id:
        data = _json(gh.rest.checks.list_for_suite(target.owner, target.name, suite_id))
        runs = [r for r in data.get("check_runs") or [] if isinstance(r, dict)]
    failed = [r for r in runs if r.get("conclusion") in FAILING]
    if not failed and params.get("check_run_id"):
        failed = [{"id": params["check_run_id"], "name": params.get("check_name") or "check", "output": {}}]
    if not failed:
        return Evidence(None, None, [], "the check suite has no failed check run")
    run = failed[0]
    output = run.get("output") or {}
    text = "\n\n".join(str(output.get(k)) for k in ("title", "summary", "text") if output.get(k))
    report = build_failure_report(
        job_name=run.get("name") or "check",
        step_name=None,
        step_number=None,
        raw_log=text or None,
        workflow_yaml=None,
        annotations=_annotations(gh, target, run["id"]),
        override_command=override_command,
        log_url=run.get("html_url") or run.get("details_url"),
    )
    return Evidence(report, None, [r.get("name") or str(r.get("id")) for r in failed])


def collect(gh, target: Target, params: dict, override_command: str | None) -> Evidence:
    if params.get("source") == "workflow_run":
        return from_workflow_run(gh, target, params, override_command)
    return from_checks(gh, target, params, override_command)
