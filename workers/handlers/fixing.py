"""Run the repair engine for a GitHub job and deliver its verified patch the way the repository asks.

Shared by red-build repair and `/qwen fix`: both hand over a RepairTask; this module owns the
worktrees, sandboxes and model client for the job, and turns the result into commits, reviews,
pull requests and the final comment and check run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from core import outcomes
from core.audit import Trail
from core.config import Settings
from core.db.models import utcnow
from core.db.session import session_scope
from core.jobs import as_aware
from workers.context import Outcome
from workers.engine.repair import repair
from workers.engine.task import RepairResult, RepairTask, RepoContext
from workers.engine.test_results import TestRun, now_passing, read_test_run
from workers.github import messages, pulls
from workers.github.fix_blocks import fix_blocks
from workers.github.job import GitHubJob, call
from workers.sandbox import ExecResult, Limits
from workers.sandbox.engines import select_engine
from workers.sandbox.recorded import OnExec, RecordedSandbox
from workers.spending import JobSpending
from workers.workspace.mirrors import MirrorCache
from workers.workspace.patches import apply_patch
from workers.workspace.push import commit_and_push


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
    target = gj.target
    return mirror_cache(gj.ctx.settings).checkout(target.clone_url, target.head_sha, gj.token, target.fetch_refs)


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


def run_engine(gj: GitHubJob, task: RepairTask, spending: JobSpending) -> RepairResult:
    settings, target = gj.ctx.settings, gj.target
    image = gj.config.sandbox.image or settings.sandbox_image
    engine = select_engine(settings.sandbox_engine, image)
    labels = {"qwenfix.job": str(gj.job_id)}
    on_exec = audit_commands(gj.ctx.trail, engine.name)

    live: list = []

    def start_sandbox(workspace, network: bool = False):
        sandbox = engine.start(workspace, image, Limits.from_settings(settings, network), labels=labels)
        live.append(sandbox)
        return RecordedSandbox(sandbox, on_exec)

    def progress(stage: str, detail: str = "") -> None:
        gj.stage(stage, detail)

    def stop() -> bool:  # `/qwen stop`, a newer push, or a budget used up
        return watch.is_set() or spending.refusal is not None

    context = RepoContext(files=gj.context_files())
    with CancelWatch(gj.ctx.cancelled, live) as watch:
        try:
            return repair(
                task, checkout=lambda: checkout_head(gj), base_sha=target.head_sha, start_sandbox=start_sandbox,
                client=spending.client(), context=context, progress=progress, secrets=gj.secrets,
                cancelled=stop,
            )
        except Exception:
            if watch.is_set():  # its sandboxes were killed under it: that is the cancellation, not a bug
                return RepairResult("cancelled", None, reason="stopped")
            raise


class CancelWatch:
    """Polls the job's state; on `/qwen stop` or a newer push it kills the job's sandboxes at once,
    so a long test run ends within seconds instead of at its timeout."""

    def __init__(self, cancelled, sandboxes: list, interval_s: float = 1.0):
        self._cancelled, self._sandboxes, self._interval = cancelled, sandboxes, interval_s
        self._event, self._done = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def is_set(self) -> bool:
        return self._event.is_set()

    def _watch(self) -> None:
        while not self._done.wait(self._interval):
            try:
                if self._cancelled():
                    self._event.set()
                    for sandbox in list(self._sandboxes):
                        sandbox.stop()
                    return
            except Exception:  # noqa: BLE001 — database blip: look again next tick
                continue

    def __enter__(self) -> CancelWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(timeout=5)


def deliver_patch(gj: GitHubJob, patch: str, summary: str, mode: str, title: str, evidence: str = "") -> Delivered:
    """Deliver a verified patch: a commit, a suggestion review, a fix pull request, or a comment."""
    target = gj.target
    described = f"{summary}\n\n{evidence}".strip()
    if mode == "commit" and not target.can_push_to_head:
        mode = "suggest"  # a fork that does not allow maintainer edits gets suggestions instead
    if mode in ("suggest", "comment") and not target.pr_number:
        mode = "pull_request"
    if mode == "commit":
        sha = _push(gj, patch, f"{title}\n\n{summary}".strip(), target.head_ref, target.head_clone_url or target.clone_url, force=False)
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
                      messages.outcome(gj.job_id, gj.url, title, described), gj.job_id)
        if review is not None:
            return Delivered("a suggestion review", {"review_id": review}, mode)
    return Delivered("a patch in this comment", {"comment": True})


def _push(gj: GitHubJob, patch: str, message: str, branch: str, remote: str, force: bool) -> str:
    settings = gj.ctx.settings
    message = f"{message}\n\nQwenfix-Job: {gj.job_id}\n"
    with checkout_head(gj) as worktree:
        apply_patch(worktree, patch)
        sha = commit_and_push(worktree, message, branch, remote, gj.token,
                              settings.commit_author_name, settings.commit_author_email, force=force)
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
        ignore_paths=tuple(gj.config.paths.ignore),
    )
    overrides = {"max_steps": model.max_steps, "temperature": model.temperature, "max_tokens": model.max_tokens}
    options.update({k: v for k, v in overrides.items() if v is not None})
    return {**options, **extra}


def conclude(gj: GitHubJob, result: RepairResult, spending: JobSpending, command: str | None, excerpt: str,
             fields: dict, title: str, mode: str | None = None, regression_command: str | None = None) -> Outcome:
    """Turn an engine result into what the user sees: delivery, comment, check run and job outcome."""
    candidates = fields["result"].get("candidates", [])
    fields["usage"] = {**fields.get("usage", {}), **spending.totals()}
    if spending.refusal is not None:
        return spending.stopped(fields)
    if result.status == "cancelled":
        gj.finish("stopped", "The job was cancelled.", "cancelled", "Stopped")
        return Outcome("cancelled", "stopped", fields)
    if result.status == "already_passing":
        rerun = gj.config.repair.rerun_flaky and gj.ctx.job.params.get("run_id")
        if rerun:
            call(gj.gh.rest.actions.re_run_workflow_failed_jobs, gj.target.owner, gj.target.name, gj.ctx.job.params["run_id"])
        headline, body = messages.flaky(command, bool(rerun))
        gj.finish(headline, body, "neutral", "Did not reproduce")
        return Outcome("succeeded", f"flaky: {command} passes on reproduction; no patch", fields)
    if result.status != "fixed" or result.chosen is None:
        return finish_without_fix(gj, command, excerpt, candidates, "No candidate patch passed validation.", fields=fields)

    gj.stage("delivering")
    chosen = result.chosen
    mode = mode or gj.config.effective_mode(gj.target.on_default_branch)
    proof, fields["result"]["evidence"] = evidence(gj, result, spending, command or "", regression_command)
    delivered = deliver_patch(gj, chosen.patch, chosen.summary, mode, title, proof)
    fields["result"]["delivery"] = {"how": delivered.how, **delivered.details}
    fields["result"].update({k: v for k, v in delivered.details.items() if k == "commit_sha"})
    record_outcome(gj, delivered, chosen.patch, result.fixer_used, spending)
    headline, body = messages.fixed(delivered.how, chosen.summary, result.fixer_used, proof)
    if delivered.details.get("comment"):
        body = f"{body}\n\n{messages.patch_comment('', chosen.patch, gj.url)}"
    gj.finish(headline, body, "success", f"Verified fix: {delivered.how}", text=messages.fence(chosen.patch, "diff"))
    return Outcome("succeeded", f"fixed: delivered as {delivered.how}", fields)


def record_outcome(gj: GitHubJob, delivered: Delivered, patch: str, fixer: str | None, spending: JobSpending) -> None:
    """The delivered fix's outcome row, followed from now on through GitHub's events (workers/handlers/
    outcomes.py): its blocks of changed lines, and the commit whose CI tells whether it is green."""
    job, target, totals = gj.ctx.job, gj.target, spending.totals()
    sha = delivered.details.get("commit_sha")
    with session_scope(gj.ctx.settings.database_url) as session:
        outcomes.record_delivery(
            session, job_id=job.id, installation_id=job.installation_id, repo=target.repo, pr_number=target.pr_number,
            branch=delivered.details.get("branch") or target.head_ref,
            model=f"fixer:{fixer}" if fixer else gj.ctx.settings.llm_model, how=delivered.mode,
            base_sha=target.head_sha, delivered_sha=sha, ci_sha=sha, fix_pr_number=delivered.details.get("pull_request"),
            review_id=delivered.details.get("review_id"), blocks=fix_blocks(patch),
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


def finish_without_fix(gj, command, excerpt, candidates, reason, fields=None, state="failed") -> Outcome:
    headline, body = messages.no_fix(command, excerpt, candidates, reason)
    gj.finish(headline, body, "neutral", "No verified fix")
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
