"""Run the repair engine for a GitHub job and deliver its verified patch the way the repository asks.

Shared by red-build repair and `/qwen fix`: both hand over a RepairTask; this module owns the
worktrees, sandboxes and model client for the job, and turns the result into commits, reviews,
pull requests and the final comment and check run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from app.config import Settings
from workers import deliver, reports
from workers.github_job import GitHubJob, call
from workers.repair import RepairResult, RepairTask, RepoContext, repair
from workers.sandbox import Limits, select_engine
from workers.workspace import MirrorCache, apply_patch, commit_and_push


@dataclass(frozen=True)
class Delivered:
    how: str  # "a commit on the pull request branch", "a suggestion review", …
    details: dict


def mirror_cache(settings: Settings) -> MirrorCache:
    # worktrees under the data dir: a containerized worker and the Docker host then see one path
    return MirrorCache(settings.mirror_dir, settings.mirror_disk_budget_mb * 1024 * 1024,
                       worktree_dir=settings.data_dir / "worktrees")


def limits(settings: Settings, network: bool = False) -> Limits:
    return Limits(
        memory_mb=settings.sandbox_memory_mb, cpus=settings.sandbox_cpus, pids=settings.sandbox_pids,
        timeout_s=settings.sandbox_command_timeout_s, output_bytes=settings.sandbox_output_bytes, network=network,
    )


def model_client(settings: Settings):
    if not settings.llm_base_url:
        return None
    from workers.agent.llm import ModelClient

    return ModelClient.from_settings(settings)


def run_engine(gj: GitHubJob, task: RepairTask) -> RepairResult:
    settings, target = gj.ctx.settings, gj.target
    mirror = mirror_cache(settings)
    fetch_refs = [f"refs/pull/{target.pr_number}/head"] if target.pr_number else []
    image = gj.config.sandbox.image or settings.sandbox_image
    engine = select_engine(settings.sandbox_engine, image)
    labels = {"qwenfix.job": str(gj.job_id)}

    def checkout():
        return mirror.checkout(target.clone_url, target.head_sha, gj.token, fetch_refs)

    live: list = []

    def start_sandbox(workspace, network: bool = False):
        sandbox = engine.start(workspace, image, limits(settings, network), labels=labels)
        live.append(sandbox)
        return sandbox

    def progress(stage: str, detail: str = "") -> None:
        gj.stage(stage, detail)

    context = RepoContext(files=gj.context_files())
    with CancelWatch(gj.ctx.cancelled, live) as watch:
        try:
            return repair(
                task, checkout=checkout, base_sha=target.head_sha, start_sandbox=start_sandbox,
                client=model_client(settings), context=context, progress=progress, secrets=gj.secrets,
                cancelled=watch.is_set,
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
        body = reports.outcome(gj.job_id, gj.url, title, summary)
        number, url = call(deliver.open_fix_pull_request, gj.gh, target.repo, base, branch, title, body, gj.job_id)
        return Delivered(f"pull request #{number}", {"commit_sha": sha, "branch": branch, "pull_request": number, "url": url})
    if mode == "suggest":
        review = call(deliver.suggestion_review, gj.gh, target.repo, target.pr_number, target.head_sha, patch,
                      reports.outcome(gj.job_id, gj.url, title, summary), gj.job_id)
        if review is not None:
            return Delivered("a suggestion review", {"review_id": review})
    return Delivered("a patch in this comment", {"comment": True})


def _push(gj: GitHubJob, patch: str, message: str, branch: str, remote: str, force: bool) -> str:
    settings, target = gj.ctx.settings, gj.target
    message = f"{message}\n\nQwenfix-Job: {gj.job_id}\n"
    with mirror_cache(settings).checkout(target.clone_url, target.head_sha, gj.token,
                                         [f"refs/pull/{target.pr_number}/head"] if target.pr_number else []) as worktree:
        apply_patch(worktree, patch)
        return commit_and_push(worktree, message, branch, remote, gj.token,
                               settings.commit_author_name, settings.commit_author_email, force=force)
