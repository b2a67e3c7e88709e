"""A fake GitHub *server* for tests: GitHub's REST protocol on 127.0.0.1, driven by real githubkit.

    def test_something(fake_github):
        fake_github.add_installation(1, "octo")
        fake_github.add_repo("octo/app", {"main.py": "print(1)\\n"}, installation_id=1)
        sha = fake_github.push("octo/app", "feature", {"main.py": "print(2)\\n"})
        fake_github.add_pull("octo/app", 7, head_ref="feature", base_ref="main")
        settings = Settings(app_id=str(fake_github.app_id),
                            private_key=fake_github.private_key_pem,
                            github_api_url=fake_github.url)
        ...                                   # run the code under test against it
        assert fake_github.calls("POST", "/repos/octo/app/issues/7/comments")
        assert fake_github.comments("octo/app", 7)[0]["body"].startswith("...")

What it models (only what qwenfix uses):

- App auth: ``POST /app/installations/{id}/access_tokens`` verifies the RS256 app JWT (issuer ==
  app id, at most 10 minutes long, not expired) with the session's public key, and issues a
  ``ghs_`` token, narrowed to ``repositories``/``repository_ids`` when asked. Every other route
  needs an issued, unexpired installation token (``Authorization: token|Bearer ghs_...``) whose
  installation and repository list include the repository (401 / 404 otherwise, like GitHub).
- State set up through Python: installations, repositories backed by real bare git repositories
  (served over smart HTTP at ``/git/owner/repo.git`` with Basic auth ``x-access-token:<token>``),
  pull requests whose ``files``/``patch`` are computed by git, collaborator permissions, workflow
  runs with jobs, steps and logs (each job is also a GitHub Actions check run), check runs with
  annotations, user comments.
- What the app did: comments, reviews (with their inline comments), check runs, pull requests,
  reactions, re-run requests — readable through small methods, and every request recorded in
  order in ``.requests`` (method, path, query, json, headers).
- Faults: ``fail_next(method, path, status, headers=..., times=...)`` answers the next matching
  request(s) with an error (5xx, secondary rate limit 403 + ``retry-after``), before auth.
- GitHub Enterprise: every route is also served under ``/api/v3`` (``.enterprise_url``); the
  recorded ``path`` is always the path below the API root, ``raw_path`` the one on the wire.

Unknown routes answer GitHub's 404 JSON and are recorded like the others.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import secrets
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tests.support.git_http import (
    GitRequest,
    ServerThread,
    _git,
    bare_repo_path,
    git_http_app,
    make_bare_repo,
    push_commit,
    repo_file_at,
    repo_ref,
    set_ref,
    token_from_authorization,
)

DOCS = "https://docs.github.com/rest"
ENTERPRISE_PREFIX = "/api/v3"
CREATED_AT = "2024-01-01T00:00:00Z"
APP_SLUG = "qwenfix"
BOT_LOGIN = f"{APP_SLUG}[bot]"
APP_PERMISSIONS = {
    "actions": "read",
    "checks": "write",
    "contents": "write",
    "issues": "write",
    "metadata": "read",
    "pull_requests": "write",
}
APP_EVENTS = [
    "check_run",
    "check_suite",
    "issue_comment",
    "pull_request",
    "pull_request_review_comment",
    "workflow_run",
]
REACTIONS = {"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"}
ROLE_OF = {"admin": "admin", "maintain": "maintain", "write": "write", "triage": "triage",
           "read": "read", "none": "none"}
# the legacy `permission` field GitHub returns next to role_name
LEGACY_PERMISSION = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read",
                     "read": "read", "none": "none"}


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stable_id(text: str) -> int:
    return zlib.crc32(text.encode()) % 90_000_000 + 1_000


def _node_id(kind: str, ident: Any) -> str:
    return base64.b64encode(f"{kind}:{ident}".encode()).decode().rstrip("=")


class GitHubError(Exception):
    """Raised inside a route: becomes GitHub's error JSON."""

    def __init__(self, status: int, message: str, errors: list | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"message": self.message, "documentation_url": DOCS,
                                "status": str(self.status)}
        if self.errors is not None:
            body["errors"] = self.errors
        return JSONResponse(body, status_code=self.status, headers=self.headers)


# --------------------------------------------------------------------------------------------
# recorded requests and state records
# --------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request the fake received (API routes; git traffic is in ``git_requests``)."""

    method: str
    path: str  # below the API root, e.g. "/repos/o/r/issues/1/comments"
    query: dict[str, str]
    json: Any  # parsed JSON body, or None
    headers: dict[str, str]  # lower-case names
    raw_path: str = ""  # as sent (includes /api/v3 for Enterprise-style clients)
    body: bytes = b""
    status: int = 0  # the status answered

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def token(self) -> str | None:
        """The token (or JWT) carried by the Authorization header."""
        return token_from_authorization(self.authorization)


@dataclass
class Token:
    token: str
    installation_id: int
    expires_at: float  # epoch seconds
    repositories: list[str] | None  # full names, None = every repository of the installation
    permissions: dict[str, str]
    requested: dict[str, Any]  # the JSON body of the exchange request

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at


@dataclass
class Repo:
    id: int
    full_name: str
    installation_id: int | None
    default_branch: str
    private: bool
    git_dir: Path

    @property
    def owner(self) -> str:
        return self.full_name.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]


@dataclass
class Pull:
    repo: str
    number: int
    id: int
    head_ref: str
    head_sha: str
    base_ref: str
    head_repo: str  # full name of the head repository (a fork when != repo)
    maintainer_can_modify: bool
    user: str
    title: str
    body: str | None
    state: str = "open"
    draft: bool = False
    created_at: str = CREATED_AT
    merged: bool = False


# --------------------------------------------------------------------------------------------
# the fake
# --------------------------------------------------------------------------------------------


class FakeGitHub:
    """State, JSON rendering and routes of the fake. See the module docstring."""

    def __init__(self, repos_root: Path, app_id: int, private_key_pem: str, public_key_pem: str):
        self.repos_root = Path(repos_root)
        self.app_id = app_id
        self.app_slug = APP_SLUG
        self.bot_login = BOT_LOGIN
        self.private_key_pem = private_key_pem
        self.public_key_pem = public_key_pem
        self.url = ""  # API base URL, set when the server starts
        self.server_url = ""
        self.token_ttl = 3600.0  # lifetime of issued installation tokens, seconds

        self.requests: list[RecordedRequest] = []
        self.git_requests: list[GitRequest] = []
        self.tokens: dict[str, Token] = {}
        self.installations: dict[int, dict[str, Any]] = {}
        self.repos: dict[str, Repo] = {}
        self.pulls_by_key: dict[tuple[str, int], Pull] = {}
        self.issues: dict[tuple[str, int], dict[str, Any]] = {}  # plain issues (comments only)
        self.permissions: dict[tuple[str, str], str] = {}
        self.issue_comments: dict[int, dict[str, Any]] = {}  # id -> {"repo", "number", "json"}
        self.review_comments: dict[int, dict[str, Any]] = {}
        self.review_records: dict[int, dict[str, Any]] = {}
        self.check_run_records: dict[int, dict[str, Any]] = {}
        self.check_suites: dict[int, dict[str, Any]] = {}
        self.workflow_runs: dict[int, dict[str, Any]] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self.reaction_records: list[dict[str, Any]] = []
        self.reruns: list[tuple[str, int]] = []
        self._failures: list[dict[str, Any]] = []
        self._ids = 100_000
        self._lock = threading.RLock()
        self._download_secret = secrets.token_hex(8)
        self.app = self._build_app()

    # ---------------------------------------------------------------- ids, urls, locking

    def _next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids

    @property
    def enterprise_url(self) -> str:
        """The API base URL GitHub Enterprise Server style (``http://host/api/v3``)."""
        return self.server_url + ENTERPRISE_PREFIX

    def api(self, path: str) -> str:
        return self.url + path

    def html(self, path: str) -> str:
        return self.server_url + path

    def clone_url(self, full_name: str) -> str:
        """Smart-HTTP clone URL of a repository (auth: ``x-access-token:<installation token>``)."""
        return f"{self.server_url}/git/{full_name}.git"

    # ---------------------------------------------------------------- state: setup API

    def add_installation(self, installation_id: int, account: str,
                         account_type: str = "Organization",
                         repository_selection: str = "selected") -> dict[str, Any]:
        with self._lock:
            self.installations[installation_id] = {
                "id": installation_id,
                "account": account,
                "account_type": account_type,
                "repository_selection": repository_selection,
            }
            return self.installations[installation_id]

    def add_repo(self, full_name: str, files: Mapping[str, str | bytes] | None = None,
                 default_branch: str = "main", installation_id: int | None = None,
                 private: bool = False, repo_id: int | None = None) -> str:
        """Create a repository backed by a real bare git repo; return the first commit's sha.

        ``installation_id`` defaults to the only installation when there is exactly one.
        """
        if installation_id is None and len(self.installations) == 1:
            installation_id = next(iter(self.installations))
        sha = make_bare_repo(self.repos_root, full_name, dict(files or {"README.md": "# repo\n"}),
                             branch=default_branch)
        with self._lock:
            self.repos[full_name] = Repo(
                id=repo_id or _stable_id("repo:" + full_name),
                full_name=full_name,
                installation_id=installation_id,
                default_branch=default_branch,
                private=private,
                git_dir=bare_repo_path(self.repos_root, full_name),
            )
        return sha

    def push(self, full_name: str, branch: str, files: Mapping[str, str | bytes],
             message: str = "Update", parent_branch: str | None = None,
             delete: Iterable[str] = ()) -> str:
        """Commit ``files`` onto ``branch`` (created from ``parent_branch``); return the sha."""
        return push_commit(self.repos_root, full_name, branch, files, message, parent_branch,
                           delete)

    def ref(self, full_name: str, ref: str) -> str | None:
        return repo_ref(self.repos_root, full_name, ref)

    def file_at(self, full_name: str, ref: str, path: str) -> str:
        return repo_file_at(self.repos_root, full_name, ref, path)

    def add_pull(self, repo: str, number: int, head_ref: str, head_sha: str | None = None,
                 base_ref: str | None = None, fork: bool = False,
                 maintainer_can_modify: bool = False, head_repo: str | None = None,
                 user: str = "contributor", title: str | None = None, body: str | None = "",
                 state: str = "open", draft: bool = False) -> dict[str, Any]:
        """Register pull request ``number``.

        The head commit is ``head_ref`` of ``head_repo`` (default: the repository itself, or
        ``<user>/<name>`` for ``fork=True``; when that fork is not a known repository, the branch
        is read from the base repository). Like GitHub, ``refs/pull/N/head`` is set in the base
        repository and ``head.sha`` follows later pushes to the head branch.
        """
        r = self.repos[repo]
        if head_repo is None:
            head_repo = f"{user}/{r.name}" if fork else repo
        source = head_repo if head_repo in self.repos else repo
        if head_sha is None:
            head_sha = self.ref(source, f"refs/heads/{head_ref}")
            if head_sha is None:
                raise ValueError(f"{source} has no branch {head_ref!r}")
        if source != repo:
            _git("--git-dir", str(r.git_dir), "fetch", "--quiet", str(self.repos[source].git_dir),
                 f"+refs/heads/{head_ref}:refs/pull/{number}/head")
        else:
            set_ref(self.repos_root, repo, f"refs/pull/{number}/head", head_sha)
        pull = Pull(repo=repo, number=number, id=_stable_id(f"pull:{repo}#{number}"),
                    head_ref=head_ref, head_sha=head_sha, base_ref=base_ref or r.default_branch,
                    head_repo=head_repo, maintainer_can_modify=maintainer_can_modify, user=user,
                    title=title or f"Change {head_ref}", body=body, state=state, draft=draft)
        with self._lock:
            self.pulls_by_key[(repo, number)] = pull
        return self._pull_json(pull)

    def add_issue(self, repo: str, number: int) -> None:
        """A plain issue (so comments can be posted on it)."""
        with self._lock:
            self.issues[(repo, number)] = {"repo": repo, "number": number}

    def set_permission(self, repo: str, user: str, permission: str) -> None:
        """Role of ``user`` on ``repo``: admin | maintain | write | triage | read | none."""
        if permission not in ROLE_OF:
            raise ValueError(permission)
        with self._lock:
            self.permissions[(repo, user)] = permission

    def add_comment(self, repo: str, number: int, body: str, user: str = "maintainer",
                    user_type: str = "User", comment_id: int | None = None) -> int:
        """A comment written by someone (e.g. ``/qwen fix``); return its id."""
        with self._lock:
            cid = comment_id or self._next_id()
            self.issue_comments[cid] = {"repo": repo, "number": number,
                                        "json": self._issue_comment_json(repo, number, cid, body,
                                                                         user, user_type)}
            return cid

    def add_review_comment(self, repo: str, number: int, body: str, path: str, line: int,
                           user: str = "maintainer", comment_id: int | None = None) -> int:
        """An inline pull request review comment written by someone; return its id."""
        with self._lock:
            cid = comment_id or self._next_id()
            self.review_comments[cid] = {
                "repo": repo, "number": number, "review_id": None,
                "json": self._review_comment_json(repo, number, cid, None, {
                    "path": path, "line": line, "side": "RIGHT", "body": body}, user),
            }
            return cid

    def add_check_run(self, repo: str, head_sha: str, name: str, status: str = "completed",
                      conclusion: str | None = "failure", check_run_id: int | None = None,
                      app_slug: str = "github-actions", external_id: str = "",
                      title: str | None = None, summary: str | None = None,
                      text: str | None = None, annotations: Iterable[Mapping[str, Any]] = (),
                      details_url: str | None = None, check_suite_id: int | None = None) -> int:
        """A check run made by another app (default GitHub Actions); return its id."""
        with self._lock:
            rid = check_run_id or self._next_id()
            suite = check_suite_id or self._suite_for(repo, head_sha, app_slug)
            self.check_suites.setdefault(suite, {"id": suite, "repo": repo,
                                                 "head_sha": head_sha, "app": app_slug})
            self.check_run_records[rid] = {
                "repo": repo, "id": rid, "name": name, "head_sha": head_sha, "status": status,
                "conclusion": conclusion, "external_id": external_id, "app": app_slug,
                "details_url": details_url or self.html(f"/{repo}/runs/{rid}"),
                "check_suite_id": suite,
                "output": {"title": title, "summary": summary, "text": text},
                "annotations": [self._annotation(repo, head_sha, a) for a in annotations],
                "started_at": CREATED_AT,
                "completed_at": CREATED_AT if status == "completed" else None,
                "history": [],
            }
            return rid

    def add_workflow_run(self, repo: str, run_id: int, head_sha: str,
                         path: str = ".github/workflows/ci.yml",
                         jobs: Iterable[Mapping[str, Any]] = (), name: str = "CI",
                         head_branch: str | None = None, event: str = "pull_request",
                         status: str = "completed", conclusion: str | None = "failure",
                         pull_numbers: Iterable[int] = (), run_attempt: int = 1,
                         check_suite_id: int | None = None) -> dict[str, Any]:
        """A GitHub Actions workflow run.

        ``jobs``: ``[{"id", "name", "conclusion", "steps": [{"name", "number", "conclusion"}],
        "log": str, "annotations": [{"path", "start_line", "end_line", "annotation_level",
        "message", "title"?}]}]``. Each job is also a check run (same id) in the run's check
        suite, like GitHub Actions does.
        """
        with self._lock:
            suite = check_suite_id or self._suite_for(repo, head_sha, "github-actions")
            self.check_suites.setdefault(suite, {"id": suite, "repo": repo,
                                                 "head_sha": head_sha, "app": "github-actions"})
            run = {
                "repo": repo, "id": run_id, "name": name, "path": path, "head_sha": head_sha,
                "head_branch": head_branch, "event": event, "status": status,
                "conclusion": conclusion, "pull_numbers": list(pull_numbers),
                "run_attempt": run_attempt, "check_suite_id": suite, "job_ids": [],
            }
            self.workflow_runs[run_id] = run
            for j in jobs:
                jid = int(j["id"])
                steps = [dict(s) for s in j.get("steps", [])]
                job = {
                    "repo": repo, "id": jid, "run_id": run_id, "name": j["name"],
                    "status": j.get("status", "completed"),
                    "conclusion": j.get("conclusion", "failure"),
                    "steps": steps, "log": j.get("log", ""), "head_sha": head_sha,
                }
                self.jobs[jid] = job
                run["job_ids"].append(jid)
                self.add_check_run(repo, head_sha, j["name"], status=job["status"],
                                   conclusion=job["conclusion"], check_run_id=jid,
                                   annotations=j.get("annotations", ()),
                                   details_url=self.html(f"/{repo}/actions/runs/{run_id}/job/{jid}"),
                                   check_suite_id=suite,
                                   title=j.get("title"), summary=j.get("summary"))
            return run

    def fail_next(self, method: str, path: str, status: int,
                  headers: Mapping[str, str] | None = None, times: int = 1,
                  message: str | None = None) -> None:
        """Answer the next ``times`` requests ``method path`` (path below the API root, no query)
        with ``status``. ``fail_next("POST", p, 403, {"retry-after": "1"})`` is a secondary rate
        limit as GitHub sends it."""
        if message is None:
            message = {403: "You have exceeded a secondary rate limit. Please wait a few minutes "
                            "before you try again.",
                       429: "You have exceeded a secondary rate limit.",
                       502: "Server Error", 503: "Service Unavailable"}.get(status, "Error")
        with self._lock:
            self._failures.append({"method": method.upper(), "path": path, "status": status,
                                   "headers": dict(headers or {}), "times": times,
                                   "message": message})

    def revoke_tokens(self) -> None:
        """Forget every issued installation token (later requests with them get 401)."""
        with self._lock:
            self.tokens.clear()

    # ---------------------------------------------------------------- readers

    def calls(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Recorded requests, optionally filtered by method and exact path (or regex ``re:...``)."""
        out = []
        for r in list(self.requests):
            if method is not None and r.method != method.upper():
                continue
            if path is not None:
                if path.startswith("re:"):
                    if not re.fullmatch(path[3:], r.path):
                        continue
                elif r.path != path:
                    continue
            out.append(r)
        return out

    def token_exchanges(self) -> list[RecordedRequest]:
        return self.calls("POST", r"re:/app/installations/\d+/access_tokens")

    def comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        """Issue/PR conversation comments, oldest first (GitHub's JSON)."""
        with self._lock:
            return [copy.deepcopy(c["json"]) for _, c in sorted(self.issue_comments.items())
                    if c["repo"] == repo and c["number"] == number]

    def bot_comments(self, repo: str, number: int) -> list[dict[str, Any]]:
        return [c for c in self.comments(repo, number) if c["user"]["login"] == self.bot_login]

    def reviews(self, repo: str, number: int) -> list[dict[str, Any]]:
        """Reviews on a PR: GitHub's JSON plus ``event`` and ``comments`` (the inline comments as
        posted, each with the ``id`` it got)."""
        with self._lock:
            out = []
            for _rid, rec in sorted(self.review_records.items()):
                if rec["repo"] == repo and rec["number"] == number:
                    item = self._review_json(rec)
                    item["event"] = rec["event"]
                    item["comments"] = copy.deepcopy(rec["comments"])
                    out.append(item)
            return out

    def check_runs(self, repo: str, sha: str | None = None,
                   app_slug: str | None = APP_SLUG) -> list[dict[str, Any]]:
        """Check runs (GitHub's JSON plus ``annotations``) on ``repo`` (at ``sha``), by default
        only the ones this app created."""
        with self._lock:
            out = []
            for _rid, rec in sorted(self.check_run_records.items()):
                if rec["repo"] != repo or (sha is not None and rec["head_sha"] != sha):
                    continue
                if app_slug is not None and rec["app"] != app_slug:
                    continue
                item = self._check_run_json(rec)
                item["annotations"] = copy.deepcopy(rec["annotations"])
                out.append(item)
            return out

    def pulls(self, repo: str) -> list[dict[str, Any]]:
        with self._lock:
            return [self._pull_json(p) for (r, _), p in sorted(self.pulls_by_key.items())
                    if r == repo]

    def reactions(self, repo: str | None = None,
                  comment_id: int | None = None) -> list[dict[str, Any]]:
        """``[{"repo", "subject": "issue_comment"|"pull_request_review_comment", "comment_id",
        "content", "user"}]``."""
        with self._lock:
            return [dict(r) for r in self.reaction_records
                    if (repo is None or r["repo"] == repo)
                    and (comment_id is None or r["comment_id"] == comment_id)]

    # ---------------------------------------------------------------- JSON shapes

    def _user_json(self, login: str, type_: str = "User") -> dict[str, Any]:
        uid = _stable_id("user:" + login)
        base = self.api(f"/users/{quote(login)}")
        return {
            "login": login, "id": uid, "node_id": _node_id("User", uid),
            "avatar_url": self.html(f"/avatars/{uid}"), "gravatar_id": "",
            "url": base, "html_url": self.html(f"/{login}"),
            "followers_url": base + "/followers",
            "following_url": base + "/following{/other_user}",
            "gists_url": base + "/gists{/gist_id}",
            "starred_url": base + "/starred{/owner}{/repo}",
            "subscriptions_url": base + "/subscriptions",
            "organizations_url": base + "/orgs", "repos_url": base + "/repos",
            "events_url": base + "/events{/privacy}",
            "received_events_url": base + "/received_events",
            "type": type_, "site_admin": False, "user_view_type": "public",
        }

    def _bot_json(self) -> dict[str, Any]:
        return self._user_json(self.bot_login, "Bot")

    def _app_json(self, slug: str = APP_SLUG) -> dict[str, Any]:
        app_id = self.app_id if slug == APP_SLUG else _stable_id("app:" + slug)
        return {
            "id": app_id, "slug": slug, "node_id": _node_id("App", app_id),
            "client_id": f"Iv1.{app_id}", "owner": self._user_json("qwenfix-org", "Organization"),
            "name": slug, "description": f"{slug} app", "external_url": self.html(f"/{slug}"),
            "html_url": self.html(f"/apps/{slug}"), "created_at": CREATED_AT,
            "updated_at": CREATED_AT, "permissions": dict(APP_PERMISSIONS),
            "events": list(APP_EVENTS),
        }

    def _repo_json(self, full_name: str) -> dict[str, Any]:
        r = self.repos.get(full_name)
        rid = r.id if r else _stable_id("repo:" + full_name)
        owner, name = full_name.split("/", 1)
        base = self.api(f"/repos/{full_name}")
        templated = {
            "archive_url": "/{archive_format}{/ref}", "assignees_url": "/assignees{/user}",
            "blobs_url": "/git/blobs{/sha}", "branches_url": "/branches{/branch}",
            "collaborators_url": "/collaborators{/collaborator}",
            "comments_url": "/comments{/number}", "commits_url": "/commits{/sha}",
            "compare_url": "/compare/{base}...{head}", "contents_url": "/contents/{+path}",
            "contributors_url": "/contributors", "deployments_url": "/deployments",
            "downloads_url": "/downloads", "events_url": "/events", "forks_url": "/forks",
            "git_commits_url": "/git/commits{/sha}", "git_refs_url": "/git/refs{/sha}",
            "git_tags_url": "/git/tags{/sha}", "hooks_url": "/hooks",
            "issue_comment_url": "/issues/comments{/number}",
            "issue_events_url": "/issues/events{/number}", "issues_url": "/issues{/number}",
            "keys_url": "/keys{/key_id}", "labels_url": "/labels{/name}",
            "languages_url": "/languages", "merges_url": "/merges",
            "milestones_url": "/milestones{/number}",
            "notifications_url": "/notifications{?since,all,participating}",
            "pulls_url": "/pulls{/number}", "releases_url": "/releases{/id}",
            "stargazers_url": "/stargazers", "statuses_url": "/statuses/{sha}",
            "subscribers_url": "/subscribers", "subscription_url": "/subscription",
            "tags_url": "/tags", "teams_url": "/teams", "trees_url": "/git/trees{/sha}",
        }
        out: dict[str, Any] = {
            "id": rid, "node_id": _node_id("Repository", rid), "name": name,
            "full_name": full_name, "owner": self._user_json(owner, "Organization"),
            "private": bool(r and r.private), "html_url": self.html(f"/{full_name}"),
            "description": None, "fork": False, "url": base,
        }
        out.update({k: base + v for k, v in templated.items()})
        out.update({
            "git_url": f"git://127.0.0.1/{full_name}.git", "ssh_url": f"git@127.0.0.1:{full_name}.git",
            "clone_url": self.clone_url(full_name), "svn_url": self.html(f"/{full_name}"),
            "mirror_url": None, "homepage": None, "language": "Python", "forks_count": 0,
            "stargazers_count": 0, "watchers_count": 0, "size": 1,
            "default_branch": r.default_branch if r else "main", "open_issues_count": 0,
            "is_template": False, "topics": [], "has_issues": True, "has_projects": False,
            "has_wiki": False, "has_pages": False, "has_downloads": True,
            "has_discussions": False, "archived": False, "disabled": False,
            "visibility": "private" if r and r.private else "public",
            "pushed_at": CREATED_AT, "created_at": CREATED_AT, "updated_at": CREATED_AT,
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True,
                            "pull": True},
            "allow_forking": True, "subscribers_count": 0, "network_count": 0,
            "license": None, "forks": 0, "open_issues": 0, "watchers": 0,
        })
        return out

    def _installation_json(self, inst: dict[str, Any]) -> dict[str, Any]:
        iid = inst["id"]
        return {
            "id": iid,
            "account": self._user_json(inst["account"], inst["account_type"]),
            "repository_selection": inst["repository_selection"],
            "access_tokens_url": self.api(f"/app/installations/{iid}/access_tokens"),
            "repositories_url": self.api("/installation/repositories"),
            "html_url": self.html(f"/organizations/{inst['account']}/settings/installations/{iid}"),
            "app_id": self.app_id, "app_slug": self.app_slug,
            "target_id": _stable_id("user:" + inst["account"]),
            "target_type": inst["account_type"], "permissions": dict(APP_PERMISSIONS),
            "events": list(APP_EVENTS), "created_at": CREATED_AT, "updated_at": CREATED_AT,
            "single_file_name": None, "has_multiple_single_files": False,
            "single_file_paths": [], "suspended_by": None, "suspended_at": None,
        }

    def _current_head_sha(self, p: Pull) -> str:
        source = p.head_repo if p.head_repo in self.repos else p.repo
        sha = self.ref(source, f"refs/heads/{p.head_ref}")
        if sha and sha != p.head_sha and p.state == "open":
            p.head_sha = sha  # a push to the head branch moves the PR, like on GitHub
            if source != p.repo:
                _git("--git-dir", str(self.repos[p.repo].git_dir), "fetch", "--quiet",
                     str(self.repos[source].git_dir),
                     f"+refs/heads/{p.head_ref}:refs/pull/{p.number}/head")
            else:
                set_ref(self.repos_root, p.repo, f"refs/pull/{p.number}/head", sha)
        return p.head_sha

    def _pull_json(self, p: Pull, simple: bool = False) -> dict[str, Any]:
        head_sha = self._current_head_sha(p)
        base_sha = self.ref(p.repo, f"refs/heads/{p.base_ref}") or ""
        base = self.api(f"/repos/{p.repo}/pulls/{p.number}")
        issue = self.api(f"/repos/{p.repo}/issues/{p.number}")
        html = self.html(f"/{p.repo}/pull/{p.number}")
        head_owner = p.head_repo.split("/", 1)[0]
        base_owner = p.repo.split("/", 1)[0]
        out: dict[str, Any] = {
            "url": base, "id": p.id, "node_id": _node_id("PullRequest", p.id), "html_url": html,
            "diff_url": html + ".diff", "patch_url": html + ".patch", "issue_url": issue,
            "commits_url": base + "/commits", "review_comments_url": base + "/comments",
            "review_comment_url": self.api(f"/repos/{p.repo}/pulls/comments{{/number}}"),
            "comments_url": issue + "/comments",
            "statuses_url": self.api(f"/repos/{p.repo}/statuses/{head_sha}"),
            "number": p.number, "state": p.state, "locked": False, "title": p.title,
            "user": self._user_json(p.user), "body": p.body, "labels": [], "milestone": None,
            "active_lock_reason": None, "created_at": p.created_at, "updated_at": p.created_at,
            "closed_at": None, "merged_at": None, "merge_commit_sha": None, "assignee": None,
            "assignees": [], "requested_reviewers": [], "requested_teams": [],
            "head": {"label": f"{head_owner}:{p.head_ref}", "ref": p.head_ref, "sha": head_sha,
                     "user": self._user_json(head_owner), "repo": self._repo_json(p.head_repo)},
            "base": {"label": f"{base_owner}:{p.base_ref}", "ref": p.base_ref, "sha": base_sha,
                     "user": self._user_json(base_owner, "Organization"),
                     "repo": self._repo_json(p.repo)},
            "_links": {k: {"href": v} for k, v in {
                "self": base, "html": html, "issue": issue, "comments": issue + "/comments",
                "review_comments": base + "/comments",
                "review_comment": self.api(f"/repos/{p.repo}/pulls/comments{{/number}}"),
                "commits": base + "/commits",
                "statuses": self.api(f"/repos/{p.repo}/statuses/{head_sha}")}.items()},
            "author_association": "CONTRIBUTOR", "auto_merge": None, "draft": p.draft,
        }
        out["head"]["repo"]["fork"] = p.head_repo != p.repo
        if not simple:
            files = self._pull_files(p)
            out.update({
                "merged": p.merged, "mergeable": True, "rebaseable": True,
                "mergeable_state": "clean", "merged_by": None, "comments": 0,
                "review_comments": 0, "maintainer_can_modify": p.maintainer_can_modify,
                "commits": 1, "additions": sum(f["additions"] for f in files),
                "deletions": sum(f["deletions"] for f in files), "changed_files": len(files),
            })
        return out

    def _pull_files(self, p: Pull) -> list[dict[str, Any]]:
        """GitHub's DiffEntry list for a PR: `git diff base...head`, patch = the hunks."""
        from unidiff import PatchSet

        head_sha = self._current_head_sha(p)
        git_dir = str(self.repos[p.repo].git_dir)
        base_sha = self.ref(p.repo, f"refs/heads/{p.base_ref}")
        diff = _git("--git-dir", git_dir, "diff", "--no-color", "--no-ext-diff", "-M",
                    "--full-index", f"{base_sha}...{head_sha}")
        out = []
        for pf in PatchSet(diff + "\n" if diff else ""):
            path = pf.path
            if pf.is_removed_file:
                status, sha = "removed", self._blob_sha(git_dir, base_sha, pf.source_file[2:])
            else:
                status = "added" if pf.is_added_file else (
                    "renamed" if pf.is_rename else "modified")
                sha = self._blob_sha(git_dir, head_sha, path)
            entry: dict[str, Any] = {
                "sha": sha, "filename": path, "status": status, "additions": pf.added,
                "deletions": pf.removed, "changes": pf.added + pf.removed,
                "blob_url": self.html(f"/{p.repo}/blob/{head_sha}/{path}"),
                "raw_url": self.html(f"/{p.repo}/raw/{head_sha}/{path}"),
                "contents_url": self.api(f"/repos/{p.repo}/contents/{path}?ref={head_sha}"),
            }
            if pf.is_rename:
                entry["previous_filename"] = pf.source_file[2:] if pf.source_file.startswith(
                    "a/") else pf.source_file
            if not pf.is_binary_file and len(pf):
                text = str(pf)
                at = text.find("\n@@")
                entry["patch"] = text[at + 1:].rstrip("\n") if at >= 0 else ""
            out.append(entry)
        return out

    @staticmethod
    def _blob_sha(git_dir: str, ref: str | None, path: str) -> str:
        try:
            return _git("--git-dir", git_dir, "rev-parse", f"{ref}:{path}")
        except RuntimeError:
            return "0" * 40

    def _issue_comment_json(self, repo: str, number: int, cid: int, body: str, login: str,
                            user_type: str = "User") -> dict[str, Any]:
        stamp = now_iso()
        return {
            "id": cid, "node_id": _node_id("IssueComment", cid),
            "url": self.api(f"/repos/{repo}/issues/comments/{cid}"),
            "html_url": self.html(f"/{repo}/pull/{number}#issuecomment-{cid}"),
            "body": body, "user": self._user_json(login, user_type),
            "created_at": stamp, "updated_at": stamp,
            "issue_url": self.api(f"/repos/{repo}/issues/{number}"),
            "author_association": "NONE" if user_type == "Bot" else "MEMBER",
        }

    def _review_comment_json(self, repo: str, number: int, cid: int, review_id: int | None,
                             c: Mapping[str, Any], login: str,
                             user_type: str = "User") -> dict[str, Any]:
        stamp = now_iso()
        pr_url = self.api(f"/repos/{repo}/pulls/{number}")
        url = self.api(f"/repos/{repo}/pulls/comments/{cid}")
        html = self.html(f"/{repo}/pull/{number}#discussion_r{cid}")
        p = self.pulls_by_key.get((repo, number))
        sha = p.head_sha if p else "0" * 40
        return {
            "url": url, "pull_request_review_id": review_id, "id": cid,
            "node_id": _node_id("PullRequestReviewComment", cid), "diff_hunk": "@@",
            "path": c.get("path", ""), "position": None, "original_position": None,
            "commit_id": sha, "original_commit_id": sha, "user": self._user_json(login, user_type),
            "body": c.get("body", ""), "created_at": stamp, "updated_at": stamp,
            "html_url": html, "pull_request_url": pr_url, "author_association": "MEMBER",
            "_links": {"self": {"href": url}, "html": {"href": html},
                       "pull_request": {"href": pr_url}},
            "line": c.get("line"), "start_line": c.get("start_line"), "side": c.get("side"),
            "start_side": c.get("start_side"),
        }

    def _review_json(self, rec: dict[str, Any]) -> dict[str, Any]:
        repo, number, rid = rec["repo"], rec["number"], rec["id"]
        html = self.html(f"/{repo}/pull/{number}#pullrequestreview-{rid}")
        pr_url = self.api(f"/repos/{repo}/pulls/{number}")
        return {
            "id": rid, "node_id": _node_id("PullRequestReview", rid),
            "user": self._bot_json(), "body": rec["body"], "state": rec["state"],
            "html_url": html, "pull_request_url": pr_url,
            "_links": {"html": {"href": html}, "pull_request": {"href": pr_url}},
            "submitted_at": rec["submitted_at"], "commit_id": rec["commit_id"],
            "author_association": "NONE",
        }

    def _check_run_json(self, rec: dict[str, Any]) -> dict[str, Any]:
        repo, rid = rec["repo"], rec["id"]
        out = rec["output"]
        return {
            "id": rid, "head_sha": rec["head_sha"], "node_id": _node_id("CheckRun", rid),
            "external_id": rec["external_id"], "url": self.api(f"/repos/{repo}/check-runs/{rid}"),
            "html_url": self.html(f"/{repo}/runs/{rid}"), "details_url": rec["details_url"],
            "status": rec["status"], "conclusion": rec["conclusion"],
            "started_at": rec["started_at"], "completed_at": rec["completed_at"],
            "output": {
                "title": out.get("title"), "summary": out.get("summary"),
                "text": out.get("text"), "annotations_count": len(rec["annotations"]),
                "annotations_url": self.api(f"/repos/{repo}/check-runs/{rid}/annotations"),
            },
            "name": rec["name"], "check_suite": {"id": rec["check_suite_id"]},
            "app": self._app_json(rec["app"]), "pull_requests": [],
        }

    def _annotation(self, repo: str, sha: str, a: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "path": a["path"], "start_line": a.get("start_line", 1),
            "end_line": a.get("end_line", a.get("start_line", 1)),
            "start_column": a.get("start_column"), "end_column": a.get("end_column"),
            "annotation_level": a.get("annotation_level", "failure"),
            "title": a.get("title"), "message": a.get("message", ""),
            "raw_details": a.get("raw_details"),
            "blob_href": self.html(f"/{repo}/blob/{sha}/{a['path']}"),
        }

    def _suite_for(self, repo: str, sha: str, app_slug: str) -> int:
        for sid, s in self.check_suites.items():
            if s["repo"] == repo and s["head_sha"] == sha and s["app"] == app_slug:
                return sid
        sid = self._next_id()
        self.check_suites[sid] = {"id": sid, "repo": repo, "head_sha": sha, "app": app_slug}
        return sid

    def _minimal_repo_json(self, full_name: str) -> dict[str, Any]:
        return self._repo_json(full_name)

    def _workflow_run_json(self, run: dict[str, Any]) -> dict[str, Any]:
        repo, rid = run["repo"], run["id"]
        base = self.api(f"/repos/{repo}/actions/runs/{rid}")
        wid = _stable_id(f"workflow:{repo}:{run['path']}")
        prs = []
        for n in run["pull_numbers"]:
            p = self.pulls_by_key.get((repo, n))
            if p is None:
                continue
            prs.append({
                "id": p.id, "number": n, "url": self.api(f"/repos/{repo}/pulls/{n}"),
                "head": {"ref": p.head_ref, "sha": p.head_sha,
                         "repo": {"id": _stable_id("repo:" + p.head_repo),
                                  "url": self.api(f"/repos/{p.head_repo}"),
                                  "name": p.head_repo.split("/")[1]}},
                "base": {"ref": p.base_ref, "sha": self.ref(repo, f"refs/heads/{p.base_ref}"),
                         "repo": {"id": self.repos[repo].id, "url": self.api(f"/repos/{repo}"),
                                  "name": repo.split("/")[1]}},
            })
        head_branch = run["head_branch"]
        if head_branch is None and run["pull_numbers"]:
            p = self.pulls_by_key.get((repo, run["pull_numbers"][0]))
            head_branch = p.head_ref if p else None
        author = {"name": "Test Author", "email": "author@example.com"}
        return {
            "id": rid, "name": run["name"], "node_id": _node_id("WorkflowRun", rid),
            "head_branch": head_branch, "head_sha": run["head_sha"], "path": run["path"],
            "display_title": run["name"], "run_number": rid % 1000, "run_attempt": run["run_attempt"],
            "event": run["event"], "status": run["status"], "conclusion": run["conclusion"],
            "workflow_id": wid, "check_suite_id": run["check_suite_id"],
            "check_suite_node_id": _node_id("CheckSuite", run["check_suite_id"]),
            "url": base, "html_url": self.html(f"/{repo}/actions/runs/{rid}"),
            "pull_requests": prs, "created_at": CREATED_AT, "updated_at": CREATED_AT,
            "run_started_at": CREATED_AT, "actor": self._user_json("contributor"),
            "triggering_actor": self._user_json("contributor"),
            "jobs_url": base + "/jobs", "logs_url": base + "/logs",
            "check_suite_url": self.api(f"/repos/{repo}/check-suites/{run['check_suite_id']}"),
            "artifacts_url": base + "/artifacts", "cancel_url": base + "/cancel",
            "rerun_url": base + "/rerun",
            "workflow_url": self.api(f"/repos/{repo}/actions/workflows/{wid}"),
            "head_commit": {"id": run["head_sha"], "tree_id": "0" * 40, "message": "Update",
                            "timestamp": CREATED_AT, "author": author, "committer": author},
            "repository": self._minimal_repo_json(repo),
            "head_repository": self._minimal_repo_json(repo),
        }

    def _job_json(self, job: dict[str, Any]) -> dict[str, Any]:
        repo, jid = job["repo"], job["id"]
        run = self.workflow_runs[job["run_id"]]
        steps = []
        for i, s in enumerate(job["steps"], start=1):
            steps.append({"name": s["name"], "number": s.get("number", i),
                          "status": s.get("status", "completed"),
                          "conclusion": s.get("conclusion", "success"),
                          "started_at": CREATED_AT, "completed_at": CREATED_AT})
        return {
            "id": jid, "run_id": job["run_id"],
            "run_url": self.api(f"/repos/{repo}/actions/runs/{job['run_id']}"),
            "run_attempt": run["run_attempt"], "node_id": _node_id("Job", jid),
            "head_sha": job["head_sha"], "url": self.api(f"/repos/{repo}/actions/jobs/{jid}"),
            "html_url": self.html(f"/{repo}/actions/runs/{job['run_id']}/job/{jid}"),
            "status": job["status"], "conclusion": job["conclusion"],
            "created_at": CREATED_AT, "started_at": CREATED_AT,
            "completed_at": CREATED_AT if job["status"] == "completed" else None,
            "name": job["name"], "steps": steps,
            "check_run_url": self.api(f"/repos/{repo}/check-runs/{jid}"),
            "labels": ["ubuntu-latest"], "runner_id": 1, "runner_name": "GitHub Actions 1",
            "runner_group_id": 1, "runner_group_name": "GitHub Actions",
            "workflow_name": run["name"], "head_branch": run["head_branch"],
        }

    # ---------------------------------------------------------------- auth

    def _verify_app_jwt(self, request: Request) -> None:
        token = token_from_authorization(request.headers.get("authorization"))
        if not token or token.startswith("ghs_"):
            raise GitHubError(401, "A JSON web token could not be decoded")
        try:
            claims = jwt.decode(token, self.public_key_pem, algorithms=["RS256"],
                                options={"require": ["exp", "iat", "iss"],
                                         "verify_iss": False}, leeway=30)
        except jwt.ExpiredSignatureError:
            raise GitHubError(401, "'Expiration time' claim ('exp') must be a numeric value "
                                   "representing the future time at which the assertion "
                                   "expires") from None
        except jwt.PyJWTError:
            raise GitHubError(401, "A JSON web token could not be decoded") from None
        if str(claims.get("iss")) != str(self.app_id):
            raise GitHubError(401, "'Issuer' claim ('iss') must be an Integer")
        if int(claims["exp"]) - int(claims["iat"]) > 600 + 60:
            raise GitHubError(401, "'Expiration time' claim ('exp') is too far in the future")

    def _installation_token(self, request: Request) -> Token:
        token = token_from_authorization(request.headers.get("authorization"))
        with self._lock:
            t = self.tokens.get(token or "")
        if t is None or t.expired:
            raise GitHubError(401, "Bad credentials")
        return t

    def _repo_for(self, request: Request, owner: str, name: str) -> tuple[Repo, Token]:
        t = self._installation_token(request)
        full = f"{owner}/{name}"
        r = self.repos.get(full)
        if r is None or r.installation_id != t.installation_id:
            raise GitHubError(404, "Not Found")
        if t.repositories is not None and full not in t.repositories:
            raise GitHubError(404, "Not Found")
        return r, t

    def _git_authorize(self, token: str | None) -> bool:
        with self._lock:
            t = self.tokens.get(token or "")
        return t is not None and not t.expired

    # ---------------------------------------------------------------- the ASGI app

    def _build_app(self) -> Any:
        api = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        self._routes(api)

        @api.exception_handler(GitHubError)
        async def _gh_error(request: Request, exc: GitHubError):  # noqa: ANN202
            return exc.response()

        @api.exception_handler(StarletteHTTPException)
        async def _http_error(request: Request, exc: StarletteHTTPException):  # noqa: ANN202
            if exc.status_code in (404, 405):
                return GitHubError(404, "Not Found").response()
            return GitHubError(exc.status_code, str(exc.detail)).response()

        git_app = git_http_app(self.repos_root, self._git_authorize,
                               on_request=self.git_requests.append)
        fake = self

        async def outer(scope, receive, send):  # noqa: ANN001, ANN202
            if scope["type"] != "http":
                return await api(scope, receive, send)
            path = scope["path"]
            if path.startswith("/git/"):
                return await fake._serve_git(git_app, scope, receive, send)
            raw = path
            if path == ENTERPRISE_PREFIX or path.startswith(ENTERPRISE_PREFIX + "/"):
                path = path[len(ENTERPRISE_PREFIX):] or "/"
                scope = dict(scope, path=path, raw_path=path.encode())
            scope = dict(scope)
            scope["fake_github.raw_path"] = raw
            body = b""
            while True:
                message = await receive()
                if message["type"] == "http.request":
                    body += message.get("body", b"")
                    if not message.get("more_body", False):
                        break
                else:
                    break
            headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                       for k, v in scope.get("headers", [])}
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            record = RecordedRequest(
                method=scope["method"], path=path,
                query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
                json=parsed, headers=headers, raw_path=raw, body=body,
            )
            with fake._lock:
                fake.requests.append(record)

            async def status_send(message):  # noqa: ANN001, ANN202
                if message["type"] == "http.response.start":
                    record.status = message["status"]
                await send(message)

            failure = fake._take_failure(record.method, path)
            if failure is not None:
                resp = GitHubError(failure["status"], failure["message"],
                                   headers=failure["headers"]).response()
                return await resp(scope, receive, status_send)

            sent = False

            async def replay():  # noqa: ANN202
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return {"type": "http.disconnect"}

            await api(scope, replay, status_send)

        return outer

    async def _serve_git(self, git_app, scope, receive, send) -> None:  # noqa: ANN001
        """Smart HTTP for /git/owner/repo.git/...; a token narrowed to other repositories is
        refused like GitHub does."""
        parts = scope["path"].split("/")
        token = None
        for k, v in scope.get("headers", []):
            if k.lower() == b"authorization":
                token = token_from_authorization(v.decode("latin-1"))
        if len(parts) >= 4 and parts[3].endswith(".git") and token:
            full = f"{parts[2]}/{parts[3][:-4]}"
            with self._lock:
                t = self.tokens.get(token)
                r = self.repos.get(full)
            if t is not None and not t.expired and (
                r is None or r.installation_id != t.installation_id
                or (t.repositories is not None and full not in t.repositories)
            ):
                resp = PlainTextResponse("Repository not found.\n", status_code=404)
                return await resp(scope, receive, send)
        await git_app(dict(scope, root_path="/git"), receive, send)

    def _take_failure(self, method: str, path: str) -> dict[str, Any] | None:
        with self._lock:
            for f in self._failures:
                if f["method"] == method and f["path"] == path and f["times"] > 0:
                    f["times"] -= 1
                    if f["times"] == 0:
                        self._failures.remove(f)
                    return f
        return None

    # ---------------------------------------------------------------- routes

    def _paginate(self, request: Request, items: list[Any]) -> JSONResponse:
        per_page = max(1, min(100, int(request.query_params.get("per_page", 30))))
        page = max(1, int(request.query_params.get("page", 1)))
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = {}
        if page * per_page < len(items):
            query = dict(request.query_params)
            query.update({"page": str(page + 1), "per_page": str(per_page)})
            raw = request.scope.get("fake_github.raw_path") or request.url.path
            headers["Link"] = f'<{self.server_url}{raw}?{urlencode(query)}>; rel="next"'
        return JSONResponse(chunk, headers=headers)

    def _routes(self, api: FastAPI) -> None:  # noqa: C901 - one place for every route
        fake = self

        # ------------------------------------------------------------ app (JWT)

        @api.get("/app")
        async def get_app(request: Request):  # noqa: ANN202
            fake._verify_app_jwt(request)
            return fake._app_json()

        @api.get("/app/installations/{iid}")
        async def get_installation(iid: int, request: Request):  # noqa: ANN202
            fake._verify_app_jwt(request)
            inst = fake.installations.get(iid)
            if inst is None:
                raise GitHubError(404, "Not Found")
            return fake._installation_json(inst)

        @api.post("/app/installations/{iid}/access_tokens", status_code=201)
        async def create_token(iid: int, request: Request):  # noqa: ANN202
            fake._verify_app_jwt(request)
            inst = fake.installations.get(iid)
            if inst is None:
                raise GitHubError(404, "Not Found")
            body = await _json(request) or {}
            owned = {n: r for n, r in fake.repos.items() if r.installation_id == iid}
            repositories: list[str] | None = None
            if body.get("repositories") or body.get("repository_ids"):
                repositories = []
                for name in body.get("repositories") or []:
                    full = name if "/" in name else f"{inst['account']}/{name}"
                    if full not in owned:
                        raise GitHubError(422, "There is at least one repository that does not "
                                               "exist or is not accessible to the parent "
                                               "installation.")
                    repositories.append(full)
                for rid in body.get("repository_ids") or []:
                    match = [n for n, r in owned.items() if r.id == rid]
                    if not match:
                        raise GitHubError(422, "There is at least one repository that does not "
                                               "exist or is not accessible to the parent "
                                               "installation.")
                    repositories.extend(match)
            permissions = dict(body.get("permissions") or APP_PERMISSIONS)
            token = "ghs_" + secrets.token_urlsafe(27).replace("-", "a").replace("_", "b")[:36]
            expires = time.time() + fake.token_ttl
            with fake._lock:
                fake.tokens[token] = Token(token, iid, expires, repositories, permissions, body)
            out: dict[str, Any] = {
                "token": token,
                "expires_at": datetime.fromtimestamp(expires, timezone.utc).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"),
                "permissions": permissions,
                "repository_selection": "selected" if repositories is not None else
                inst["repository_selection"],
            }
            if repositories is not None:
                out["repositories"] = [fake._repo_json(n) for n in repositories]
            return JSONResponse(out, status_code=201)

        # ------------------------------------------------------------ repository

        @api.get("/repos/{owner}/{name}")
        async def get_repo(owner: str, name: str, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            return fake._repo_json(r.full_name)

        @api.get("/repos/{owner}/{name}/contents/{path:path}")
        async def get_contents(owner: str, name: str, path: str, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            ref = request.query_params.get("ref") or r.default_branch
            git_dir = str(r.git_dir)
            path = path.strip("/")
            try:
                kind = _git("--git-dir", git_dir, "cat-file", "-t", f"{ref}:{path}")
            except RuntimeError:
                raise GitHubError(404, "Not Found") from None
            sha = _git("--git-dir", git_dir, "rev-parse", f"{ref}:{path}")
            if kind == "tree":
                listing = _git("--git-dir", git_dir, "ls-tree", "-l", f"{ref}:{path}" if path
                               else ref)
                items = []
                for line in listing.splitlines():
                    meta, _, entry = line.partition("\t")
                    _mode, otype, osha, size = meta.split()
                    item_path = f"{path}/{entry}" if path else entry
                    items.append(fake._content_item(r.full_name, ref, item_path, osha,
                                                    "dir" if otype == "tree" else "file",
                                                    0 if size == "-" else int(size)))
                return items
            blob = _git_bytes(git_dir, "cat-file", "blob", sha)
            item = fake._content_item(r.full_name, ref, path, sha, "file", len(blob))
            item["encoding"] = "base64"
            item["content"] = base64.encodebytes(blob).decode()
            return item

        @api.get("/repos/{owner}/{name}/collaborators/{user}/permission")
        async def get_permission(owner: str, name: str, user: str, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            role = fake.permissions.get((r.full_name, user), "none" if r.private else "read")
            collab = fake._user_json(user)
            collab["role_name"] = role
            collab["permissions"] = {
                "pull": role != "none", "triage": role in ("triage", "write", "maintain", "admin"),
                "push": role in ("write", "maintain", "admin"),
                "maintain": role in ("maintain", "admin"), "admin": role == "admin",
            }
            return {"permission": LEGACY_PERMISSION[role], "role_name": role, "user": collab}

        # ------------------------------------------------------------ pull requests

        @api.get("/repos/{owner}/{name}/pulls")
        async def list_pulls(owner: str, name: str, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            state = request.query_params.get("state", "open")
            head = request.query_params.get("head")
            base = request.query_params.get("base")
            items = []
            for (repo, _n), p in sorted(fake.pulls_by_key.items()):
                if repo != r.full_name or (state != "all" and p.state != state):
                    continue
                if head:
                    h_owner, _, h_ref = head.partition(":")
                    if not h_ref:
                        h_owner, h_ref = r.owner, head
                    if p.head_ref != h_ref or p.head_repo.split("/")[0] != h_owner:
                        continue
                if base and p.base_ref != base:
                    continue
                items.append(fake._pull_json(p, simple=True))
            return fake._paginate(request, items)

        @api.post("/repos/{owner}/{name}/pulls", status_code=201)
        async def create_pull(owner: str, name: str, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            body = await _json(request) or {}
            head, base = body.get("head", ""), body.get("base", "")
            if not body.get("title") or not head or not base:
                raise GitHubError(422, "Validation Failed", [{"resource": "PullRequest",
                                                              "code": "missing_field"}])
            h_owner, _, h_ref = head.partition(":")
            if not h_ref:
                h_owner, h_ref = r.owner, head
            head_repo = r.full_name if h_owner == r.owner else f"{h_owner}/{r.name}"
            source = head_repo if head_repo in fake.repos else r.full_name
            if fake.ref(source, f"refs/heads/{h_ref}") is None:
                raise GitHubError(422, "Validation Failed", [{"resource": "PullRequest",
                                                              "field": "head", "code": "invalid"}])
            if fake.ref(r.full_name, f"refs/heads/{base}") is None:
                raise GitHubError(422, "Validation Failed", [{"resource": "PullRequest",
                                                              "field": "base", "code": "invalid"}])
            with fake._lock:
                for p in fake.pulls_by_key.values():
                    if (p.repo == r.full_name and p.state == "open" and p.head_ref == h_ref
                            and p.head_repo == head_repo and p.base_ref == base):
                        raise GitHubError(422, "Validation Failed", [{
                            "resource": "PullRequest", "code": "custom",
                            "message": f"A pull request already exists for {h_owner}:{h_ref}."}])
                number = fake._next_number(r.full_name)
            pull = fake.add_pull(r.full_name, number, head_ref=h_ref, base_ref=base,
                                 head_repo=head_repo, user=fake.bot_login,
                                 title=body["title"], body=body.get("body"),
                                 draft=bool(body.get("draft", False)),
                                 maintainer_can_modify=bool(body.get("maintainer_can_modify",
                                                                     False)))
            pull["user"] = fake._bot_json()
            with fake._lock:
                fake.pulls_by_key[(r.full_name, number)].user = fake.bot_login
            return JSONResponse(fake._pull_json(fake.pulls_by_key[(r.full_name, number)]),
                                status_code=201)

        @api.get("/repos/{owner}/{name}/pulls/{number}")
        async def get_pull(owner: str, name: str, number: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            p = fake.pulls_by_key.get((r.full_name, number))
            if p is None:
                raise GitHubError(404, "Not Found")
            return fake._pull_json(p)

        @api.get("/repos/{owner}/{name}/pulls/{number}/files")
        async def pull_files(owner: str, name: str, number: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            p = fake.pulls_by_key.get((r.full_name, number))
            if p is None:
                raise GitHubError(404, "Not Found")
            return fake._paginate(request, fake._pull_files(p))

        @api.get("/repos/{owner}/{name}/pulls/{number}/reviews")
        async def list_reviews(owner: str, name: str, number: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            if (r.full_name, number) not in fake.pulls_by_key:
                raise GitHubError(404, "Not Found")
            items = [fake._review_json(rec) for _, rec in sorted(fake.review_records.items())
                     if rec["repo"] == r.full_name and rec["number"] == number]
            return fake._paginate(request, items)

        @api.post("/repos/{owner}/{name}/pulls/{number}/reviews")
        async def create_review(owner: str, name: str, number: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            p = fake.pulls_by_key.get((r.full_name, number))
            if p is None:
                raise GitHubError(404, "Not Found")
            body = await _json(request) or {}
            event = body.get("event")
            commit_id = body.get("commit_id") or fake._current_head_sha(p)
            comments = list(body.get("comments") or [])
            fake._validate_review_comments(p, comments)
            state = {"COMMENT": "COMMENTED", "APPROVE": "APPROVED",
                     "REQUEST_CHANGES": "CHANGES_REQUESTED"}.get(event or "", "PENDING")
            with fake._lock:
                rid = fake._next_id()
                posted = []
                for c in comments:
                    cid = fake._next_id()
                    fake.review_comments[cid] = {
                        "repo": r.full_name, "number": number, "review_id": rid,
                        "json": fake._review_comment_json(r.full_name, number, cid, rid, c,
                                                          fake.bot_login, "Bot"),
                    }
                    posted.append(dict(c, id=cid))
                rec = {"repo": r.full_name, "number": number, "id": rid,
                       "body": body.get("body") or "", "state": state, "event": event,
                       "commit_id": commit_id, "comments": posted,
                       "submitted_at": now_iso() if state != "PENDING" else None}
                fake.review_records[rid] = rec
            return fake._review_json(rec)

        # ------------------------------------------------------------ issue comments

        @api.get("/repos/{owner}/{name}/issues/comments/{cid}")
        async def get_comment(owner: str, name: str, cid: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            c = fake.issue_comments.get(cid)
            if c is None or c["repo"] != r.full_name:
                raise GitHubError(404, "Not Found")
            return c["json"]

        @api.patch("/repos/{owner}/{name}/issues/comments/{cid}")
        async def update_comment(owner: str, name: str, cid: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            c = fake.issue_comments.get(cid)
            if c is None or c["repo"] != r.full_name:
                raise GitHubError(404, "Not Found")
            if c["json"]["user"]["login"] != fake.bot_login:
                raise GitHubError(403, "Resource not accessible by integration")
            body = await _json(request) or {}
            if "body" not in body:
                raise GitHubError(422, "Validation Failed")
            with fake._lock:
                c["json"]["body"] = body["body"]
                c["json"]["updated_at"] = now_iso()
            return c["json"]

        @api.get("/repos/{owner}/{name}/issues/{number}/comments")
        async def list_comments(owner: str, name: str, number: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            fake._require_issue(r.full_name, number)
            return fake._paginate(request, fake.comments(r.full_name, number))

        @api.post("/repos/{owner}/{name}/issues/{number}/comments", status_code=201)
        async def create_comment(owner: str, name: str, number: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            fake._require_issue(r.full_name, number)
            body = await _json(request) or {}
            if not isinstance(body.get("body"), str) or not body["body"]:
                raise GitHubError(422, "Validation Failed", [{"resource": "IssueComment",
                                                              "field": "body",
                                                              "code": "missing_field"}])
            if len(body["body"]) > 65536:
                raise GitHubError(422, "Validation Failed", [{
                    "resource": "IssueComment", "code": "custom", "field": "body",
                    "message": "body is too long (maximum is 65536 characters)"}])
            cid = fake.add_comment(r.full_name, number, body["body"], fake.bot_login, "Bot")
            return JSONResponse(fake.issue_comments[cid]["json"], status_code=201)

        # ------------------------------------------------------------ reactions

        async def _react(request: Request, owner: str, name: str, cid: int, subject: str):
            r, _ = fake._repo_for(request, owner, name)
            store = fake.issue_comments if subject == "issue_comment" else fake.review_comments
            c = store.get(cid)
            if c is None or c["repo"] != r.full_name:
                raise GitHubError(404, "Not Found")
            body = await _json(request) or {}
            content = body.get("content")
            if content not in REACTIONS:
                raise GitHubError(422, "Validation Failed", [{"resource": "Reaction",
                                                              "field": "content",
                                                              "code": "invalid"}])
            with fake._lock:
                for rec in fake.reaction_records:
                    if (rec["repo"], rec["subject"], rec["comment_id"], rec["content"],
                            rec["user"]) == (r.full_name, subject, cid, content, fake.bot_login):
                        return JSONResponse(rec["json"], status_code=200)
                rid = fake._next_id()
                js = {"id": rid, "node_id": _node_id("Reaction", rid), "user": fake._bot_json(),
                      "content": content, "created_at": now_iso()}
                fake.reaction_records.append({"repo": r.full_name, "subject": subject,
                                              "comment_id": cid, "content": content,
                                              "user": fake.bot_login, "id": rid, "json": js})
            return JSONResponse(js, status_code=201)

        @api.post("/repos/{owner}/{name}/issues/comments/{cid}/reactions")
        async def react_issue_comment(owner: str, name: str, cid: int, request: Request):  # noqa: ANN202
            return await _react(request, owner, name, cid, "issue_comment")

        @api.post("/repos/{owner}/{name}/pulls/comments/{cid}/reactions")
        async def react_review_comment(owner: str, name: str, cid: int, request: Request):  # noqa: ANN202
            return await _react(request, owner, name, cid, "pull_request_review_comment")

        # ------------------------------------------------------------ checks

        @api.post("/repos/{owner}/{name}/check-runs", status_code=201)
        async def create_check_run(owner: str, name: str, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            body = await _json(request) or {}
            if not body.get("name") or not body.get("head_sha"):
                raise GitHubError(422, "Validation Failed")
            output = body.get("output") or {}
            fake._validate_check_body(body)
            status = body.get("status", "queued")
            if body.get("conclusion"):
                status = "completed"
            with fake._lock:
                rid = fake.add_check_run(
                    r.full_name, body["head_sha"], body["name"], status=status,
                    conclusion=body.get("conclusion"), app_slug=APP_SLUG,
                    external_id=body.get("external_id") or "", title=output.get("title"),
                    summary=output.get("summary"), text=output.get("text"),
                    annotations=output.get("annotations") or (),
                    details_url=body.get("details_url"))
                rec = fake.check_run_records[rid]
                rec["history"].append(body)
                if status == "completed":
                    rec["completed_at"] = body.get("completed_at") or now_iso()
            return JSONResponse(fake._check_run_json(rec), status_code=201)

        @api.patch("/repos/{owner}/{name}/check-runs/{rid}")
        async def update_check_run(owner: str, name: str, rid: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            rec = fake.check_run_records.get(rid)
            if rec is None or rec["repo"] != r.full_name:
                raise GitHubError(404, "Not Found")
            if rec["app"] != APP_SLUG:
                raise GitHubError(403, f"Invalid app_id `{fake.app_id}` - check run can only be modified by "
                                       "the GitHub App that created it.")
            body = await _json(request) or {}
            fake._validate_check_body(body)
            with fake._lock:
                for key in ("name", "details_url", "external_id", "status", "conclusion"):
                    if key in body:
                        rec[key] = body[key]
                if body.get("conclusion"):
                    rec["status"] = "completed"
                if rec["status"] == "completed" and not rec["completed_at"]:
                    rec["completed_at"] = body.get("completed_at") or now_iso()
                output = body.get("output")
                if output:
                    for key in ("title", "summary", "text"):
                        if key in output:
                            rec["output"][key] = output[key]
                    rec["annotations"].extend(
                        fake._annotation(r.full_name, rec["head_sha"], a)
                        for a in output.get("annotations") or ())
                rec["history"].append(body)
            return fake._check_run_json(rec)

        @api.get("/repos/{owner}/{name}/commits/{ref}/check-runs")
        async def list_check_runs(owner: str, name: str, ref: str, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            sha = ref if re.fullmatch(r"[0-9a-f]{40}", ref) else fake.ref(r.full_name, ref)
            q = request.query_params
            items = [fake._check_run_json(rec) for _, rec in
                     sorted(fake.check_run_records.items(), reverse=True)
                     if rec["repo"] == r.full_name and rec["head_sha"] == sha
                     and (not q.get("check_name") or rec["name"] == q["check_name"])
                     and (not q.get("status") or rec["status"] == q["status"])
                     and (not q.get("app_id") or
                          str(fake._app_json(rec["app"])["id"]) == q["app_id"])]
            return fake._paged_object(request, "check_runs", items)

        @api.get("/repos/{owner}/{name}/check-suites/{sid}/check-runs")
        async def list_suite_runs(owner: str, name: str, sid: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            suite = fake.check_suites.get(sid)
            if suite is None or suite["repo"] != r.full_name:
                raise GitHubError(404, "Not Found")
            q = request.query_params
            items = [fake._check_run_json(rec) for _, rec in sorted(fake.check_run_records.items())
                     if rec["check_suite_id"] == sid
                     and (not q.get("check_name") or rec["name"] == q["check_name"])
                     and (not q.get("status") or rec["status"] == q["status"])]
            return fake._paged_object(request, "check_runs", items)

        @api.get("/repos/{owner}/{name}/check-runs/{rid}")
        async def get_check_run(owner: str, name: str, rid: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            rec = fake.check_run_records.get(rid)
            if rec is None or rec["repo"] != r.full_name:
                raise GitHubError(404, "Not Found")
            return fake._check_run_json(rec)

        @api.get("/repos/{owner}/{name}/check-runs/{rid}/annotations")
        async def list_annotations(owner: str, name: str, rid: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            rec = fake.check_run_records.get(rid)
            if rec is None or rec["repo"] != r.full_name:
                raise GitHubError(404, "Not Found")
            return fake._paginate(request, copy.deepcopy(rec["annotations"]))

        # ------------------------------------------------------------ actions

        @api.get("/repos/{owner}/{name}/actions/runs")
        async def list_runs(owner: str, name: str, request: Request, head_sha: str | None = None):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            runs = [run for run in fake.workflow_runs.values() if run["repo"] == r.full_name
                    and (head_sha is None or run["head_sha"] == head_sha)]
            items = [fake._workflow_run_json(run) for run in sorted(runs, key=lambda x: -x["id"])]
            return fake._paged_object(request, "workflow_runs", items)

        @api.get("/repos/{owner}/{name}/actions/runs/{run_id}")
        async def get_run(owner: str, name: str, run_id: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            run = fake.workflow_runs.get(run_id)
            if run is None or run["repo"] != r.full_name:
                raise GitHubError(404, "Not Found")
            return fake._workflow_run_json(run)

        @api.get("/repos/{owner}/{name}/actions/runs/{run_id}/jobs")
        async def list_jobs(owner: str, name: str, run_id: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            run = fake.workflow_runs.get(run_id)
            if run is None or run["repo"] != r.full_name:
                raise GitHubError(404, "Not Found")
            items = [fake._job_json(fake.jobs[j]) for j in run["job_ids"]]
            return fake._paged_object(request, "jobs", items)

        @api.get("/repos/{owner}/{name}/actions/jobs/{job_id}")
        async def get_job(owner: str, name: str, job_id: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            job = fake.jobs.get(job_id)
            if job is None or job["repo"] != r.full_name:
                raise GitHubError(404, "Not Found")
            return fake._job_json(job)

        @api.get("/repos/{owner}/{name}/actions/jobs/{job_id}/logs")
        async def job_logs(owner: str, name: str, job_id: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            job = fake.jobs.get(job_id)
            if job is None or job["repo"] != r.full_name:
                raise GitHubError(404, "Not Found")
            sig = fake._download_sig(job_id)
            return RedirectResponse(f"{fake.server_url}/_downloads/jobs/{job_id}/logs?sig={sig}",
                                    status_code=302)

        @api.get("/_downloads/jobs/{job_id}/logs")
        async def download_logs(job_id: int, sig: str = ""):  # noqa: ANN202
            job = fake.jobs.get(job_id)
            if job is None or not secrets.compare_digest(sig, fake._download_sig(job_id)):
                return PlainTextResponse("<Error><Code>AuthenticationFailed</Code></Error>",
                                         status_code=403)
            return Response(job["log"].encode(), media_type="text/plain; charset=utf-8")

        @api.post("/repos/{owner}/{name}/actions/runs/{run_id}/rerun-failed-jobs",
                  status_code=201)
        async def rerun_failed(owner: str, name: str, run_id: int, request: Request):  # noqa: ANN202
            r, _ = fake._repo_for(request, owner, name)
            run = fake.workflow_runs.get(run_id)
            if run is None or run["repo"] != r.full_name:
                raise GitHubError(404, "Not Found")
            with fake._lock:
                fake.reruns.append((r.full_name, run_id))
            return JSONResponse({}, status_code=201)

        # everything else: GitHub's 404, recorded by the outer layer
        @api.api_route("/{rest:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
        async def not_found(rest: str):  # noqa: ANN202
            raise GitHubError(404, "Not Found")

    # ---------------------------------------------------------------- route helpers

    def _paged_object(self, request: Request, key: str, items: list[Any]) -> JSONResponse:
        resp = self._paginate(request, items)
        chunk = json.loads(resp.body)
        headers = {k: v for k, v in resp.headers.items() if k.lower() == "link"}
        return JSONResponse({"total_count": len(items), key: chunk}, headers=headers)

    def _download_sig(self, job_id: int) -> str:
        return hashlib.sha256(f"{self._download_secret}:{job_id}".encode()).hexdigest()[:32]

    def _content_item(self, repo: str, ref: str, path: str, sha: str, kind: str,
                      size: int) -> dict[str, Any]:
        url = self.api(f"/repos/{repo}/contents/{path}?ref={ref}")
        html = self.html(f"/{repo}/blob/{ref}/{path}")
        git_url = self.api(f"/repos/{repo}/git/{'trees' if kind == 'dir' else 'blobs'}/{sha}")
        return {
            "type": kind, "size": size, "name": path.rsplit("/", 1)[-1], "path": path,
            "sha": sha, "url": url, "git_url": git_url, "html_url": html,
            "download_url": self.html(f"/{repo}/raw/{ref}/{path}") if kind == "file" else None,
            "_links": {"self": url, "git": git_url, "html": html},
        }

    def _next_number(self, repo: str) -> int:
        used = [n for (r, n) in self.pulls_by_key if r == repo]
        used += [n for (r, n) in self.issues if r == repo]
        return max(used, default=0) + 1

    def _require_issue(self, repo: str, number: int) -> None:
        if (repo, number) not in self.pulls_by_key and (repo, number) not in self.issues:
            raise GitHubError(404, "Not Found")

    def _validate_check_body(self, body: Mapping[str, Any]) -> None:
        output = body.get("output") or {}
        if output and ("title" not in output or "summary" not in output):
            raise GitHubError(422, "Invalid request.\n\n\"title\", \"summary\" weren't supplied.")
        if len(output.get("annotations") or []) > 50:
            raise GitHubError(422, "Only 50 annotations are allowed per request")
        for key in ("summary", "text"):
            if len(output.get(key) or "") > 65535:
                raise GitHubError(422, f"Invalid request.\n\n{key} is too long")
        if body.get("status") == "completed" and not body.get("conclusion"):
            raise GitHubError(422, "Invalid request.\n\nconclusion is required when status is "
                                   "completed")

    def _validate_review_comments(self, p: Pull, comments: list[Mapping[str, Any]]) -> None:
        """Like GitHub: each comment's lines must lie in one hunk of the PR diff on that side."""
        from unidiff import PatchSet

        files = {f["filename"]: f for f in self._pull_files(p)}
        for c in comments:
            f = files.get(c.get("path", ""))
            if f is None or "patch" not in f:
                raise GitHubError(422, "Unprocessable Entity", [
                    "Path could not be resolved"])
            line = c.get("line")
            if line is None:
                raise GitHubError(422, "Unprocessable Entity", ["line is required"])
            start = c.get("start_line", line)
            side = c.get("side", "RIGHT")
            if c.get("start_line") is not None and start >= line:
                raise GitHubError(422, "Unprocessable Entity",
                                  ["start_line must precede the end line."])
            ok = False
            text = f"--- a/{f['filename']}\n+++ b/{f['filename']}\n{f['patch']}\n"
            for hunk in PatchSet(text)[0]:
                if side == "RIGHT":
                    lines = {ln.target_line_no for ln in hunk if ln.target_line_no is not None}
                else:
                    lines = {ln.source_line_no for ln in hunk if ln.source_line_no is not None}
                if all(n in lines for n in range(start, line + 1)):
                    ok = True
                    break
            if not ok:
                raise GitHubError(422, "Unprocessable Entity", [
                    "Line could not be resolved" if c.get("start_line") is None else
                    "Start line must be part of the same hunk as the line."])


async def _json(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise GitHubError(400, "Problems parsing JSON") from None


def _git_bytes(git_dir: str, *args: str) -> bytes:
    import subprocess

    proc = subprocess.run(["git", "--git-dir", git_dir, *args], capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise GitHubError(404, "Not Found")
    return proc.stdout


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------


@dataclass
class AppKey:
    app_id: int
    private_key_pem: str
    public_key_pem: str


@pytest.fixture(scope="session")
def github_app_key() -> AppKey:
    """One RSA key pair per test session for the fake GitHub App."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return AppKey(app_id=424242, private_key_pem=private, public_key_pem=public)


@pytest.fixture
def fake_github(tmp_path_factory: pytest.TempPathFactory, github_app_key: AppKey):
    """A fresh fake GitHub on 127.0.0.1 (API at ``.url``, git at ``.clone_url(full_name)``)."""
    root = tmp_path_factory.mktemp("fake-github-repos")
    fake = FakeGitHub(root, github_app_key.app_id, github_app_key.private_key_pem,
                      github_app_key.public_key_pem)
    thread = ServerThread(fake.app).start()
    fake.server_url = thread.url
    fake.url = thread.url
    try:
        yield fake
    finally:
        thread.stop()
