"""What the fake knows: GitHub's objects as records, the stores that hold them, the call log and
the fault queue. No routes and no JSON rendering here; the area modules do those."""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi.responses import JSONResponse

from tests.support.git_http import (
    GitRequest,
    repo_commit_message,
    repo_file_at,
    repo_ref,
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


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stable_id(text: str) -> int:
    """A GitHub-looking id that stays the same for the same ``text`` across runs."""
    return zlib.crc32(text.encode()) % 90_000_000 + 1_000


def node_id(kind: str, ident: Any) -> str:
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
# records
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
    received_at: float = field(default_factory=time.monotonic)

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
class UserToken:
    """A user-to-server token (``ghu_...``): acts as ``login``, within what the App may reach."""

    token: str
    login: str
    expires_at: float

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
    parent: str | None = None  # the repository this one is a fork of

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
    closed_at: str | None = None
    merged_at: str | None = None
    merge_commit_sha: str | None = None
    merged_by: str | None = None
    head_repo_deleted: bool = False  # the fork is gone: GitHub then sends ``head.repo: null``


# --------------------------------------------------------------------------------------------
# the stores
# --------------------------------------------------------------------------------------------


class State:
    """Everything the fake holds, guarded by ``lock``. Records of GitHub objects live in plain
    dicts keyed by id (or ``(repo, number)``); what the app sent is in ``requests``."""

    def __init__(self, repos_root: Path, app_id: int, private_key_pem: str, public_key_pem: str):
        self.repos_root = Path(repos_root)
        self.app_id = app_id
        self.app_slug = APP_SLUG
        self.bot_login = BOT_LOGIN
        self.private_key_pem = private_key_pem
        self.public_key_pem = public_key_pem
        self.url = ""  # API base URL, set when the server starts
        self.server_url = ""
        self.token_ttl = 3600.0  # lifetime of issued installation tokens, seconds (short in tests)
        self.webhook_url = ""  # where the App's webhook deliveries go (see hooks.py)
        self.webhook_secret = ""
        self.hook_id = 4_200_001
        self.hook_deliveries: list[dict[str, Any]] = []  # every delivery attempt, oldest first
        self.rate_limits: dict[int, dict[str, Any]] = {}  # installation -> {"limit", "used", "reset"}

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
        self.failures: list[dict[str, Any]] = []
        # people (see users.py): the App's OAuth client, manifest registrations, sign-ins
        self.client_id = f"Iv1.{app_id}"
        self.client_secret = secrets.token_hex(20)
        self.callback_urls: list[str] = []  # from the manifest; empty: any redirect_uri
        self.manifests: dict[str, dict[str, Any]] = {}  # code -> registration waiting for conversion
        self.created_apps: list[dict[str, Any]] = []  # conversion answers, in order
        self.oauth_codes: dict[str, dict[str, Any]] = {}
        self.user_tokens: dict[str, UserToken] = {}  # ghu_ access tokens
        self.refresh_tokens: dict[str, str] = {}  # ghr_ refresh token -> login
        self.user_token_ttl = 8 * 3600.0
        self.api_versions: list[str] | None = None  # None: any; else others get 400
        self.browser_login = ""  # who the authorize page says is signed in to GitHub
        self.download_secret = secrets.token_hex(8)
        self.lock = threading.RLock()
        self._ids = 100_000

    def next_id(self) -> int:
        with self.lock:
            self._ids += 1
            return self._ids

    # ---------------------------------------------------------------- urls

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

    # ---------------------------------------------------------------- git-backed lookups

    def ref(self, full_name: str, ref: str) -> str | None:
        return repo_ref(self.repos_root, full_name, ref)

    def file_at(self, full_name: str, ref: str, path: str) -> str:
        return repo_file_at(self.repos_root, full_name, ref, path)

    def commit_message(self, full_name: str, ref: str) -> str:
        return repo_commit_message(self.repos_root, full_name, ref)

    def suite_for(self, repo: str, sha: str, app_slug: str) -> int:
        """The check suite of ``app_slug`` on ``repo`` at ``sha``, created on first use."""
        for sid, s in self.check_suites.items():
            if s["repo"] == repo and s["head_sha"] == sha and s["app"] == app_slug:
                return sid
        sid = self.next_id()
        self.check_suites[sid] = {"id": sid, "repo": repo, "head_sha": sha, "app": app_slug}
        return sid

    # ---------------------------------------------------------------- tokens

    def valid_token(self, token: str | None) -> Token | None:
        """The issued installation token ``token``, unless unknown or expired."""
        with self.lock:
            t = self.tokens.get(token or "")
        return None if t is None or t.expired else t

    def revoke_tokens(self) -> None:
        """Forget every issued installation token (later requests with them get 401)."""
        with self.lock:
            self.tokens.clear()

    # ---------------------------------------------------------------- the call log

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

    # ---------------------------------------------------------------- rate limits

    RATE_LIMIT = 5000  # an installation's requests per hour (GitHub's floor for installations)

    def spend(self, installation_id: int) -> dict[str, str] | None:
        """Count one request of an installation against its hour; its ``x-ratelimit-*`` headers,
        or None when nothing was left (the request is then refused like GitHub does)."""
        with self.lock:
            now = time.time()
            budget = self.rate_limits.get(installation_id)
            if budget is None or budget["reset"] <= now:
                budget = self.rate_limits[installation_id] = {"limit": self.RATE_LIMIT, "used": 0,
                                                              "reset": int(now) + 3600}
            exhausted = budget["used"] >= budget["limit"]
            if not exhausted:
                budget["used"] += 1
            headers = {"x-ratelimit-limit": str(budget["limit"]),
                       "x-ratelimit-remaining": str(max(0, budget["limit"] - budget["used"])),
                       "x-ratelimit-used": str(budget["used"]), "x-ratelimit-reset": str(budget["reset"]),
                       "x-ratelimit-resource": "core"}
            return None if exhausted else headers

    def set_rate_limit(self, installation_id: int, remaining: int, reset_in: float = 3600,
                       limit: int = RATE_LIMIT) -> None:
        """Leave ``remaining`` requests in the installation's hour, which resets in ``reset_in`` s."""
        with self.lock:
            self.rate_limits[installation_id] = {"limit": limit, "used": limit - remaining,
                                                 "reset": int(time.time() + reset_in)}

    # ---------------------------------------------------------------- faults

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
        with self.lock:
            self.failures.append({"method": method.upper(), "path": path, "status": status,
                                  "headers": dict(headers or {}), "times": times,
                                  "message": message})

    def take_failure(self, method: str, path: str) -> dict[str, Any] | None:
        """The queued failure for ``method path``, if any (counting one use of it)."""
        with self.lock:
            for f in self.failures:
                if f["method"] == method and f["path"] == path and f["times"] > 0:
                    f["times"] -= 1
                    if f["times"] == 0:
                        self.failures.remove(f)
                    return f
        return None
