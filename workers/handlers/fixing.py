"""Run the repair engine for a GitHub job and deliver its verified patch the way the repository asks.

Shared by red-build repair and `/qwen fix`: both hand over a RepairTask; this module owns the
worktrees, sandboxes and model client for the job, and turns the result into commits, reviews,
pull requests and the final comment and check run.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from core.config import Settings
from workers.agent.llm import model_client
from workers.context import Outcome
from workers.engine.repair import repair
from workers.engine.setup_cache import SetupCache
from workers.engine.task import RepairResult, RepairTask, RepoContext
from workers.engine.workflow_setup import WORKFLOW_SETUP, job_environment, setup_script
from workers.failure.report import FailureReport, as_prompt
from workers.failure.reproduction import TOOLCHAIN_SETTING, environment_problem
from workers.github import messages, pulls
from workers.github.job import GitHubJob, call
from workers.sandbox import Limits
from workers.sandbox.engines import select_engine
from workers.sandbox.toolchains import (
    ImagePlan,
    ToolchainImagesError,
    image_toolchains,
    parse_toolchain_images,
    plan_image,
)
from workers.workspace.mirrors import MirrorCache
from workers.workspace.patches import apply_patch
from workers.workspace.push import commit_and_push

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivered:
    how: str  # "a commit on the pull request branch", "a suggestion review", …
    details: dict


def mirror_cache(settings: Settings) -> MirrorCache:
    # worktrees under the data dir: a containerized worker and the Docker host then see one path
    return MirrorCache(settings.mirror_dir, settings.mirror_disk_budget_mb * 1024 * 1024,
                       worktree_dir=settings.data_dir / "worktrees")


def checkout_head(gj: GitHubJob):
    """A pristine worktree of the job's head commit (a context manager)."""
    target = gj.target
    return mirror_cache(gj.ctx.settings).checkout(target.clone_url, target.head_sha, gj.token, target.fetch_refs)


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


def run_engine(gj: GitHubJob, task: RepairTask, toolchains: tuple = ()) -> RepairResult:
    settings, target = gj.ctx.settings, gj.target
    engine = select_engine(settings.sandbox_engine, gj.config.sandbox.image or settings.sandbox_image)
    plan = choose_image(gj, engine, toolchains)
    image = plan.image
    notes = [f"sandbox image `{image}`", *plan.notes]
    if plan.missing:
        missing = ", ".join(f"{t.describe()} ({t.action})" for t in plan.missing)
        problem = f"{missing}: no sandbox image provides it; {TOOLCHAIN_SETTING}"
        return RepairResult("not_reproduced", None, reason=f"not reproduced: environment — {problem}",
                            reproduced="no", environment_problem=problem, notes=notes)
    labels = {"qwenfix.job": str(gj.job_id)}
    # A fork's setup runs code nobody with write access has seen: what it made is reused by that pull
    # request's later jobs only, never by the repository's other jobs.
    scope = f"{target.repo}/fork-{target.head_repo}-pr{target.pr_number}" if target.fork else target.repo
    cache = SetupCache(settings.data_dir / "setup-cache", scope, settings.setup_cache_entries)

    live: list = []

    def start_sandbox(workspace, network: bool = False, mounts: tuple = ()):
        sandbox = engine.start(workspace, image, Limits.from_settings(settings, network), labels=labels,
                               mounts=mounts)
        live.append(sandbox)
        return sandbox

    def progress(stage: str, detail: str = "") -> None:
        gj.stage(stage, detail)

    context = RepoContext(files=gj.context_files())
    with CancelWatch(gj.ctx.cancelled, live) as watch:
        try:
            result = repair(
                task, checkout=lambda: checkout_head(gj), base_sha=target.head_sha, start_sandbox=start_sandbox,
                client=model_client(settings), context=context, progress=progress, secrets=gj.secrets,
                cancelled=watch.is_set, setup_cache=cache, image=image,
            )
            if result.reproduced:
                notes.append(f"reproduced: {result.reproduced} (the failing tests or error lines compared with CI's log)")
            if result.setup_cached:
                notes.append("setup restored from the setup cache (lock files unchanged)")
            result.notes = notes + result.notes
            return result
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


def deliver_patch(gj: GitHubJob, patch: str, summary: str, mode: str, title: str) -> Delivered:
    """Deliver a verified patch: a commit, a suggestion review, a fix pull request, or a comment."""
    target = gj.target
    if mode == "commit" and not target.can_push_to_head:
        mode = "suggest"  # a fork that does not allow maintainer edits gets suggestions instead
    if mode in ("suggest", "comment") and not target.pr_number:
        mode = "pull_request"
    if mode == "commit":
        sha = _push(gj, patch, f"{title}\n\n{summary}".strip(), target.head_ref, target.head_clone_url or target.clone_url, force=False)
        return Delivered("a commit on the pull request branch", {"commit_sha": sha, "branch": target.head_ref})
    if mode == "pull_request":
        branch = f"qwenfix/fix-{target.head_sha[:7]}-{gj.job_id}"
        sha = _push(gj, patch, f"{title}\n\n{summary}".strip(), branch, target.clone_url, force=True)
        base = target.head_ref or target.default_branch
        body = messages.outcome(gj.job_id, gj.url, title, summary)
        number, url = call(pulls.open_fix_pull_request, gj.gh, target.repo, base, branch, title, body, gj.job_id)
        return Delivered(f"pull request #{number}", {"commit_sha": sha, "branch": branch, "pull_request": number, "url": url})
    if mode == "suggest":
        review = call(pulls.suggestion_review, gj.gh, target.repo, target.pr_number, target.head_sha, patch,
                      messages.outcome(gj.job_id, gj.url, title, summary), gj.job_id)
        if review is not None:
            return Delivered("a suggestion review", {"review_id": review})
    return Delivered("a patch in this comment", {"comment": True})


def _push(gj: GitHubJob, patch: str, message: str, branch: str, remote: str, force: bool) -> str:
    settings = gj.ctx.settings
    message = f"{message}\n\nQwenfix-Job: {gj.job_id}\n"
    with checkout_head(gj) as worktree:
        apply_patch(worktree, patch)
        return commit_and_push(worktree, message, branch, remote, gj.token,
                               settings.commit_author_name, settings.commit_author_email, force=force)


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


def failure_task(gj: GitHubJob, report: FailureReport, regression: str | None, **extra) -> RepairTask:
    """The repair of a CI failure, reproduced the way the workflow ran it: the job's env and shell,
    its steps before the failing one as the setup (unless `repair.setup` is set), where packages
    come from, and what CI's log showed (so that "reproduced" means the same failure)."""
    settings, ci_job = gj.ctx.settings, report.ci_job
    options = task_options(gj, **extra)
    if not options["setup"] and ci_job is not None:
        options.update(setup=setup_script(ci_job), setup_source=WORKFLOW_SETUP)
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


def conclude(gj: GitHubJob, result: RepairResult, command: str | None, excerpt: str, fields: dict, title: str,
             mode: str | None = None) -> Outcome:
    """Turn an engine result into what the user sees: delivery, comment, check run and job outcome."""
    candidates = fields["result"].get("candidates", [])
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
        return finish_without_fix(gj, command, excerpt, candidates, "No candidate patch passed validation.", fields=fields,
                                  notes=notes)

    gj.stage("delivering")
    chosen = result.chosen
    mode = mode or gj.config.effective_mode(gj.target.on_default_branch)
    delivered = deliver_patch(gj, chosen.patch, chosen.summary, mode, title)
    fields["result"]["delivery"] = {"how": delivered.how, **delivered.details}
    fields["result"].update({k: v for k, v in delivered.details.items() if k == "commit_sha"})
    headline, body = messages.fixed(delivered.how, chosen.summary, result.fixer_used)
    if delivered.details.get("comment"):
        body = f"{body}\n\n{messages.patch_comment('', chosen.patch, gj.url)}"
    body = _with(body, notes)
    gj.finish(headline, body, "success", f"Verified fix: {delivered.how}", text=messages.fence(chosen.patch, "diff"))
    return Outcome("succeeded", f"fixed: delivered as {delivered.how}", fields)


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
