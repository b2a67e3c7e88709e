"""A job's connection to GitHub: client and tokens for its repository, its target, the base branch's
config, and the progress comment and check run it keeps up to date.

Progress is best effort: a progress post that fails, or would have to wait for a rate limit, is
dropped (the next one, or the final report, replaces it) and never fails the job. Git gets a
token that is valid right now, for each fetch or push (:meth:`GitHubJob.fresh_token`)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from core.audit import Trail
from core.config import Settings
from core.github import (
    GitHubApp,
    GitHubAppError,
    GitHubWrite,
    RateLimited,
    is_transient,
    retry_after,
)
from workers.context import JobContext, JobFailed, Transient
from workers.engine.task import CONTEXT_FILES
from workers.github import checks, comments, messages, pulls
from workers.github.neutralize import github_host, neutralize
from workers.github.progress import ProgressPublisher
from workers.github.repo_config import CONFIG_PATH, RepoConfig, load_repo_config
from workers.github.target import Target, file_names, read_text, resolve_target

log = logging.getLogger(__name__)
_apps: dict[tuple[str, str], GitHubApp] = {}


def github_app(settings: Settings) -> GitHubApp:
    """One per process and App: installation tokens and rate-limit pauses are kept inside it."""
    key = (settings.app_id, settings.github_api_url)
    if key not in _apps:
        _apps[key] = GitHubApp(settings, record_budgets=True)
    return _apps[key]


@dataclass
class GitHubJob:
    ctx: JobContext
    gh: object  # githubkit.GitHub, built by core.github
    app: GitHubApp
    target: Target
    config: RepoConfig
    config_error: str | None
    bot: str  # this app's bot login, `<slug>[bot]`: what it posted is what this bot posted
    comment_id: int | None = None
    check_run_id: int | None = None
    last_comment: str | None = None
    publisher: ProgressPublisher = field(default_factory=ProgressPublisher)
    tokens: set[str] = field(default_factory=set)  # every token this job handed to git
    _people: set[str] | None = None

    def neutralize(self, text: str) -> str:
        """Model-written ``text`` made safe to post here: mentions only of people on the pull
        request, links only to this GitHub (workers/github/neutralize.py)."""
        if self._people is None:
            self._people = (call(pulls.participants, self.gh, self.target.repo, self.target.pr_number)
                            if self.target.pr_number else set())
        return neutralize(text, self._people, github_host(self.ctx.settings.github_api_url))

    @property
    def job_id(self) -> int:
        return self.ctx.job.id

    @property
    def url(self) -> str:
        return messages.job_url(self.ctx.settings.public_url, self.job_id)

    @property
    def secrets(self) -> list[str]:
        return [*self.ctx.settings.secrets(), *self.tokens]

    def fresh_token(self, renew: bool = False) -> str:
        """An installation token valid for the git command about to run (cached tokens are replaced
        before they expire); ``renew``: the last one was refused, exchange a new one."""
        job = self.ctx.job
        if renew:
            self.app.invalidate(job.installation_id, job.repo)
        token = call(self.app.installation_token, job.installation_id, job.repo)
        self.tokens.add(token)
        self.ctx.trail.add_secret(token)  # never on the audit trail either
        return token

    def stage(self, stage: str, detail: str = "", comment: bool = True) -> bool:
        """Record progress on the job (at once) and on the PR comment and the check run (at most
        every few seconds, see workers/github/progress.py); False when cancelled. Never fails."""
        alive = self.ctx.progress(f"{stage}{': ' + detail if detail else ''}")
        title = messages.STAGES.get(stage, stage)

        def post() -> None:
            if self.app.limits.low(self.ctx.job.installation_id):
                return  # rate limited or short of requests: the final report matters more
            if comment and self.target.pr_number:
                self._comment(messages.progress(self.job_id, self.url, stage, detail))
            self._check_run("in_progress", title=title, summary=detail or title)

        try:
            self.publisher.submit(post)
        except Exception as exc:  # noqa: BLE001 — progress is best effort; the final report is not
            log.warning("could not post progress: %s", type(exc).__name__)
        return alive

    def say(self, headline: str, body: str = "") -> None:
        """Replace the job's comment with what happened (worded by workers/github/messages.py)."""
        self.comment(messages.outcome(self.job_id, self.url, headline, body))

    def finish(self, headline: str, body: str, conclusion: str, title: str, text: str | None = None) -> None:
        """The job's last word: its comment says what happened and its check run concludes."""
        self.say(headline, body)
        self.check_run("completed", conclusion, title, body, text=text)

    def comment(self, body: str) -> None:
        """Replace the job's comment now; progress still waiting to be posted is dropped."""
        with self.publisher.superseding():
            self._comment(body)

    def check_run(self, status: str, conclusion: str | None = None, title: str = "", summary: str = "",
                  text: str | None = None) -> None:
        """Update the job's check run now; progress still waiting to be posted is dropped."""
        with self.publisher.superseding():
            self._check_run(status, conclusion, title, summary, text)

    def _comment(self, body: str) -> None:
        if self.target.pr_number and body != self.last_comment:
            self.comment_id = call(comments.upsert_comment, self.gh, self.target.repo, self.target.pr_number,
                                   self.job_id, body, bot=self.bot, known_id=self.comment_id)
            self.last_comment = body

    def _check_run(self, status: str, conclusion: str | None = None, title: str = "", summary: str = "",
                   text: str | None = None) -> None:
        if self.config_error:  # reported once, on the check run, naming the field
            summary = f"{summary}\n\n{messages.config_error(self.config_error)}"
        self.check_run_id = call(
            checks.upsert_check_run, self.gh, self.target.repo, self.target.head_sha, self.job_id, status,
            conclusion=conclusion, title=title[:200], summary=summary[:60000], details_url=self.url, text=text,
            known_id=self.check_run_id,
        )

    def context_files(self) -> dict[str, str]:
        """README and agent guidance from the BASE branch: never instructions from the PR head."""
        files = {}
        present = call(file_names, self.gh, self.target.repo, self.target.base_ref)
        for path in (p for p in CONTEXT_FILES if p in present):  # no request for the usual 404s
            text = call(read_text, self.gh, self.target.repo, path, self.target.base_ref)
            if text:
                files[path] = text[:4000]
        return files


def call(fn, *args, **kwargs):
    """Call GitHub. A failure that retrying later may cure (5xx after the client's own retries, a
    rate limit longer than a job waits in place) sends the job back to the queue: its work so far
    is kept (see workers/handlers/fixing.py), so the retry does not start over."""
    try:
        return fn(*args, **kwargs)
    except GitHubAppError as exc:  # wrong key, app uninstalled, repository not granted
        raise JobFailed(f"GitHub App: {exc}") from exc
    except RateLimited as exc:
        raise Transient(f"GitHub: {exc.reason}", exc.wait_s) from exc
    except Exception as exc:
        if is_transient(exc):
            raise Transient(f"GitHub: {type(exc).__name__}", retry_after(exc) or 10.0) from exc
        raise


def audit_writes(trail: Trail) -> Callable[[GitHubWrite], None]:
    """Every write the job's client makes goes on its audit trail, with what GitHub made of it."""
    def record(write: GitHubWrite) -> None:
        trail.record("github", method=write.method, path=write.path, status=write.status, **write.result)
    return record


def config_record(text: str | None, config: RepoConfig, error: str | None, ref: str) -> dict:
    """What configuration applied: hashes of the file as read and of the effective values."""
    effective = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return {"path": CONFIG_PATH, "ref": ref, "found": text is not None,
            "file_sha256": hashlib.sha256(text.encode()).hexdigest() if text is not None else None,
            "effective_sha256": hashlib.sha256(effective.encode()).hexdigest(), "error": error}


def open_job(ctx: JobContext, head_sha: str | None = None, head_branch: str | None = None,
             head_repo: str | None = None) -> GitHubJob:
    job = ctx.job
    app = github_app(ctx.settings)
    gh = call(app.installation_client, job.installation_id, job.repo, audit_writes(ctx.trail))
    ctx.resources.enter_context(gh)  # one keep-alive connection for the job's requests from this thread
    target = call(resolve_target, gh, job.repo, job.pr_number, head_sha or job.head_sha, head_branch, head_repo)
    text = call(read_text, gh, job.repo, CONFIG_PATH, target.base_ref)
    config, error = load_repo_config(text)
    ctx.trail.record("config", **config_record(text, config, error, target.base_ref))
    bot = call(app.bot_login)
    gj = GitHubJob(ctx=ctx, gh=gh, app=app, target=target, config=config, config_error=error, bot=bot)
    ctx.resources.callback(gj.publisher.close)  # no stale progress after the job has ended
    ctx.github = gj
    return gj


def report_failure(ctx: JobContext, reason: str) -> None:
    """The job failed without a result (gave up, crashed): its comment and check run say why,
    replacing any progress left on them."""
    job = ctx.job
    if not job.installation_id or not job.repo:
        return
    headline, body = messages.failed(reason)
    if isinstance(ctx.github, GitHubJob):
        ctx.github.finish(headline, body, "failure", "Failed")
        return
    with ctx.resources:
        open_job(ctx, head_sha=job.head_sha).finish(headline, body, "failure", "Failed")
