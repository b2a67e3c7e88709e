"""`/qwen` commands on pull requests: fix, explain, help, stop, retry.

Every command job first acknowledges the comment (👀), then checks that the commenter may write
to the repository. Context is frozen at trigger time: the command text comes from the webhook
payload, and no other comment is read.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core import jobs
from core.db.models import Job
from core.db.session import session_scope
from core.github import FAILING
from core.queue import enqueue
from workers.agent.explain import explain_failure
from workers.context import JobContext, Outcome
from workers.engine.task import RepairTask
from workers.engine.test_command import detect_test_command
from workers.failure.report import as_prompt
from workers.github import comments, messages
from workers.github.evidence import collect
from workers.github.job import GitHubJob, call, open_job
from workers.github.repo_config import describe
from workers.handlers.fixing import (
    checkout_head,
    conclude,
    failure_task,
    record,
    refuse_unlisted_image,
    resume_delivery,
    run_engine,
    task_options,
)
from workers.spending import JobSpending

REFUSAL_MEMORY = timedelta(days=365)
HELP = """Commands (a comment whose line starts with `/qwen`):

| command | what it does |
| --- | --- |
| `/qwen fix [instructions]` | repair the failing checks of this pull request, or do what the instructions ask, verify with the tests, and push a commit (or suggest changes when the app may not push here) |
| `/qwen explain` | explain the current CI failure in plain words, without a patch |
| `/qwen stop` | stop the job running on this pull request |
| `/qwen retry` | run the last job again |
| `/qwen help` | this message |

Only people with write access can use them."""


def _acknowledged(ctx: JobContext) -> GitHubJob | Outcome:
    """👀 on the command, then the permission check. An Outcome means: stop here."""
    params = ctx.job.params
    gj = open_job(ctx, head_sha=ctx.job.head_sha)
    call(comments.react, gj.gh, gj.target.repo, params["comment_id"], "eyes", params.get("source") == "review_comment")
    actor = params.get("actor") or ""
    if call(comments.permission, gj.gh, gj.target.repo, actor) not in comments.WRITE_PERMISSIONS:
        _refuse_once(gj, actor)
        return Outcome("skipped", f"@{actor} has no write access; refused")
    if not ctx.job.head_sha and gj.target.current_head_sha:
        ctx.update(head_sha=gj.target.current_head_sha)  # freeze the head as it is now
    return gj


def _refuse_once(gj: GitHubJob, actor: str) -> None:
    """One polite refusal per person per pull request, however often (and however fast) they ask."""
    name = f"refused:{gj.target.repo}#{gj.target.pr_number}:{actor}"
    with session_scope(gj.ctx.settings.database_url) as session:
        first = jobs.acquire_lock(session, name, f"job:{gj.job_id}", REFUSAL_MEMORY)
    if first:
        gj.comment(messages.refusal(actor))


def help_command(ctx: JobContext) -> Outcome:
    gj = _acknowledged(ctx)
    if isinstance(gj, Outcome):
        return gj
    unknown = ctx.job.params.get("unknown")
    intro = f"`/qwen {unknown}` is not a command I know.\n\n" if unknown else ""
    config = describe(gj.config)
    body = f"{intro}{HELP}\n\nThis repository's effective configuration (`.github/qwen.yml` on `{gj.target.base_ref}`):\n\n{config}"
    gj.say("help", body)
    return Outcome("succeeded", "help posted")


def _active_jobs(ctx: JobContext, kinds: tuple[str, ...]) -> list[Job]:
    job = ctx.job
    with session_scope(ctx.settings.database_url) as session:
        return list(session.scalars(select(Job).where(
            Job.repo == job.repo, Job.pr_number == job.pr_number, Job.id != job.id,
            Job.kind.in_(kinds), Job.state.in_(Job.ACTIVE),
        ).order_by(Job.id)))


def stop_command(ctx: JobContext) -> Outcome:
    gj = _acknowledged(ctx)
    if isinstance(gj, Outcome):
        return gj
    stopped = []
    for job in _active_jobs(ctx, ("repair", "fix", "retry", "explain")):
        with session_scope(ctx.settings.database_url) as session:
            if jobs.cancel(session, job.id, f"stopped by @{ctx.job.params.get('actor')}"):
                stopped.append(job.id)
    text = ("Stopped job " + ", ".join(f"[{i}]({messages.job_url(ctx.settings.public_url, i)})" for i in stopped)
            if stopped else "Nothing is running on this pull request.")
    gj.say("stop", text)
    return Outcome("succeeded", text)


def retry_command(ctx: JobContext) -> Outcome:
    gj = _acknowledged(ctx)
    if isinstance(gj, Outcome):
        return gj
    trigger = f"retry:{ctx.job.params['comment_id']}"
    with session_scope(ctx.settings.database_url) as session:
        made = session.scalars(select(Job).where(  # by an earlier run of this same command job
            Job.repo == ctx.job.repo, Job.pr_number == ctx.job.pr_number, Job.trigger == trigger)).first()
        last = session.scalars(select(Job).where(
            Job.repo == ctx.job.repo, Job.pr_number == ctx.job.pr_number, Job.id != ctx.job.id,
            Job.kind.in_(("repair", "fix", "explain")),
        ).order_by(Job.id.desc())).first() if made is None else session.get(Job, made.params.get("retry_of"))
        if last is None:
            gj.say("retry", "There is no earlier job on this pull request to run again.")
            return Outcome("skipped", "nothing to retry")
        again = made or jobs.rerun(session, last, trigger, ctx.job.delivery_id,
                                     retried_by=ctx.job.params.get("actor"))
        again_id, again_token = again.id, None if made else again.enqueue_token
    if again_token:  # (a lost message is sent again by the sweep)
        enqueue(ctx.settings, again_id, again_token)
    link = f"[job {again_id}]({messages.job_url(ctx.settings.public_url, again_id)})"
    gj.say("retry", f"Running job {last.id} again as {link}.")
    return Outcome("succeeded", f"retrying job {last.id} as job {again_id}")


def _failing_evidence(gj: GitHubJob):
    """The failing CI of the frozen head, through its failed workflow runs (or third-party checks)."""
    target = gj.target
    runs = call(gj.gh.rest.actions.list_workflow_runs_for_repo, target.owner, target.name, head_sha=target.head_sha)
    for run in runs.raw_response.json().get("workflow_runs") or []:
        if run.get("conclusion") in FAILING:
            params = {"source": "workflow_run", "run_id": run["id"], "workflow_path": run.get("path")}
            evidence = call(collect, gj.gh, target, params, gj.config.repair.command)
            if evidence.report is not None:
                return evidence
    return None


def fix_command(ctx: JobContext) -> Outcome:
    gj = _acknowledged(ctx)
    if isinstance(gj, Outcome):
        return gj
    if not ctx.try_lock():
        busy = _active_jobs(ctx, ("repair", "fix"))
        link = f" ([job {busy[0].id}]({messages.job_url(ctx.settings.public_url, busy[0].id)}))" if busy else ""
        gj.say("already working on it", f"Another job is already working on this pull request{link}.")
        return Outcome("skipped", "already working on it")
    resumed = resume_delivery(gj)  # an earlier run of this command verified a patch: deliver it
    if resumed is not None:
        return resumed
    refused = refuse_unlisted_image(gj)
    if refused is not None:
        return refused
    spending = JobSpending(gj)
    refused = spending.refuse_start(repair=True)
    if refused is not None:
        return refused
    instructions = (ctx.job.params.get("text") or "").strip() or None
    focus = ctx.job.params.get("path")
    if focus and instructions:
        instructions = f"{instructions}\n\n(The request was made on {focus}, line {ctx.job.params.get('line')}.)"
    gj.stage("reproducing", "looking for failing checks")
    evidence = _failing_evidence(gj)
    common = task_options(gj, instructions=instructions)
    if evidence is not None and evidence.report.command:
        report = evidence.report
        task = failure_task(gj, report, evidence.regression_command, instructions=instructions)
        toolchains = report.ci_job.toolchains if report.ci_job else ()
        title, command, excerpt = f"Fix {report.job_name}", report.command, report.error_excerpt
    else:
        if not instructions:
            gj.finish("nothing to fix", "All checks pass on this commit. Tell me what to change: `/qwen fix <instructions>`.",
                      "neutral", "Nothing to fix")
            return Outcome("skipped", "no failing checks and no instructions")
        command = gj.config.repair.command or _detected_test_command(gj)
        if not command:
            gj.say("no test command",
                   "I could not tell how to run this repository's tests. Set `repair.command` in `.github/qwen.yml`.")
            return Outcome("failed", "no test command to validate with")
        task = RepairTask(command=command, require_failure=False, **common)
        title, excerpt, toolchains = "Apply requested change", "", ()
    result = run_engine(gj, task, spending, toolchains)
    if evidence is not None and evidence.report.command:
        result.notes += evidence.report.notes
    mode = "commit" if gj.target.can_push_to_head else "suggest"
    return conclude(gj, result, spending, command, excerpt,
                    record(result, setup=task.setup, setup_source=task.setup_source),
                    title=title, mode=mode, regression_command=task.regression_command)


def _detected_test_command(gj: GitHubJob) -> str | None:
    with checkout_head(gj) as worktree:
        return detect_test_command(worktree.path)


def explain_command(ctx: JobContext) -> Outcome:
    gj = _acknowledged(ctx)
    if isinstance(gj, Outcome):
        return gj
    evidence = _failing_evidence(gj)
    if evidence is None:
        gj.say("explain", f"No check is failing on `{gj.target.head_sha[:7]}`.")
        return Outcome("succeeded", "no failing checks to explain")
    report = evidence.report
    spending = JobSpending(gj)
    refused = spending.refuse_start(repair=False)
    if refused is not None:
        return refused
    client = spending.client()
    explanation = explain_failure(client, as_prompt(report), gj.secrets) if client else None
    if spending.refusal is not None:
        return spending.stopped()
    explanation = gj.neutralize(explanation) if explanation else None  # the model read the PR's logs
    body = "\n\n".join(p for p in (explanation or "", messages.failure_section(report.command, report.error_excerpt)) if p)
    gj.say(f"why `{report.job_name}` fails", body)
    return Outcome("succeeded", "explanation posted")


HANDLERS = {
    "help": help_command,
    "stop": stop_command,
    "retry": retry_command,
    "fix": fix_command,
    "explain": explain_command,
}
