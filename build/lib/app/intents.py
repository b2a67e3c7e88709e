"""Route a verified webhook payload to an intent (a job to write) or to a recorded reason to ignore it,
and read from it what it says about delivered fixes (an Observation: a CI result, a push, a pull
request closed, a review thread resolved).

Pure functions over the payload: read only the fields an intent needs, never assume optional ones.
What the app's own bot caused (its pushes, pull requests, comments, check runs) never makes a job;
the CI result of its own fix is only observed (and repaired within repair.max_attempts_per_day).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.commands import parse_command
from core.github import FAILING

PR_ACTIONS = {"opened", "reopened", "ready_for_review", "synchronize"}
ACTIONS_APP_SLUG = "github-actions"  # its check suites also arrive as workflow_run: handled there


@dataclass(frozen=True)
class Intent:
    kind: str
    installation_id: int
    repo: str
    trigger: str  # what made this job; with repo, kind and head sha it is the idempotency key
    pr_number: int | None = None
    head_sha: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    supersedes_older_heads: bool = False  # a new push cancels this PR's jobs for older heads

    @property
    def idempotency_key(self) -> str:
        return f"{self.repo}|{self.kind}|{self.head_sha or '-'}|{self.trigger}"


@dataclass(frozen=True)
class Ignored:
    reason: str


@dataclass(frozen=True)
class Observation:
    """What an event says that may settle a delivered fix's outcome."""

    kind: str  # ci | push | closed | thread
    installation_id: int
    repo: str
    sha: str | None = None  # ci: the commit CI ran on; push: the new head; closed: the final head
    conclusion: str | None = None  # ci
    detail: str = ""  # ci: which workflow or check suite
    pr_number: int | None = None
    branch: str | None = None
    merged: bool = False  # closed
    resolved: bool = False  # thread
    comments: tuple[dict, ...] = ()  # thread: {id, review_id, path, line}
    by: str | None = None  # who did it

    def as_params(self) -> dict[str, Any]:
        return {"observation": self.kind, "sha": self.sha, "pr_number": self.pr_number, "branch": self.branch,
                "merged": self.merged, "resolved": self.resolved, "comments": list(self.comments),
                "actor": self.by, "source": self.kind}


def _obj(payload: Any, key: str) -> dict:
    """payload[key] when it is an object, else {}: older servers and odd senders omit or reshape fields."""
    value = payload.get(key) if isinstance(payload, dict) else None
    return value if isinstance(value, dict) else {}


def _get(payload: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(payload, dict):
            return None
        payload = payload.get(key)
    return payload


def route(event: str, payload: dict, delivery_id: str, own_app_id: str = "", own_bot: str = "") -> Intent | Ignored:
    action = payload.get("action")
    if event in ("installation", "installation_repositories"):
        return _installation(event, payload, delivery_id)
    handler = _ROUTES.get(event)
    if handler is None:
        return Ignored(f"event '{event}' is not handled")
    installation_id = _get(payload, "installation", "id")
    repo = _get(payload, "repository", "full_name")
    if not isinstance(installation_id, int) or not isinstance(repo, str):
        return Ignored(f"{event}.{action}: payload has no installation id or repository")
    if own_bot and _get(payload, "sender", "login") == own_bot and event != "workflow_run":
        # its own pushes, pull requests, comments and check runs; a workflow run on its fix is CI's verdict
        return Ignored(f"{event}.{action} was caused by {own_bot} itself")
    return handler(payload, action, installation_id, repo, own_app_id)


def observe(event: str, payload: dict, own_app_id: str = "", own_bot: str = "") -> Observation | None:
    """What the event says about delivered fixes, if anything: a CI result (even on the app's own
    fix commit), a push or a closed pull request by someone else, a resolved review thread."""
    action = payload.get("action")
    installation_id = _get(payload, "installation", "id")
    repo = _get(payload, "repository", "full_name")
    if not isinstance(installation_id, int) or not isinstance(repo, str):
        return None
    sender = _get(payload, "sender", "login")
    base = {"installation_id": installation_id, "repo": repo, "by": sender if isinstance(sender, str) else None}
    if event == "workflow_run" and action == "completed":
        run = _obj(payload, "workflow_run")
        if isinstance(run.get("head_sha"), str):
            return Observation("ci", sha=run["head_sha"], conclusion=run.get("conclusion"),
                               detail=f"{run.get('name') or 'workflow'} run {run.get('id')}", **base)
    if event == "check_suite" and action == "completed":
        suite = _obj(payload, "check_suite")
        app = _obj(suite, "app")
        own = own_app_id and str(app.get("id")) == str(own_app_id)
        if app.get("slug") != ACTIONS_APP_SLUG and not own and isinstance(suite.get("head_sha"), str):
            return Observation("ci", sha=suite["head_sha"], conclusion=suite.get("conclusion"),
                               detail=f"{app.get('slug') or 'check suite'} suite {suite.get('id')}", **base)
    if own_bot and sender == own_bot:
        return None  # what the app did itself settles nothing
    if event == "pull_request" and action in ("synchronize", "closed"):
        pr = _obj(payload, "pull_request")
        number, sha = pr.get("number"), _get(pr, "head", "sha")
        if isinstance(number, int) and isinstance(sha, str):
            return Observation("push" if action == "synchronize" else "closed", sha=sha, pr_number=number,
                               branch=_get(pr, "head", "ref"), merged=bool(pr.get("merged")), **base)
    if event == "push" and not payload.get("deleted"):
        ref, after = payload.get("ref"), payload.get("after")
        if isinstance(ref, str) and ref.startswith("refs/heads/") and isinstance(after, str):
            return Observation("push", sha=after, branch=ref.removeprefix("refs/heads/"), **base)
    if event == "pull_request_review_thread" and action in ("resolved", "unresolved"):
        number = _get(payload, "pull_request", "number")
        comments = tuple(
            {"id": c.get("id"), "review_id": c.get("pull_request_review_id"), "path": c.get("path"),
             "line": c.get("line") or c.get("original_line")}
            for c in _obj(payload, "thread").get("comments") or [] if isinstance(c, dict))
        if isinstance(number, int) and comments:
            return Observation("thread", pr_number=number, resolved=action == "resolved", comments=comments, **base)
    return None


def _pull_request(payload, action, installation_id, repo, _own) -> Intent | Ignored:
    if action not in PR_ACTIONS:
        return Ignored(f"pull_request.{action} is not handled")
    pr = _obj(payload, "pull_request")
    number, sha = pr.get("number"), _get(pr, "head", "sha")
    if not isinstance(number, int) or not isinstance(sha, str):
        return Ignored("pull_request payload has no number or head sha")
    draft = bool(pr.get("draft"))
    return Intent(
        kind="review",
        installation_id=installation_id,
        repo=repo,
        # a draft's job must not stand in for the review due when it is marked ready (same head)
        trigger="pull_request:draft" if draft else "pull_request",
        pr_number=number,
        head_sha=sha,
        params={
            "action": action,
            "draft": draft,
            "base_ref": _get(pr, "base", "ref"),
            "head_ref": _get(pr, "head", "ref"),
            "head_repo": _get(pr, "head", "repo", "full_name"),
        },
        supersedes_older_heads=True,
    )


def _sender_problem(payload) -> str | None:
    sender = _obj(payload, "sender")
    login = sender.get("login") or ""
    if sender.get("type") != "User" or login.endswith("[bot]"):
        return f"commands from bots are not trusted (sender {login or 'unknown'})"
    return None


def _command_intent(payload, installation_id, repo, comment, number, extra) -> Intent | Ignored:
    command = parse_command(comment.get("body"))
    if command is None:
        return Ignored("comment has no /qwen command")
    problem = _sender_problem(payload)
    if problem:
        return Ignored(problem)
    comment_id = comment.get("id")
    if not isinstance(comment_id, int) or not isinstance(number, int):
        return Ignored("comment payload has no comment id or pull request number")
    return Intent(
        kind=command.name,
        installation_id=installation_id,
        repo=repo,
        trigger=f"comment:{comment_id}",
        pr_number=number,
        head_sha=extra.pop("head_sha", None),
        params={
            "command": command.name,
            "text": command.text,
            "unknown": command.unknown,
            "comment_id": comment_id,
            "comment_created_at": comment.get("created_at"),
            "actor": _get(payload, "sender", "login"),
            **extra,
        },
    )


def _issue_comment(payload, action, installation_id, repo, _own) -> Intent | Ignored:
    if action != "created":
        return Ignored(f"issue_comment.{action} is not handled (edits never trigger)")
    issue = _obj(payload, "issue")
    if not issue.get("pull_request"):
        return Ignored("comment is on an issue, not a pull request")
    return _command_intent(
        payload, installation_id, repo, _obj(payload, "comment"), issue.get("number"),
        {"source": "issue_comment"},
    )


def _review_comment(payload, action, installation_id, repo, _own) -> Intent | Ignored:
    if action != "created":
        return Ignored(f"pull_request_review_comment.{action} is not handled")
    comment = _obj(payload, "comment")
    extra = {
        "source": "review_comment",
        "path": comment.get("path"),
        "line": comment.get("line") or comment.get("original_line"),
        "head_sha": comment.get("commit_id"),
    }
    return _command_intent(
        payload, installation_id, repo, comment, _get(payload, "pull_request", "number"), extra
    )


def _pr_numbers(items) -> list[int]:
    return [p["number"] for p in items or [] if isinstance(p, dict) and isinstance(p.get("number"), int)]


def _workflow_run(payload, action, installation_id, repo, _own) -> Intent | Ignored:
    run = _obj(payload, "workflow_run")
    if action != "completed" or run.get("conclusion") not in FAILING:
        return Ignored(f"workflow_run.{action} with conclusion {run.get('conclusion')} needs no repair")
    sha, run_id = run.get("head_sha"), run.get("id")
    if not isinstance(sha, str) or not isinstance(run_id, int):
        return Ignored("workflow_run payload has no head sha or run id")
    prs = _pr_numbers(run.get("pull_requests"))
    workflow = run.get("workflow_id") or run.get("path") or run.get("name")
    return Intent(
        kind="repair",
        installation_id=installation_id,
        repo=repo,
        trigger=f"workflow:{workflow}",
        pr_number=prs[0] if prs else None,
        head_sha=sha,
        params={
            "source": "workflow_run",
            "run_id": run_id,
            "workflow_name": run.get("name"),
            "workflow_path": run.get("path"),
            "head_branch": run.get("head_branch"),
            "head_repo": _get(run, "head_repository", "full_name"),  # a fork for a fork's pull request
            "event": run.get("event"),
            "actor": _get(run, "actor", "login") or _get(payload, "sender", "login"),
            "pull_requests": prs,
            "run_attempt": run.get("run_attempt"),
        },
    )


def _checks(payload, action, installation_id, repo, own_app_id, key) -> Intent | Ignored:
    item = _obj(payload, key)
    app = _obj(item, "app") or _obj(_obj(item, "check_suite"), "app")
    if action != "completed" or item.get("conclusion") not in FAILING:
        return Ignored(f"{key}.{action} with conclusion {item.get('conclusion')} needs no repair")
    if app.get("slug") == ACTIONS_APP_SLUG:
        return Ignored(f"{key} from GitHub Actions is repaired through its workflow_run")
    if own_app_id and str(app.get("id")) == str(own_app_id):
        return Ignored(f"{key} is qwenfix's own")
    sha = item.get("head_sha")
    if not isinstance(sha, str):
        return Ignored(f"{key} payload has no head sha")
    suite = item if key == "check_suite" else _obj(item, "check_suite")
    prs = _pr_numbers(item.get("pull_requests"))
    return Intent(
        kind="repair",
        installation_id=installation_id,
        repo=repo,
        # one job per failing CI app on a commit, whether its suite or its runs report first
        trigger=f"checks:{app.get('id') or app.get('slug') or 'unknown'}",
        pr_number=prs[0] if prs else None,
        head_sha=sha,
        params={
            "source": key,
            "check_suite_id": suite.get("id"),
            "check_run_id": item.get("id") if key == "check_run" else None,
            "check_name": item.get("name"),
            "app": app.get("slug"),
            "head_branch": suite.get("head_branch"),
            "pull_requests": prs,
            "actor": _get(payload, "sender", "login"),
        },
    )


def _installation(event, payload, delivery_id) -> Intent | Ignored:
    installation_id = _get(payload, "installation", "id")
    if not isinstance(installation_id, int):
        return Ignored(f"{event}: payload has no installation id")
    return Intent(
        kind="installation_sync",
        installation_id=installation_id,
        repo=None,  # type: ignore[arg-type]
        trigger=f"{event}:{payload.get('action')}:{delivery_id}",  # every such delivery counts
        params={
            "event": event,
            "action": payload.get("action"),
            "account": _get(payload, "installation", "account", "login"),
            "added": [r.get("full_name") for r in payload.get("repositories_added") or payload.get("repositories") or [] if isinstance(r, dict)],
            "removed": [r.get("full_name") for r in payload.get("repositories_removed") or [] if isinstance(r, dict)],
        },
    )


_ROUTES = {
    "pull_request": _pull_request,
    "issue_comment": _issue_comment,
    "pull_request_review_comment": _review_comment,
    "workflow_run": _workflow_run,
    "check_suite": lambda p, a, i, r, o: _checks(p, a, i, r, o, "check_suite"),
    "check_run": lambda p, a, i, r, o: _checks(p, a, i, r, o, "check_run"),
}
