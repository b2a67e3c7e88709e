"""Run the repair engine for a GitHub job and deliver its verified patch the way the repository asks.

Shared by red-build repair and `/qwen fix`: both hand over a RepairTask; this module owns the
worktrees, sandboxes and model client for the job, and turns the result into commits, reviews,
pull requests and the final comment and check run.

Work survives a retry: the verified patch is stored on the job before delivery starts, and what
was delivered is stored before the final posts, so a run of the same job after a transient failure
or a lost worker (:func:`resume_delivery`) delivers that patch without asking the model again, and
a commit that an earlier run already pushed is recognised by its ``Qwenfix-Job`` trailer.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from core import outcomes
from core.audit import Trail
from core.config import Settings
from core.db.models import utcnow
from core.db.session import session_scope
from core.jobs import as_aware
from workers.context import JobFailed, JobTimedOut, Outcome
from workers.engine.repair import repair
from workers.engine.setup_cache import SetupCache
from workers.engine.task import RepairResult, RepairTask, RepoContext
from workers.engine.test_results import TestRun, now_passing, read_test_run
from workers.engine.workflow_setup import WORKFLOW_SETUP, job_environment, setup_script
from workers.failure.report import FailureReport, as_prompt
from workers.failure.reproduction import TOOLCHAIN_SETTING, environment_problem
from workers.failure.workflow import runner_os
from workers.github import messages, pulls
from workers.github.fix_blocks import fix_blocks
from workers.github.job import GitHubJob, call
from workers.github.target import Target
from workers.sandbox import ExecResult, Limits
from workers.sandbox.disk import DiskBudget
from workers.sandbox.engines import select_engine
from workers.sandbox.policy import SetupNetworkRefused, image_allowed
from workers.sandbox.recorded import OnExec, RecordedSandbox
from workers.sandbox.toolchains import (
    ImagePlan,
    ToolchainImagesError,
    image_toolchains,
    parse_toolchain_images,
    plan_image,
)
from workers.spending import JobSpending
from workers.workspace.git import AuthenticationError, PushRejected, WorkspaceError
from workers.workspace.mirrors import MirrorCache
from workers.workspace.patches import apply_patch
from workers.workspace.push import commit_and_push, remote_tip_carrying

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivered:
    how: str  # "a commit on the pull request branch", "a suggestion review", …
    details: dict
    mode: str = "comment"  # what it became: commit | pull_request | suggest | comment


def mirror_cache(settings: Settings) -> MirrorCache:
    # worktrees under the data dir: a containerized worker and the Docker host then see one path
    return MirrorCache(settings.mirror_dir, settings.mirror_disk_budget_mb * 1024 * 1024,
                       worktree_dir=settings.data_dir / "worktrees")


def checkout_head(gj: GitHubJob):
    """A pristine worktree of the job's head commit (a context manager)."""
    return checkout_commit(gj, gj.target.head_sha)


def checkout_commit(gj: GitHubJob, sha: str):
    """A pristine worktree of a commit of the job's repository (its head, the base, the merge base)."""
    target = gj.target
    cache = mirror_cache(gj.ctx.settings)
    return with_token(gj, lambda token: cache.checkout(target.clone_url, sha, token, target.fetch_refs))


def audit_commands(trail: Trail, engine: str) -> OnExec:
    """Every command a sandbox runs goes on the job's audit trail."""
    def record(argv: list[str], cwd: str, result: ExecResult | None) -> None:
        if result is None:
            trail.record("sandbox", engine=engine, argv=argv, cwd=cwd, exit_code=None, error="could not run")
            return
        trail.record("sandbox", engine=engine, argv=argv, cwd=cwd, exit_code=result.exit_code,
                     duration_s=round(result.duration_s, 3), timed_out=result.timed_out,
                     oom_killed=result.oom_killed)
    return record


def with_token(gj: GitHubJob, git_call):
    """Run a git call with a token valid now; refused (revoked, expired early): once more with a new one."""
    try:
        return git_call(gj.fresh_token())
    except AuthenticationError:
        return git_call(gj.fresh_token(renew=True))


def refuse_unlisted_image(gj: GitHubJob) -> Outcome | None:
    """`sandbox.image` must be one the operator lists (QWENFIX_SANDBOX_IMAGES); else nothing runs
    and the check run says why."""
    image, allowed = gj.config.sandbox.image, gj.ctx.settings.allowed_sandbox_images
    if image is None or image_allowed(image, allowed):
        return None
    headline, body = messages.image_refused(image, allowed)
    gj.finish(headline, body, "neutral", "Sandbox image not allowed")
    return Outcome("failed", f"sandbox image {image} is not in QWENFIX_SANDBOX_IMAGES")


def merge_base(gj: GitHubJob) -> str | None:
    """Where the pull request starts from its base branch, None when there is no pull request or no
    common ancestor."""
    target = gj.target
    if not target.pr_number or not target.base_sha:
        return None
    try:
        cache = mirror_cache(gj.ctx.settings)
        found = with_token(gj, lambda token: cache.merge_base(target.clone_url, target.head_sha, target.base_sha,
                                                              token, target.fetch_refs))
    except WorkspaceError as exc:  # no base to compare with is no reason to stop the repair
        log.warning("no merge base for %s#%s: %s", target.repo, target.pr_number, exc)
        return None
    return None if found == target.head_sha else found


def choose_image(gj: GitHubJob, engine, toolchains: tuple = ()) -> ImagePlan:
    """The repository's `sandbox.image`, else the image (the operator's default or one mapped in
    QWENFIX_SANDBOX_TOOLCHAIN_IMAGES) that best provides the toolchains the workflow asks for."""
    settings = gj.ctx.settings
    if gj.config.sandbox.image:
        return ImagePlan(gj.config.sandbox.image)
    if not toolchains or engine.name != "docker":  # bubblewrap runs the host's toolchains
        return ImagePlan(settings.sandbox_image)
    try:
        mapping = parse_toolchain_images(settings.sandbox_toolchain_images)
    except ToolchainImagesError as exc:  # `qwenfix doctor` says so; the default image still serves
        log.warning("QWENFIX_SANDBOX_TOOLCHAIN_IMAGES ignored: %s", exc)
        mapping = []
    return plan_image(list(toolchains), settings.sandbox_image, mapping, image_toolchains)


def run_engine(gj: GitHubJob, task: RepairTask, spending: JobSpending, toolchains: tuple = (),
               at: str | None = None, compare_with: str | None = None, runner: str | None = None) -> RepairResult:
    """Repair the job's head (or the commit `at`) in the image that provides the workflow's
    toolchains, the model metered by ``spending``; with `compare_with`, a failure that happens there
    too ends the repair as `fails_on_base` before any model call. A job that ran on a Windows or
    macOS `runner` is not reproduced: sandboxes are Linux."""
    settings, target = gj.ctx.settings, gj.target
    system = runner_os(runner)
    if system != "Linux":
        problem = (f"the job runs on `{runner}` ({system}); qwenfix's sandboxes are Linux, and no job of the run "
                   "that failed on Linux was found")
        return RepairResult("not_reproduced", None, reason=f"not reproduced: environment — {problem}",
                            reproduced="no", environment_problem=problem)
    sha = at or target.head_sha
    named = gj.config.sandbox.image
    if named is not None and not image_allowed(named, settings.allowed_sandbox_images):
        raise JobFailed(f"sandbox image {named} is not in QWENFIX_SANDBOX_IMAGES")  # callers refuse first
    engine = select_engine(settings.sandbox_engine, named or settings.sandbox_image)
    plan = choose_image(gj, engine, toolchains)
    image = plan.image
    notes = [f"sandbox image `{image}`", *plan.notes]
    if plan.missing:
        missing = ", ".join(f"{t.describe()} ({t.action})" for t in plan.missing)
        problem = f"{missing}: no sandbox image provides it; {TOOLCHAIN_SETTING}"
        return RepairResult("not_reproduced", None, reason=f"not reproduced: environment — {problem}",
                            reproduced="no", environment_problem=problem, notes=notes)
    labels = {"qwenfix.job": str(gj.job_id)}
    on_exec = audit_commands(gj.ctx.trail, engine.name)
    disk = DiskBudget.from_settings(settings)  # one budget for all of the job's sandboxes
    # A fork's setup runs code nobody with write access has seen: what it made is reused by that pull
    # request's later jobs only, never by the repository's other jobs.
    scope = f"{target.repo}/fork-{target.head_repo}-pr{target.pr_number}" if target.fork else target.repo
    cache = SetupCache(settings.data_dir / "setup-cache", scope, settings.setup_cache_entries)

    live: list = []

    def start_sandbox(workspace, network: bool = False, mounts: tuple = ()):
        try:
            sandbox = engine.start(workspace, image, Limits.from_settings(settings, network), labels=labels,
                                   disk=disk, mounts=mounts)
        except SetupNetworkRefused as exc:  # never network it cannot fence off: run setup offline
            gj.stage("reproducing", f"setup without network: {exc}")
            sandbox = engine.start(workspace, image, Limits.from_settings(settings, False), labels=labels,
                                   disk=disk, mounts=mounts)
        live.append(sandbox)
        return RecordedSandbox(sandbox, on_exec)

    def progress(stage: str, detail: str = "") -> None:
        gj.stage(stage, detail)

    def stop() -> bool:  # `/qwen stop`, a newer push, or a budget used up
        return watch.is_set() or spending.refusal is not None

    context = RepoContext(files=gj.context_files())
    with CancelWatch(gj.ctx.cancelled, live, deadline=gj.ctx.deadline) as watch:
        try:
            result = repair(
                task, checkout=lambda: checkout_commit(gj, sha), base_sha=sha, start_sandbox=start_sandbox,
                client=spending.client(), context=context, progress=progress, secrets=gj.secrets,
                cancelled=stop,
                base_checkout=(lambda: checkout_commit(gj, compare_with)) if compare_with else None,
                setup_cache=cache, image=image,
            )
        except Exception:
            if watch.timed_out:
                raise JobTimedOut("the job reached its time limit") from None
            if watch.is_set():  # its sandboxes were killed under it: that is the cancellation, not a bug
                return RepairResult("cancelled", None, reason="stopped")
            raise
    if watch.timed_out:
        raise JobTimedOut("the job reached its time limit")
    if result.reproduced:
        notes.append(f"reproduced: {result.reproduced} (the failing tests or error lines compared with CI's log)")
    if result.setup_cached:
        notes.append("setup restored from the setup cache (lock files unchanged)")
    result.notes = notes + result.notes
    return result


class CancelWatch:
    """Polls the job's state and its deadline; on `/qwen stop`, a newer push or the time limit it
    kills the job's sandboxes at once, so a long test run ends within seconds instead of at its
    timeout."""

    def __init__(self, cancelled, sandboxes: list, interval_s: float = 1.0, deadline: float | None = None):
        self._cancelled, self._sandboxes, self._interval = cancelled, sandboxes, interval_s
        self._deadline = deadline  # time.monotonic() at the job's time limit
        self._event, self._done = threading.Event(), threading.Event()
        self.timed_out = False
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def is_set(self) -> bool:
        return self._event.is_set()

    def _watch(self) -> None:
        stopped = 0
        while not self._done.wait(self._interval):
            try:
                if not self._event.is_set():
                    self.timed_out = self._deadline is not None and time.monotonic() >= self._deadline
                    if self.timed_out or self._cancelled():
                        self._event.set()
                if self._event.is_set():  # then every tick: a stage may still start one
                    for sandbox in self._sandboxes[stopped:]:
                        stopped += 1
                        sandbox.stop()
            except Exception:  # noqa: BLE001 — database blip: look again next tick
                continue

    def __enter__(self) -> CancelWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(timeout=5)


def delivery_mode(mode: str, target: Target) -> str:
    """How a verified patch may reach this target. Code from a fork never goes to a branch of the
    base repository: a fork gets suggestions (a comment when they cannot be placed), or a commit on
    the fork's own branch when its pull request allows maintainer edits."""
    if mode == "commit" and not target.can_push_to_head:
        mode = "suggest"
    if target.fork:
        if not target.pr_number:
            raise JobFailed(f"no delivery for a commit from {target.head_repo or 'an unknown repository'} "
                            "without its pull request")
        return "suggest" if mode == "pull_request" else mode
    if mode in ("suggest", "comment") and not target.pr_number:
        mode = "pull_request"
    return mode


def deliver_patch(gj: GitHubJob, patch: str, summary: str, mode: str, title: str, evidence: str = "") -> Delivered:
    """Deliver a verified patch: a commit, a suggestion review, a fix pull request, or a comment; the
    posts carry the ``evidence``, the commit message only the summary."""
    target = gj.target
    described = f"{summary}\n\n{evidence}".strip()
    mode = delivery_mode(mode, target)
    if mode == "commit":
        remote = target.head_clone_url if target.fork else target.clone_url
        if not remote:
            raise JobFailed(f"{target.head_repo or 'the head repository'} has no clone URL to push to")
        sha = _push(gj, patch, f"{title}\n\n{summary}".strip(), target.head_ref, remote, force=False,
                    onto_base=not target.fork)
        return Delivered("a commit on the pull request branch", {"commit_sha": sha, "branch": target.head_ref}, mode)
    if mode == "pull_request":
        branch = f"qwenfix/fix-{target.head_sha[:7]}-{gj.job_id}"
        sha = _push(gj, patch, f"{title}\n\n{summary}".strip(), branch, target.clone_url, force=True)
        base = target.head_ref or target.default_branch
        body = messages.outcome(gj.job_id, gj.url, title, described)
        number, url = call(pulls.open_fix_pull_request, gj.gh, target.repo, base, branch, title, body, gj.job_id)
        return Delivered(f"pull request #{number}", {"commit_sha": sha, "branch": branch, "pull_request": number,
                                                      "url": url}, mode)
    if mode == "suggest":
        review = call(pulls.suggestion_review, gj.gh, target.repo, target.pr_number, target.head_sha, patch,
                      messages.outcome(gj.job_id, gj.url, title, described), gj.job_id, bot=gj.bot)
        if review is not None:
            return Delivered("a suggestion review", {"review_id": review}, mode)
    return Delivered("a patch in this comment", {"comment": True})


def deliver_base_fix(gj: GitHubJob, patch: str, summary: str, title: str, base_sha: str) -> Delivered:
    """A verified fix of the base branch itself, as a pull request into it (`repair.fix_base`). Made
    on the base's own commit: nothing from the pull request's head is in it."""
    target = gj.target
    branch = f"qwenfix/fix-{base_sha[:7]}-{gj.job_id}"
    sha = _push(gj, patch, f"{title}\n\n{summary}".strip(), branch, target.clone_url, force=True, at=base_sha)
    body = messages.outcome(gj.job_id, gj.url, title, summary)
    number, url = call(pulls.open_fix_pull_request, gj.gh, target.repo, target.base_ref, branch, title, body, gj.job_id)
    return Delivered(f"pull request #{number}", {"commit_sha": sha, "branch": branch, "pull_request": number, "url": url})


def _push(gj: GitHubJob, patch: str, message: str, branch: str, remote: str, force: bool,
          onto_base: bool = True, at: str | None = None) -> str:
    """Commit the patch on the head (or on the commit ``at``) and push it. ``onto_base``: the push goes
    to the base repository, which then must already have that commit on one of its branches (git
    checks, whatever the API said)."""
    settings = gj.ctx.settings
    trailer = f"Qwenfix-Job: {gj.job_id}"
    message = f"{message}\n\n{trailer}\n"

    def push(token: str) -> str:
        with checkout_commit(gj, at or gj.target.head_sha) as worktree:
            apply_patch(worktree, patch)
            try:
                return commit_and_push(worktree, message, branch, remote, token,
                                       settings.commit_author_name, settings.commit_author_email, force=force,
                                       require_on_branch=onto_base)
            except PushRejected:
                # refused because an earlier run of this job pushed it already? then it is delivered
                ours = None if force else remote_tip_carrying(worktree, remote, branch, gj.fresh_token(), trailer)
                if ours is None:
                    raise
                return ours

    sha = with_token(gj, push)
    gj.ctx.trail.record("github", method="git push", path=f"{remote}:refs/heads/{branch}", status=None,
                        sha=sha, force=force)
    return sha


def task_options(gj: GitHubJob, **extra) -> dict:
    """The RepairTask settings that come from the repository's configuration and the operator's."""
    repair_config, model = gj.config.repair, gj.config.model
    options = dict(
        setup=repair_config.setup,
        setup_network=gj.config.setup_network(gj.ctx.settings.sandbox_allow_setup_network),
        candidates=repair_config.candidates,
        allow_ci_changes=repair_config.allow_ci_changes,
        allow_test_deletion=repair_config.allow_test_deletion,
        allow_test_changes=repair_config.allow_test_changes,
        ignore_paths=tuple(gj.config.paths.ignore),
        semgrep_rules=str(gj.ctx.settings.semgrep_rules) if gj.ctx.settings.semgrep_rules else None,
    )
    overrides = {"max_steps": model.max_steps, "temperature": model.temperature, "max_tokens": model.max_tokens}
    options.update({k: v for k, v in overrides.items() if v is not None})
    return {**options, **extra}


def failure_task(gj: GitHubJob, report: FailureReport, regression: str | None, **extra) -> RepairTask:
    """The repair of a CI failure, reproduced the way the workflow ran it: the job's env and shell,
    its steps before the failing one as the setup (unless `repair.setup` is set), where packages
    come from, and what CI's log showed (so that "reproduced" means the same failure)."""
    settings, ci_job = gj.ctx.settings, report.ci_job
    options = task_options(gj, **extra)
    if not options["setup"] and ci_job is not None:
        options.update(setup=setup_script(ci_job, report.command, report.working_directory, report.env),
                       setup_source=WORKFLOW_SETUP)
    options["setup_network"] = options["setup_network"] or bool(
        settings.sandbox_allow_setup_network and (settings.sandbox_pip_index_url or settings.sandbox_npm_registry))
    regression = gj.config.repair.regression_command or regression
    services = ci_job.services if ci_job else {}
    return RepairTask(
        command=report.command,
        regression_command=regression if regression and regression != report.command else None,
        failure_text=as_prompt(report),
        working_directory=report.working_directory or ".",
        shell=report.shell,
        environment=job_environment(ci_job, settings.sandbox_pip_index_url, settings.sandbox_npm_registry,
                                    settings.sandbox_package_cache, options["setup_network"]),
        expected_failure=report.error_excerpt,
        services=tuple(f"{name} ({image})" if image else name for name, image in services.items()),
        **options,
    )


def conclude(gj: GitHubJob, result: RepairResult, spending: JobSpending, command: str | None, excerpt: str,
             fields: dict, title: str, mode: str | None = None, regression_command: str | None = None) -> Outcome:
    """Turn an engine result into what the user sees: delivery, comment, check run and job outcome."""
    candidates = fields["result"].get("candidates", [])
    fields["usage"] = {**fields.get("usage", {}), **spending.totals()}
    if gj.ctx.lease_lost.is_set():  # another worker took the job over: it speaks for the job now
        return Outcome("cancelled", "taken over by another worker", fields)
    if spending.refusal is not None:
        return spending.stopped(fields)
    notes = messages.reproduction_notes(result.notes)
    if result.status == "setup_failed":
        output = result.setup_output or ""
        hint = environment_problem(output, result.reproduction.exit_code if result.reproduction else 1)
        fields["result"]["environment_problem"] = hint
        headline, body = messages.setup_failed(fields["result"].get("setup_source") or "repair.setup",
                                               fields["result"].get("setup"), output, result.reason, hint)
        gj.finish(headline, _with(body, notes), "neutral", "Setup failed")
        return Outcome("failed", f"setup failed: {result.reason}", fields)
    if result.status == "not_reproduced":
        output = result.reproduction.output if result.reproduction else ""
        headline, body = messages.not_reproduced(result.environment_problem or "", command, output)
        gj.finish(headline, _with(body, notes), "neutral", "Not reproduced: environment")
        return Outcome("failed", result.reason, fields)
    if result.status == "cancelled":
        gj.finish("stopped", "The job was cancelled.", "cancelled", "Stopped")
        return Outcome("cancelled", "stopped", fields)
    if result.status == "already_passing":
        rerun = gj.config.repair.rerun_flaky and gj.ctx.job.params.get("run_id")
        if rerun:
            call(gj.gh.rest.actions.re_run_workflow_failed_jobs, gj.target.owner, gj.target.name, gj.ctx.job.params["run_id"])
        headline, body = messages.flaky(command, bool(rerun))
        gj.finish(headline, _with(body, notes), "neutral", "Did not reproduce")
        return Outcome("succeeded", f"flaky: {command} passes on reproduction; no patch", fields)
    if result.status != "fixed" or result.chosen is None:
        reason = f"{result.reason[:1].upper()}{result.reason[1:]}." if result.reason else "No candidate patch passed validation."
        return finish_without_fix(gj, command, excerpt, candidates, reason, fields=fields, notes=notes)

    chosen = result.chosen
    # the model wrote the summary: neutralized; the security scan's lower findings ride along
    summary = gj.neutralize(chosen.summary) + messages.security_notes(chosen.security_notes)
    proof, fields["result"]["evidence"] = evidence(gj, result, spending, command or "", regression_command)
    fields["result"]["verified"] = {
        "patch": chosen.patch, "summary": summary, "fixer": result.fixer_used, "title": title,
        "mode": mode or gj.config.effective_mode(gj.target.on_default_branch), "notes": notes,
        "evidence": proof, "spent": spending.totals(),
    }
    # stored before delivery: a retry after a transient failure delivers it without the model
    gj.ctx.update(result=fields["result"], trajectory=fields.get("trajectory", []), usage=fields.get("usage", {}))
    return deliver_verified(gj, fields)


def resume_delivery(gj: GitHubJob) -> Outcome | None:
    """An earlier run of this job stored a verified patch (then hit a transient failure, or its
    worker was lost): deliver that patch. None when there is none."""
    job = gj.ctx.job
    if not (job.result or {}).get("verified"):
        return None
    fields = {"result": dict(job.result), "trajectory": list(job.trajectory or []), "usage": dict(job.usage or {}),
              "timings": dict(job.timings or {})}
    return deliver_verified(gj, fields)


def deliver_verified(gj: GitHubJob, fields: dict) -> Outcome:
    """Deliver the stored verified patch (unless that was done already), then the final report."""
    result, verified = fields["result"], fields["result"]["verified"]
    gj.stage("delivering")
    if not result.get("delivery"):
        delivered = deliver_patch(gj, verified["patch"], verified["summary"], verified["mode"], verified["title"],
                                  verified.get("evidence", ""))
        result["delivery"] = {"how": delivered.how, **delivered.details, "mode": delivered.mode}
        result.update({k: v for k, v in delivered.details.items() if k == "commit_sha"})
        gj.ctx.update(result=result)  # a retry of the final posts does not deliver twice
    delivery = result["delivery"]
    record_outcome(gj, delivery, verified)  # once per job, also when a retry finished the delivery
    headline, body = messages.fixed(delivery["how"], verified["summary"], verified.get("fixer"),
                                    verified.get("evidence", ""))
    if delivery.get("comment"):
        body = f"{body}\n\n{messages.patch_comment('', verified['patch'], gj.url)}"
    body = _with(body, verified.get("notes", ""))
    gj.finish(headline, body, "success", f"Verified fix: {delivery['how']}", text=messages.fence(verified["patch"], "diff"))
    return Outcome("succeeded", f"fixed: delivered as {delivery['how']}", fields)


def record_outcome(gj: GitHubJob, delivery: dict, verified: dict) -> None:
    """The delivered fix's outcome row, followed from now on through GitHub's events (workers/handlers/
    follow_up.py): its blocks of changed lines, and the commit whose CI tells whether it is green."""
    job, target = gj.ctx.job, gj.target
    totals = {"tokens": 0, "cost": None, "model_calls": 0, **verified.get("spent", {})}
    fixer, patch = verified.get("fixer"), verified["patch"]
    sha = delivery.get("commit_sha")
    with session_scope(gj.ctx.settings.database_url) as session:
        outcomes.record_delivery(
            session, job_id=job.id, installation_id=job.installation_id, repo=target.repo, pr_number=target.pr_number,
            branch=delivery.get("branch") or target.head_ref,
            model=f"fixer:{fixer}" if fixer else gj.ctx.settings.llm_model, how=delivery.get("mode", "comment"),
            base_sha=target.head_sha, delivered_sha=sha, ci_sha=sha, fix_pr_number=delivery.get("pull_request"),
            review_id=delivery.get("review_id"), blocks=fix_blocks(patch),
            red_at=as_aware(job.created_at) or utcnow(), tokens=totals["tokens"], cost=totals["cost"],
            model_calls=totals["model_calls"])


def evidence(gj: GitHubJob, result: RepairResult, spending: JobSpending, command: str,
             regression_command: str | None) -> tuple[str, dict]:
    """The evidence a delivered fix carries (as text for the posts, and as data for the job row): the
    command before and with the fix, the tests it turned green, the regression check, and its cost."""
    verdict = result.chosen.verdict
    before, after, regression = result.reproduction, verdict.after, verdict.regression
    runs = {name: read_test_run(r.output) if r is not None else TestRun()
            for name, r in (("before", before), ("after", after), ("regression", regression))}
    turned = now_passing(runs["before"], runs["after"], bool(after and after.ok))
    totals = spending.totals()
    started = as_aware(gj.ctx.job.started_at) or utcnow()
    seconds = (utcnow() - started).total_seconds()

    def cell(name: str, run) -> str:
        return messages.run_cell(run.exit_code if run else None, runs[name].counts(), run.ok if run else None)

    text = messages.evidence(
        command, cell("before", before), cell("after", after), regression_command if regression else None,
        cell("regression", regression), turned,
        messages.cost_line(totals["model_calls"], totals["tokens"], totals["prompt_tokens"],
                           totals["completion_tokens"], totals["cost"], seconds))
    data = {"command": command, "regression_command": regression_command if regression else None,
            **{f"{name}_exit_code": (r.exit_code if r else None) for name, r in
               (("before", before), ("after", after), ("regression", regression))},
            **{f"{name}_counts": run.counts() for name, run in runs.items()},
            "failing_before": list(runs["before"].failing), "now_passing": turned,
            "seconds": round(seconds, 1), **totals}
    return text, data


def finish_without_fix(gj, command, excerpt, candidates, reason, fields=None, state="failed", notes="") -> Outcome:
    headline, body = messages.no_fix(command, excerpt, candidates, reason)
    gj.finish(headline, _with(body, notes), "neutral", "No verified fix")
    return Outcome(state, f"no verified fix: {reason}", fields or {})


def _with(body: str, section: str) -> str:
    return f"{body}\n\n{section}" if section else body


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
        "reproduced": result.reproduced,
        "environment_problem": result.environment_problem,
        "setup_output": result.setup_output[-4000:] if result.setup_output else None,
        "setup_cached": result.setup_cached,
        "notes": list(result.notes),
        **extra,
    }
    return {"result": data, "trajectory": trajectory, "usage": usage, "timings": dict(result.timings)}
