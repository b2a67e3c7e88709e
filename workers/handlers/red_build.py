"""Red build repair: a failed workflow run or check suite → reproduce, repair, verify, deliver."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from core.db.models import Job
from core.db.session import session_scope
from core.jobs import as_aware
from workers.context import JobContext, Outcome
from workers.engine.task import RepairTask
from workers.failure.report import as_prompt
from workers.github.evidence import collect
from workers.github.job import call, open_job
from workers.handlers.fixing import (
    conclude,
    finish_without_fix,
    record,
    run_engine,
    task_options,
)
from workers.spending import JobSpending

ATTEMPT_STATES = ("succeeded", "failed")  # jobs that actually tried (not skipped or cancelled)


def repair_red_build(ctx: JobContext) -> Outcome:
    job = ctx.job
    gj = open_job(ctx, head_branch=job.params.get("head_branch"))
    target = gj.target
    if target.pr_number and target.current_head_sha and target.current_head_sha != job.head_sha:
        return Outcome("skipped", f"the pull request moved on to {target.current_head_sha[:7]}; "
                                  f"this failure is for {job.head_sha[:7]}")
    branch = target.head_ref or ""
    if not gj.config.branch_allowed(branch):
        return Outcome("skipped", f"branch '{branch}' is excluded by repair.branches in .github/qwen.yml")
    earlier = _earlier_jobs(ctx)
    cap = gj.config.repair.max_attempts_per_day
    if len(_attempts_today(earlier)) >= cap:
        return Outcome("skipped", f"attempt cap reached: {cap} repair attempts on this pull request today "
                                  "(repair.max_attempts_per_day)")
    spending = JobSpending(gj)
    refused = spending.refuse_start(repair=True)
    if refused is not None:
        return refused

    gj.stage("reproducing", "reading the failed run")
    evidence = call(collect, gj.gh, target, job.params, gj.config.repair.command)
    report = evidence.report
    if report is None:
        return finish_without_fix(gj, None, "", [], f"Could not read the failure: {evidence.reason}.")
    own = _own_fix_for(earlier, job.head_sha)
    if own is not None and own.result.get("signature") == report.signature:
        return finish_without_fix(
            gj, report.command, report.error_excerpt, [],
            f"The same failure came back after qwenfix's own commit (job {own.id}); stopping here.",
            state="skipped",
        )
    if not report.command:
        why = "; ".join(report.notes) or "the failing step has no `run:` command"
        return finish_without_fix(gj, None, report.error_excerpt, [],
                                   f"Could not tell which command failed ({why}). Set `repair.command` in .github/qwen.yml.")

    regression = gj.config.repair.regression_command or evidence.regression_command
    task = RepairTask(
        command=report.command,
        regression_command=regression if regression and regression != report.command else None,
        failure_text=as_prompt(report),
        working_directory=report.working_directory or ".",
        **task_options(gj),
    )
    result = run_engine(gj, task, spending)
    fields = record(result, signature=report.signature, failure=as_prompt(report))
    return conclude(gj, result, spending, report.command, report.error_excerpt, fields,
                    title=f"Fix {report.job_name or 'the failing check'}", regression_command=task.regression_command)


def _earlier_jobs(ctx: JobContext) -> list[Job]:
    job = ctx.job
    if not job.pr_number:
        return []
    with session_scope(ctx.settings.database_url) as session:
        return list(session.scalars(select(Job).where(
            Job.repo == job.repo, Job.pr_number == job.pr_number, Job.id != job.id,
            Job.kind.in_(("repair", "fix")),
        )))


def _attempts_today(jobs: list[Job]) -> list[Job]:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return [j for j in jobs if j.state in ATTEMPT_STATES and as_aware(j.created_at) >= today]


def _own_fix_for(jobs: list[Job], head_sha: str) -> Job | None:
    """The earlier job whose commit is this head: the failure follows qwenfix's own fix."""
    return next((j for j in jobs if (j.result or {}).get("commit_sha") == head_sha), None)


HANDLERS = {
    "repair": repair_red_build,
}
