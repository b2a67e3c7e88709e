"""People on GitHub: registering an App from a manifest, signing in with the App (OAuth web flow)
and what a user-to-server token (``ghu_``) sees.

Web pages, as a browser meets them (served at the server's root, also for Enterprise clients):

- ``POST /settings/apps/new`` and ``POST /organizations/{org}/settings/apps/new`` (form field
  ``manifest``, query ``state``): the "Create GitHub App" page; its button registers the App and
  sends the browser to the manifest's ``redirect_url?code=...&state=...``.
- ``GET /login/oauth/authorize``: the "Authorize" page (with a field naming who is signed in to
  GitHub); its button sends the browser to ``redirect_uri?code=...&state=...``.

API, as GitHub answers it:

- ``POST /app-manifests/{code}/conversions`` (no auth; a code is good once): the App's id, slug,
  ``pem``, ``webhook_secret``, ``client_id``, ``client_secret`` (the fake's one App key pair).
- ``POST /login/oauth/access_token``: a code (or ``grant_type=refresh_token``) for an expiring
  ``ghu_`` token and a ``ghr_`` refresh token; errors as 200 ``{"error": ...}`` like GitHub.
- ``GET /user``, ``GET /user/installations``, ``GET /user/installations/{id}/repositories``: the
  person, the App's installations they can reach, and those repositories with *their* permissions
  (from ``set_permission``; a public repository is readable by anyone).
"""

from __future__ import annotations

import html
import json
import re
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from tests.support.fake_github.apps import installation_json
from tests.support.fake_github.rest import paged_object
from tests.support.fake_github.shapes import app_json, repo_json, user_json
from tests.support.fake_github.state import GitHubError, State, UserToken
from tests.support.git_http import token_from_authorization

if TYPE_CHECKING:
    from tests.support.fake_github.fake import FakeGitHub

CODE_TTL = 600.0  # OAuth codes expire after ten minutes
REFRESH_TTL = 15_897_600  # six months, as GitHub says in refresh_token_expires_in
ROLE_PERMISSIONS = {
    "admin": ("admin", "maintain", "push", "triage", "pull"),
    "maintain": ("maintain", "push", "triage", "pull"),
    "write": ("push", "triage", "pull"),
    "triage": ("triage", "pull"),
    "read": ("pull",),
    "none": (),
}


def role_of(fake: State, repo: str, login: str) -> str:
    r = fake.repos[repo]
    return fake.permissions.get((repo, login), "none" if r.private else "read")


def user_repos(fake: State, login: str, installation_id: int) -> list[str]:
    """Repositories of the installation that ``login`` can read."""
    return sorted(n for n, r in fake.repos.items()
                  if r.installation_id == installation_id and role_of(fake, n, login) != "none")


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
                        f"</title></head><body style='font-family:sans-serif;margin:40px'>"
                        f"<h1>{html.escape(title)}</h1>{body}</body></html>")


def _hidden(**fields: str) -> str:
    return "".join(f"<input type='hidden' name='{k}' value='{html.escape(v, quote=True)}'>"
                   for k, v in fields.items())


async def _form(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode()))


def _user_token(fake: State, request: Request) -> UserToken:
    token = token_from_authorization(request.headers.get("authorization")) or ""
    with fake.lock:
        t = fake.user_tokens.get(token)
    if t is None or t.expired:
        raise GitHubError(401, "Bad credentials")
    return t


def _issue_tokens(fake: State, login: str) -> dict[str, Any]:
    access = "ghu_" + secrets.token_hex(18)
    refresh = "ghr_" + secrets.token_hex(38)
    with fake.lock:
        fake.user_tokens[access] = UserToken(access, login, time.time() + fake.user_token_ttl)
        fake.refresh_tokens[refresh] = login
    return {"access_token": access, "expires_in": int(fake.user_token_ttl),
            "refresh_token": refresh, "refresh_token_expires_in": REFRESH_TTL,
            "token_type": "bearer", "scope": ""}


def _oauth_error(error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description,
                         "error_uri": "https://docs.github.com/apps/managing-oauth-apps/"
                                      "troubleshooting-oauth-app-access-token-request-errors"})


def router(fake: FakeGitHub) -> APIRouter:
    api = APIRouter()

    # ------------------------------------------------------------ App registration by manifest

    async def new_app(request: Request, account: str | None) -> HTMLResponse:
        form = await _form(request)
        try:
            manifest = json.loads(form.get("manifest", ""))
            assert isinstance(manifest, dict) and manifest.get("url")
            assert isinstance(manifest.get("hook_attributes"), dict)
        except (ValueError, AssertionError):
            return _page("Invalid GitHub App manifest", "<p>The manifest is not valid.</p>")
        ticket = secrets.token_hex(8)
        with fake.lock:
            fake.manifests[ticket] = {"manifest": manifest, "account": account,
                                      "state": request.query_params.get("state", ""),
                                      "code": None}
        owner = account or "your personal account"
        return _page(f"Create GitHub App for {owner}", (
            f"<p>Name: <b>{html.escape(str(manifest.get('name', '')))}</b></p>"
            f"<form method='post' action='/settings/apps/new/confirm'>{_hidden(ticket=ticket)}"
            f"<button type='submit' id='create'>Create GitHub App for {html.escape(owner)}</button>"
            "</form>"))

    @api.post("/settings/apps/new")
    async def new_personal_app(request: Request):
        return await new_app(request, None)

    @api.post("/organizations/{org}/settings/apps/new")
    async def new_org_app(org: str, request: Request):
        return await new_app(request, org)

    @api.post("/settings/apps/new/confirm")
    async def confirm_new_app(request: Request):
        form = await _form(request)
        with fake.lock:
            pending = fake.manifests.get(form.get("ticket", ""))
            if pending is None:
                return _page("Not Found", "")
            code = secrets.token_hex(10)
            pending["code"] = code
            fake.manifests[code] = fake.manifests.pop(form["ticket"])
        query = urlencode({"code": code, "state": pending["state"]})
        return RedirectResponse(f"{pending['manifest']['redirect_url']}?{query}", status_code=302)

    @api.post("/app-manifests/{code}/conversions", status_code=201)
    async def convert(code: str):
        with fake.lock:
            pending = fake.manifests.pop(code, None)
        if pending is None or pending["code"] is None:
            raise GitHubError(404, "Not Found")
        manifest = pending["manifest"]
        slug = slugify(str(manifest.get("name") or "app"))
        with fake.lock:
            fake.app_slug, fake.bot_login = slug, f"{slug}[bot]"
            fake.callback_urls = list(manifest.get("callback_urls") or [])
            webhook_secret = secrets.token_hex(20)
            answer = app_json(fake, slug)
            answer.update({
                "id": fake.app_id, "name": manifest.get("name"),
                "owner": user_json(fake, pending["account"] or "octo-admin",
                                   "Organization" if pending["account"] else "User"),
                "permissions": dict(manifest.get("default_permissions") or {}),
                "events": list(manifest.get("default_events") or []),
                "client_id": fake.client_id, "client_secret": fake.client_secret,
                "webhook_secret": webhook_secret, "pem": fake.private_key_pem,
            })
            fake.created_apps.append({**answer, "manifest": manifest,
                                      "account": pending["account"]})
        return JSONResponse(answer, status_code=201)

    # ------------------------------------------------------------ OAuth web flow

    def check_redirect(redirect_uri: str) -> bool:
        return not fake.callback_urls or any(redirect_uri.startswith(u) for u in fake.callback_urls)

    @api.get("/login/oauth/authorize")
    async def authorize_page(request: Request):
        q = request.query_params
        if q.get("client_id") != fake.client_id:
            return _page("404 — This is not the web page you are looking for", "")
        redirect_uri = q.get("redirect_uri") or (fake.callback_urls or [""])[0]
        if not check_redirect(redirect_uri):
            return _page("Redirect URI mismatch", "<p>The redirect_uri is not associated with "
                         "this application.</p>")
        fields = _hidden(client_id=fake.client_id, redirect_uri=redirect_uri,
                         state=q.get("state", ""))
        return _page(f"Authorize {fake.app_slug}", (
            f"<form method='post' action='/login/oauth/authorize'>{fields}"
            "<p><label>Signed in to GitHub as <input name='login' id='login' "
            f"value='{html.escape(getattr(fake, 'browser_login', '') or '')}'></label></p>"
            f"<button type='submit' id='authorize'>Authorize {html.escape(fake.app_slug)}</button>"
            "</form>"))

    @api.post("/login/oauth/authorize")
    async def authorize(request: Request):
        form = await _form(request)
        if form.get("client_id") != fake.client_id or not form.get("login"):
            return _page("Authorization failed", "")
        redirect_uri = form.get("redirect_uri", "")
        if not check_redirect(redirect_uri):
            return _page("Redirect URI mismatch", "")
        code = secrets.token_hex(10)
        with fake.lock:
            fake.oauth_codes[code] = {"login": form["login"], "redirect_uri": redirect_uri,
                                      "expires_at": time.time() + CODE_TTL}
        query = urlencode({"code": code, "state": form.get("state", "")})
        return RedirectResponse(f"{redirect_uri}?{query}", status_code=302)

    @api.post("/login/oauth/access_token")
    async def access_token(request: Request):
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip().startswith(b"{") else dict(parse_qsl(raw.decode()))
        except ValueError:
            body = {}
        if body.get("client_id") != fake.client_id:
            return _oauth_error("incorrect_client_credentials",
                                "The client_id and/or client_secret passed are incorrect.")
        if body.get("client_secret") != fake.client_secret:
            return _oauth_error("incorrect_client_credentials",
                                "The client_id and/or client_secret passed are incorrect.")
        if body.get("grant_type") == "refresh_token":
            with fake.lock:
                login = fake.refresh_tokens.pop(body.get("refresh_token", ""), None)
            if login is None:
                return _oauth_error("bad_refresh_token", "The refresh token passed is incorrect "
                                                         "or expired.")
            return JSONResponse(_issue_tokens(fake, login))
        with fake.lock:
            grant = fake.oauth_codes.pop(body.get("code", ""), None)
        if grant is None or grant["expires_at"] < time.time():
            return _oauth_error("bad_verification_code",
                                "The code passed is incorrect or expired.")
        if body.get("redirect_uri") and body["redirect_uri"] != grant["redirect_uri"]:
            return _oauth_error("redirect_uri_mismatch", "The redirect_uri MUST match the "
                                                         "registered callback URL for this application.")
        return JSONResponse(_issue_tokens(fake, grant["login"]))

    # ------------------------------------------------------------ user-to-server API

    @api.get("/user")
    async def get_user(request: Request):
        t = _user_token(fake, request)
        out = user_json(fake, t.login)
        out.update({"name": t.login.title(), "company": None, "blog": "", "location": None,
                    "email": None, "hireable": None, "bio": None, "twitter_username": None,
                    "public_repos": 0, "public_gists": 0, "followers": 0, "following": 0,
                    "created_at": "2020-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"})
        return out

    @api.get("/user/installations")
    async def list_user_installations(request: Request):
        t = _user_token(fake, request)
        items = [installation_json(fake, inst) for iid, inst in sorted(fake.installations.items())
                 if user_repos(fake, t.login, iid)]
        return paged_object(fake, request, "installations", items)

    @api.get("/user/installations/{iid}/repositories")
    async def list_user_installation_repos(iid: int, request: Request):
        t = _user_token(fake, request)
        inst = fake.installations.get(iid)
        names = user_repos(fake, t.login, iid) if inst else []
        if not names:
            raise GitHubError(404, "Not Found")
        items = []
        for name in names:
            item = repo_json(fake, name)
            granted = ROLE_PERMISSIONS[role_of(fake, name, t.login)]
            item["permissions"] = {p: p in granted for p in ("admin", "maintain", "push",
                                                              "triage", "pull")}
            items.append(item)
        resp = paged_object(fake, request, "repositories", items)
        body = json.loads(resp.body)
        body["repository_selection"] = inst["repository_selection"]
        return JSONResponse(body, headers={k: v for k, v in resp.headers.items()
                                           if k.lower() == "link"})

    return api
