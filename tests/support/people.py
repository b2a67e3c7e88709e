"""People using the dashboard in tests: signing in through the fake GitHub's real OAuth web flow
(as a browser does: the app's redirect, GitHub's Authorize button, the callback), and personal API
tokens for tests that are about something else."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient

from app import sessions
from core.config import Settings
from core.db.session import session_scope

BASE = "http://testserver"  # TestClient's origin: settings.public_url in these tests


def sign_in(client: TestClient, fake_github, login: str, next_path: str = "/") -> httpx.Response:
    """Sign ``login`` in on ``client``; returns the app's answer to GitHub's redirect back."""
    start = client.get("/auth/github", params={"next": next_path}, follow_redirects=False)
    assert start.status_code == 303, start.text
    with httpx.Client() as browser:
        page = browser.get(start.headers["location"])
        assert page.status_code == 200 and "Authorize" in page.text, page.text
        fields = dict(re.findall(r"name='([^']+)' value='([^']*)'", page.text))
        fields["login"] = login
        back = browser.post(f"{fake_github.server_url}/login/oauth/authorize", data=fields)
    assert back.status_code == 302, back.text
    callback, base = back.headers["location"], str(client.base_url).rstrip("/")
    assert callback.startswith(f"{base}/auth/callback?"), callback
    return client.get(callback.removeprefix(base), follow_redirects=False)


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def api_token(settings: Settings, login: str) -> dict[str, str]:
    """Headers carrying a fresh personal API token of ``login``."""
    with session_scope(settings.database_url) as session:
        _, token = sessions.create_api_token(session, login, "test")
    return {"Authorization": f"Bearer {token}"}
