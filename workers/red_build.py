"""Red build repair: a failed workflow run or check suite → reproduce, repair, verify, deliver."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from app.db.models import Job
from app.db.session import session_scope
from app.jobs import as_aware
from workers import ci_logs, reports
from workers.failure import as_prompt
from workers.fix_pipeline import deliver_patch, run_engine
from workers.github_job import GitHubJob, call, open_job
from workers.repair import RepairResult, RepairTask
from workers.runner import JobContext, Outcome, handles

ATTEMPT_STATES = ("succeeded", "failed")  # jobs that actually tried (not skipped or cancelled)


@handles("repair")
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

    gj.stage("reproducing", "reading the failed run")
    evidence = call(ci_logs.collect, gj.gh, target, job.params, gj.config.repair.command)
    report = evidence.report
    if report is None:
        return _finish_without_fix(gj, None, "", [], f"Could not read the failure: {evidence.reason}.")
    own = _own_fix_for(earlier, job.head_sha)
    if own is not None and own.result.get("signature") == report.signature:
        return _finish_without_fix(
            gj, report.command, report.error_excerpt, [],
            f"The same failure came back after qwenfix's own commit (job {own.id}); stopping here.",
            state="skipped",
        )
    if not report.command:
        why = "; ".join(report.notes) or "the failing step has no `run:` command"
        return _finish_without_fix(gj, None, report.error_excerpt, [],
                                   f"Could not tell which command failed ({why}). Set `repair.command` in .github/qwen.yml.")

    regression = gj.config.repair.regression_command or evidence.regression_command
    task = RepairTask(
        command=report.command,
        regression_command=regression if regression and regression != report.command else None,
        setup=gj.config.repair.setup,
        setup_network=gj.config.setup_network(gj.ctx.settings.sandbox_allow_setup_network),
        failure_text=as_prompt(report),
        working_directory=report.working_directory or ".",
        candidates=gj.config.repair.candidates,
        allow_ci_changes=gj.config.repair.allow_ci_changes,
        allow_test_deletion=gj.config.repair.allow_test_deletion,
        ignore_paths=tuple(gj.config.paths.ignore),
        **model_overrides(gj),
    )
    result = run_engine(gj, task)
    fields = record(result, signature=report.signature, failure=as_prompt(report))
    return conclude(gj, result, report.command, report.error_excerpt, fields,
                    title=f"Fix {report.job_name or 'the failing check'}")


def model_overrides(gj: GitHubJob) -> dict:
    model = gj.config.model
    values = {"max_steps": model.max_steps, "temperature": model.temperature, "max_tokens": model.max_tokens}
    return {k: v for k, v in values.items() if v is not None}


def conclude(gj: GitHubJob, result: RepairResult, command: str | None, excerpt: str, fields: dict, title: str,
             mode: str | None = None) -> Outcome:
    """Turn an engine result into what the user sees: delivery, comment, check run and job outcome."""
    candidates = fields["result"].get("candidates", [])
    if result.status == "cancelled":
        gj.comment(reports.outcome(gj.job_id, gj.url, "stopped", "The job was cancelled."))
        gj.check_run("completed", "cancelled", "Stopped", "The job was cancelled.")
        return Outcome("cancelled", "stopped", fields)
    if result.status == "already_passing":
        rerun = gj.config.repair.rerun_flaky and gj.ctx.job.params.get("run_id")
        if rerun:
            call(gj.gh.rest.actions.re_run_workflow_failed_jobs, gj.target.owner, gj.target.name, gj.ctx.job.params["run_id"])
        headline, body = reports.flaky(command, bool(rerun))
        gj.comment(reports.outcome(gj.job_id, gj.url, headline, body))
        gj.check_run("completed", "neutral", "Did not reproduce", body)
        return Outcome("succeeded", f"flaky: {command} passes on reproduction; no patch", fields)
    if result.status != "fixed" or result.chosen is None:
        return _finish_without_fix(gj, command, excerpt, candidates, "No candidate patch passed validation.", fields=fields)

    gj.stage("delivering")
    chosen = result.chosen
    mode = mode or gj.config.effective_mode(gj.target.on_default_branch)
    delivered = deliver_patch(gj, chosen.patch, chosen.summary, mode, title)
    fields["result"]["delivery"] = {"how": delivered.how, **delivered.details}
    fields["result"].update({k: v for k, v in delivered.details.items() if k == "commit_sha"})
    headline, body = reports.fixed(delivered.how, chosen.summary, result.fixer_used)
    if delivered.details.get("comment"):
        from workers.deliver import comment_with_patch_body

        body = f"{body}\n\n{comment_with_patch_body(chosen.patch, '', gj.url)}"
    gj.comment(reports.outcome(gj.job_id, gj.url, headline, body))
    gj.check_run("completed", "success", f"Verified fix: {delivered.how}", body, text=reports.fence(chosen.patch, "diff"))
    return Outcome("succeeded", f"fixed: delivered as {delivered.how}", fields)


def _finish_without_fix(gj, command, excerpt, candidates, reason, fields=None, state="failed") -> Outcome:
    headline, body = reports.no_fix(command, excerpt, candidates, reason)
    gj.comment(reports.outcome(gj.job_id, gj.url, headline, body))
    gj.check_run("completed", "neutral", "No verified fix", body)
    return Outcome(state, f"no verified fix: {reason}", fields or {})


def record(result: RepairResult, **extra) -> dict:
    """What the job row keeps: candidates, chosen patch, trajectory, usage, timings."""
    candidates = [c.describe() for c in result.candidates]
    chosen = result.chosen
    trajectory = [step for c in result.candidates for step in c.trajectory_records()]
    usage: dict = {}
    for c in result.candidates:
        for key, value in c.usage_dict().items():
            usage[key] = usage.get(key, 0) + value
    data = {
        "status": result.status,
        "candidates": candidates,
        "patch": chosen.patch if chosen else None,
        "fixer": result.fixer_used,
        "reproduction": result.reproduction.output[-4000:] if result.reproduction else None,
        **extra,
    }
    return {"result": data, "trajectory": trajectory, "usage": usage, "timings": dict(result.timings)}


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
