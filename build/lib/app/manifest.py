"""The GitHub App manifest qwenfix registers itself with, and where on GitHub to post it.

Pure functions: the setup page renders them into a form, `qwenfix setup` prints the page's link.
See https://docs.github.com/apps/sharing-github-apps/registering-a-github-app-from-a-manifest
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode, urlsplit

from core.config import Settings

# what the README's "Install on your organization" lists; installation events come without asking
PERMISSIONS = {
    "contents": "write",
    "pull_requests": "write",
    "issues": "write",
    "checks": "write",
    "actions": "read",
    "metadata": "read",
}
EVENTS = [
    "pull_request",
    "issue_comment",
    "pull_request_review_comment",
    "workflow_run",
    "check_suite",
    "check_run",
]
_ACCOUNT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")


def valid_account(name: str) -> bool:
    """A GitHub organization or user login (letters, digits, inner hyphens, at most 39)."""
    return bool(_ACCOUNT.match(name)) and not name.endswith("-") and "--" not in name


def app_manifest(settings: Settings, name: str) -> dict:
    base = settings.public_url.rstrip("/")
    return {
        "name": name,
        "url": base,
        "description": "Repairs red CI builds and answers /qwen commands on pull requests.",
        "hook_attributes": {"url": f"{base}/webhooks/github", "active": True},
        "redirect_url": f"{base}/setup/callback",
        "callback_urls": [f"{base}/auth/callback"],
        "setup_url": f"{base}/",
        "setup_on_update": False,
        "request_oauth_on_install": False,
        "public": False,
        "default_permissions": dict(PERMISSIONS),
        "default_events": list(EVENTS),
    }


def unreachable(public_url: str) -> bool:
    """True for a URL GitHub cannot deliver webhooks to (this machine only)."""
    host = urlsplit(public_url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.") or host.endswith(".localhost")


def default_name(account: str | None) -> str:
    return f"qwenfix-{account}" if account else "qwenfix"


def new_app_url(settings: Settings, account: str | None, state: str) -> str:
    """GitHub's "new App from manifest" page: the organization's, or the signed-in person's."""
    base = settings.github_web_url
    where = f"/organizations/{quote(account)}/settings/apps/new" if account else "/settings/apps/new"
    return f"{base}{where}?{urlencode({'state': state})}"


def setup_link(settings: Settings, account: str | None) -> str:
    """The setup page for ``account`` (what `qwenfix setup --org` prints)."""
    query = f"?{urlencode({'org': account})}" if account else ""
    return f"{settings.public_url.rstrip('/')}/setup{query}"


def install_url(app_html_url: str) -> str:
    """Where a new App is installed on an account's repositories."""
    return app_html_url.rstrip("/") + "/installations/new"
