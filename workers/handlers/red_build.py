"""Red build repair: a failed workflow run or check suite → reproduce, repair, verify, deliver."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from core.db.models import Job
from core.db.session import session_scope
from core.jobs import as_aware
from workers.context import JobContext, Outcome, Transient
from workers.engine.task import RepairResult, RepairTask
from workers.failure.report import FailureReport, as_prompt
from workers.github import messages
from workers.github.evidence import collect
from workers.github.job import GitHubJob, call, open_job
from workers.handlers.fixing import (
    conclude,
    deliver_base_fix,
    failure_task,
    finish_without_fix,
    merge_base,
    record,
    refuse_unlisted_image,
    resume_delivery,
    run_engine,
)
from workers.spending import JobSpending

ATTEMPT_STATES = ("succeeded", "failed")  # jobs that actually tried (not skipped or cancelled)
LOCK_RETRY_S = 5.0  # a pull request found only now may be busy with another job: come back then


def repair_red_build(ctx: JobContext) -> Outcome:
    job = ctx.job
    gj = open_job(ctx, head_branch=job.params.get("head_branch"), head_repo=job.params.get("head_repo"))
    resumed = resume_delivery(gj)  # an earlier run verified a patch: deliver it (the head moved by it)
    if resumed is not None:
        return resumed
    target = gj.target
    if target.untied:  # neither an open pull request's head nor a branch of this repository
        headline, body = messages.untied(job.head_sha, target.untied)
        gj.finish(headline, body, "neutral", "No patch: not a pull request or a branch here")
        return Outcome("skipped", f"no patch: {target.untied}")
    if target.pr_number and not job.pr_number:  # GitHub named no pull request (a fork's): found by its head
        ctx.update(pr_number=target.pr_number)
        job.pr_number = target.pr_number
        if not ctx.try_lock():
            raise Transient("waiting for another job on this pull request", LOCK_RETRY_S)
    if target.current_head_sha and target.current_head_sha != job.head_sha:
        where = "pull request" if target.pr_number else f"branch '{target.head_ref}'"
        return Outcome("skipped", f"the {where} moved on to {target.current_head_sha[:7]}; "
                                  f"this failure is for {job.head_sha[:7]}")
    if target.fork and not gj.config.repair.forks:
        return Outcome("skipped", messages.fork_not_repaired(target.head_repo))
    refused = refuse_unlisted_image(gj)
    if refused is not None:
        return refused
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

    task = failure_task(gj, report, evidence.regression_command)
    base = merge_base(gj)  # before the model sees anything: does the base fail the same way?
    toolchains = report.ci_job.toolchains if report.ci_job else ()
    result = run_engine(gj, task, spending, toolchains, compare_with=base,
                        runner=report.ci_job.runner if report.ci_job else None)
    result.notes += report.notes
    fields = record(result, signature=report.signature, failure=as_prompt(report), setup=task.setup,
                    setup_source=task.setup_source)
    if result.status == "fails_on_base":
        return _fails_on_base(gj, task, result, report, base, fields, spending)
    return conclude(gj, result, spending, report.command, report.error_excerpt, fields,
                    title=f"Fix {report.job_name or 'the failing check'}", regression_command=task.regression_command)


def _fails_on_base(gj: GitHubJob, task: RepairTask, result: RepairResult, report: FailureReport, base: str,
                   fields: dict, spending: JobSpending) -> Outcome:
    """Not the pull request's fault: say so, push nothing to it; with `repair.fix_base`, repair the
    base branch's tip and offer that fix as a pull request into the base branch."""
    target, branch = gj.target, gj.target.base_ref
    fields["result"]["base"] = {"merge_base": base, "branch": branch,
                                "output": result.base_reproduction.output[-4000:] if result.base_reproduction else None}
    fix = None
    if gj.config.repair.fix_base and target.base_sha:
        fixed = run_engine(gj, task, spending, report.ci_job.toolchains if report.ci_job else (), at=target.base_sha)
        fields["result"]["base"]["repair"] = record(fixed)["result"]
        if fixed.status == "fixed" and fixed.chosen is not None:
            gj.stage("delivering")
            title = f"Fix {report.job_name or 'the failing check'} on {branch}"
            summary = fixed.chosen.summary + messages.security_notes(fixed.chosen.security_notes)
            delivered = deliver_base_fix(gj, fixed.chosen.patch, summary, title, target.base_sha)
            fields["result"]["base"]["delivery"] = {"how": delivered.how, **delivered.details}
            fix = messages.base_fix(branch, how=delivered.how)
        elif fixed.status == "already_passing":
            fix = messages.base_fix(branch, passes_at=target.base_sha)
        else:
            fix = messages.base_fix(branch)
    headline, body = messages.fails_on_base(branch, base, report.command, report.error_excerpt, fix)
    gj.finish(headline, body, "neutral", f"Fails on {branch} too")
    return Outcome("succeeded", f"fails on {branch} too: not caused by this pull request", fields)


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
